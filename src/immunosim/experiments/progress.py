"""Progress of a sweep: a tqdm bar on a terminal, one-line log lines on stderr otherwise.

Batch jobs (SLURM, ``nohup``, CI) have no terminal: a bar there writes carriage returns into the
log, or nothing at all. Without a terminal, :class:`Progress` prints one line every ``every``
seconds (and at the end) instead::

    immunosim: dose_timing: 4096/13500 runs (30%), 152 runs/s, 62 s left

``progress=None`` picks by whether stderr is a terminal; ``True`` shows the bar (and, off a
terminal, the lines too); ``False`` is silent.
"""

from __future__ import annotations

import sys
import time

#: Seconds between log lines when stderr is not a terminal (local sweeps).
LOG_EVERY = 10.0


class Progress:
    """Count finished runs; show them as a bar or as periodic log lines.

    Parameters
    ----------
    total : int
        Runs to reach (those the engine computes).
    initial : int
        Runs already done (a resumed sweep).
    progress : bool or None
        None: a bar on a terminal, log lines otherwise; True: the bar (and log lines off a
        terminal); False: nothing.
    desc : str
        Name shown (the config's ``name``).
    every : float, optional
        Seconds between log lines (default :data:`LOG_EVERY`).
    note : str, optional
        Printed once at the start in log mode (``immunosim: NAME: note``).
    """

    def __init__(self, total: int, initial: int, progress: bool | None, desc: str,
                 every: float | None = None, note: str = ""):
        from tqdm.auto import tqdm

        tty = sys.stderr.isatty()
        self.bar = tqdm(total=total, initial=initial, unit="run", desc=desc,
                        disable=not (progress or (progress is None and tty)))
        self.log = progress is not False and not tty
        self.total, self.n, self.desc = total, initial, desc
        self.every = LOG_EVERY if every is None else every
        self.t0 = self.last = time.monotonic()
        self.start = initial
        if self.log and note:
            print(f"immunosim: {desc}: {note}", file=sys.stderr, flush=True)

    def update(self, k: int) -> None:
        """``k`` more runs are done."""
        self.bar.update(k)
        self.n += k
        now = time.monotonic()
        if self.log and (now - self.last >= self.every or self.n >= self.total):
            self.last = now
            print(self.line(now), file=sys.stderr, flush=True)

    def line(self, now: float) -> str:
        """``immunosim: NAME: n/total runs (p%), r runs/s, s left``."""
        rate = (self.n - self.start) / max(now - self.t0, 1e-9)
        left = (f", {(self.total - self.n) / rate:.0f} s left"
                if 0 < self.n < self.total and rate > 0 else "")
        return (f"immunosim: {self.desc}: {self.n}/{self.total} runs "
                f"({100 * self.n / max(self.total, 1):.0f}%), {rate:.0f} runs/s{left}")

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
