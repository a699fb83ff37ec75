"""The sweep of :mod:`.sweep` on a ``dask.distributed`` cluster.

The client plans the sweep, writes the empty store (``OUT.partial``, metadata only) and submits
**tasks**: runs of consecutive blocks, about ``task_size`` runs each, with deterministic keys.
Each worker gets the :class:`~.sweep.Plan` once, in a :class:`SweepPlugin` that also warms
the Numba kernels (the client's plan when it is small, else the config to rebuild it from). It
computes its blocks engine batch by engine batch with :func:`~.sweep.compute_batch` and writes
every block straight into the store as whole chunks (one block is one chunk of every variable,
so no two writers share a chunk), then its marker file. The client only counts finished runs;
it never holds the result. At the end it finishes the store as a local sweep does
(consolidate, rename, optional NetCDF).

Resilience: a block already marked is skipped, so a task re-run after its worker was lost
recomputes only the blocks that worker had not finished; writes are idempotent (same seed,
same values, whole chunks); failed trajectories are status codes, never exceptions. Resume is
the local one: markers say what is done.

``import immunosim`` does not import this module; :func:`.sweep.distributed_module` does.
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from distributed import Client, LocalCluster, WorkerPlugin, as_completed, get_worker

from ..engines.ode.solver import LANES
from ..model import sle_msc as m
from .config import Config
from .progress import Progress
from .sweep import (
    BackgroundWrites,
    Block,
    Plan,
    SweepError,
    ZarrWriter,
    _batches,
    claim_output,
    compute_batch,
    config_digest,
    output_format,
    plan,
    shared_note,
)

#: Tasks per worker aimed at by the default task size: enough to balance the load at the end.
TASKS_PER_WORKER = 8
#: Upper bound of the default task size in runs (a few seconds of engine time per task).
MAX_TASK_RUNS = 2 ** 16
#: At most this many tasks per sweep (Dask's overhead is 0.2-1 ms per task); tasks grow past it.
MAX_TASKS = 10_000
#: Re-runs of a task that raised (a lost worker is the scheduler's ``allowed-failures``).
RETRIES = 2
#: ``distributed.scheduler.allowed-failures`` of the clusters started here (Dask's default: 3).
ALLOWED_FAILURES = 10
#: How long to wait for a scheduler address to answer.
CONNECT_TIMEOUT = "20s"
#: Seconds between progress lines when stderr is not a terminal.
LOG_EVERY = 30.0
#: The client sends its plan to the workers (in the plugin, kept by the scheduler) when it
#: pickles to at most this many bytes (about 10 MB for 12,500 patients); otherwise each worker
#: rebuilds it from the config, which takes seconds per thousand patients.
SHIP_PLAN_BYTES = 64 * 2 ** 20


# --- worker side ----------------------------------------------------------------------------


@dataclass
class _WorkerSweep:
    plan: Plan
    writer: ZarrWriter
    chunk: int  # runs per engine batch
    warmup_seconds: float = 0.0


#: This process's sweeps, by plugin name; filled by :meth:`SweepPlugin.setup`.
_SWEEPS: dict[str, _WorkerSweep] = {}
#: One task at a time computes in a worker process: a Numba ``parallel`` kernel must not be
#: entered from two threads at once (the workqueue threading layer aborts), and the kernel uses
#: the worker's threads itself, so nothing is oversubscribed.
_COMPUTE = threading.Lock()


def _plugin_name(cfg: Config, chunk_size: int | None, store: Path) -> str:
    where = hashlib.sha256(str(store).encode()).hexdigest()[:8]
    return f"immunosim-sweep-{config_digest(cfg)}-{chunk_size or 0}-{where}"


class SweepPlugin(WorkerPlugin):
    """Per worker: take the client's plan, or build it from the config (once), attach to the
    store, warm the Numba kernels on a few runs of the first block (kernels load from Numba's
    on-disk cache or compile here, not in the first task)."""

    def __init__(self, cfg: Config, chunk_size: int | None, store: Path,
                 plan: Plan | None = None):
        self.cfg, self.chunk_size, self.store, self.plan = cfg, chunk_size, Path(store), plan
        self.name = _plugin_name(cfg, chunk_size, self.store)

    def setup(self, worker=None) -> None:
        t = time.perf_counter()
        p = self.plan if self.plan is not None else plan(self.cfg, chunk_size=self.chunk_size)
        s = _WorkerSweep(p, ZarrWriter.attach(p, self.store),
                         self.chunk_size or self.cfg.output.chunk_size)
        with _COMPUTE:
            b = p.blocks[0]
            n = min(b.patients.stop - b.patients.start, LANES)
            few = Block(b.index, b.scenario, b.point, slice(b.patients.start, b.patients.start + n))
            compute_batch(p, [few] * math.ceil(LANES / n), threads=1)  # the SIMD-lane path
            one = Block(b.index, b.scenario, b.point, slice(b.patients.start, b.patients.start + 1))
            compute_batch(p, [one], threads=1)  # fewer runs than lanes: one at a time
        s.warmup_seconds = time.perf_counter() - t
        _SWEEPS[self.name] = s

    def teardown(self, worker=None) -> None:
        _SWEEPS.pop(self.name, None)


def _threads() -> int:
    with suppress(ValueError):
        return max(1, int(get_worker().state.nthreads))
    return 1


def _mark(markers: Path, index: int) -> bool:
    """Create the block's marker; False (and a ``.again-*`` record) if it already existed."""
    try:
        with open(markers / f"{index}.done", "x"):
            return True
    except FileExistsError:
        (markers / f"{index}.again-{uuid.uuid4().hex[:12]}").touch()
        return False


def run_blocks(name: str, indices: tuple[int, ...]) -> dict:
    """One task: compute and write the blocks ``indices`` of the sweep ``name`` not yet marked.

    Returns counts only: ``runs`` (all runs of the task's blocks, done here or before),
    ``written`` (block indices written here), ``seconds`` (compute and write time), ``pid``.
    """
    s = _SWEEPS.get(name)
    if s is None:
        raise RuntimeError(f"this worker has no sweep {name!r}: its SweepPlugin is not "
                           "registered (or failed; see the worker's log)")
    p = s.plan
    blocks = [p.blocks[i] for i in indices]
    runs = sum(b.patients.stop - b.patients.start for b in blocks)
    task = _TaskWriter(s.writer)
    t = time.perf_counter()
    with _COMPUTE, BackgroundWrites(task) as writes:  # batch k written while k + 1 computes
        todo = [b for b in blocks if not (s.writer.markers / f"{b.index}.done").exists()]
        buffer = None
        for batch in _batches(p, todo, s.chunk):
            n = sum(b.patients.stop - b.patients.start for b in batch)
            if buffer is None or buffer.shape[0] < n:
                buffer = np.empty((n, len(p.t_assess), m.N_STATES))
            writes.submit(batch, compute_batch(p, batch, threads=_threads(), buffer=buffer))
    return {"runs": runs, "written": task.written, "seconds": time.perf_counter() - t,
            "pid": os.getpid()}


class _TaskWriter:
    """A task's blocks into the store: data, then the marker (:func:`_mark`)."""

    def __init__(self, writer: ZarrWriter):
        self.writer = writer
        self.written: list[int] = []

    def write(self, b: Block, data: dict) -> None:
        self.writer.write_data(b, data)
        _mark(self.writer.markers, b.index)
        self.written.append(b.index)


def _run_chunk(fn, args: tuple):
    """A task of :func:`map_in_order`: ``fn(*args, threads)``, one task at a time per worker."""
    with _COMPUTE:
        return fn(*args, _threads())


# --- client side ----------------------------------------------------------------------------


def map_in_order(client: Client, fn, items: list[tuple]) -> Iterator:
    """``fn(*item, threads)`` for each item as Dask tasks; results yielded in ``items``' order,
    each as soon as it and those before it are done (the client holds the rest meanwhile)."""
    futures = client.map(_run_chunk, [fn] * len(items), items, retries=RETRIES, pure=False)
    try:
        for f in futures:
            yield f.result()
            f.release()
    finally:
        for f in futures:
            f.release()


@dataclass
class DistributedRun:
    """What a distributed sweep did (the result itself is in the store at ``path``)."""

    path: Path
    n_blocks: int
    n_tasks: int  # submitted by this call (blocks already done at a resume are not)
    task_runs: int  # runs per task aimed at
    resumed_blocks: int  # blocks already done when this call started
    warmup_seconds: float  # plugin set-up on every worker: plan + kernel warm-up
    plan_shipped: bool  # the client's plan was sent (else each worker rebuilt it)
    compute_seconds: float  # submission of the first task to the last result
    runs: int  # runs computed by this call
    written: list[int] = field(default_factory=list)  # blocks written, as the tasks reported
    rewritten: list[int] = field(default_factory=list)  # blocks whose marker already existed
    pids: set[int] = field(default_factory=set)  # worker processes that wrote blocks


def task_size_for(n_runs: int, chunk: int, n_workers: int, task_size: int | None = None) -> int:
    """Runs per task: ``task_size``, or about :data:`TASKS_PER_WORKER` tasks per worker within
    ``[chunk, MAX_TASK_RUNS]``; never more than :data:`MAX_TASKS` tasks."""
    floor = math.ceil(n_runs / MAX_TASKS)
    if task_size is not None:
        return max(task_size, floor)
    aim = math.ceil(n_runs / (TASKS_PER_WORKER * max(n_workers, 1)))
    return max(floor, min(max(aim, chunk), MAX_TASK_RUNS))


def _groups(p: Plan, blocks: list[Block], runs: int) -> Iterator[tuple[int, ...]]:
    for g in _batches(p, blocks, runs):
        yield tuple(b.index for b in g)


def _Progress(total: int, initial: int, progress: bool | None, desc: str,
              note: str = "") -> Progress:
    """The local sweep's progress (a bar, or log lines), a line every :data:`LOG_EVERY` s."""
    return Progress(total, initial, progress, desc, every=LOG_EVERY, note=note)


def sweep_on_client(cfg: Config, out: Path, client: Client, *, resume: bool = False,
                    chunk_size: int | None = None, task_size: int | None = None,
                    progress: bool | None = None, overwrite: bool = False) -> DistributedRun:
    """Run the sweep of ``cfg`` on ``client``'s cluster into ``out`` (see :func:`.sweep.sweep`).

    ``out`` must be on storage that every worker sees at the same (absolute) path.
    """
    out = Path(out).resolve()
    fmt = output_format(out, cfg.output.format)
    lock = claim_output(out)  # before planning: a second writer is refused at once
    try:
        p = plan(cfg, chunk_size=chunk_size)
        writer = ZarrWriter(p, out, fmt, resume, overwrite, lock=lock)
    except BaseException:
        lock.release()
        raise
    done = writer.done()
    todo = [b for b in p.blocks if b.index not in done]
    n_workers = len(client.scheduler_info(n_workers=-1)["workers"])
    chunk = chunk_size or cfg.output.chunk_size
    runs = task_size_for(p.n_runs, chunk, n_workers, task_size)
    tasks = list(_groups(p, todo, runs))
    shipped = len(pickle.dumps(p, protocol=pickle.HIGHEST_PROTOCOL)) <= SHIP_PLAN_BYTES
    plugin = SweepPlugin(cfg, chunk_size, out, p if shipped else None)
    t = time.perf_counter()
    client.register_plugin(plugin, name=plugin.name)
    warm = time.perf_counter() - t
    size = {b.index: b.patients.stop - b.patients.start for b in p.blocks}
    ndone = sum(size[i] for i in done)
    bar = _Progress(sum(size.values()), ndone, progress, cfg.name, note=shared_note(p))
    report = DistributedRun(out, len(p.blocks), len(tasks), runs, len(done), warm, shipped,
                            0.0, 0)
    futures = []
    try:
        t = time.perf_counter()
        keys = [f"{plugin.name}-{g[0]}-{len(g)}" for g in tasks]
        futures = client.map(run_blocks, [plugin.name] * len(tasks), tasks, key=keys,
                             retries=RETRIES)
        for fut in as_completed(futures):
            try:
                r = fut.result()
            except Exception as e:  # after RETRIES, or a worker lost allowed-failures times
                raise SweepError(f"task {fut.key} failed ({type(e).__name__}: "
                                 f"{' '.join(str(e).split())}); finished blocks are kept, "
                                 "continue with resume") from e
            report.runs += sum(size[i] for i in r["written"])
            report.written += r["written"]
            report.pids.add(r["pid"])
            bar.update(r["runs"])
        report.compute_seconds = time.perf_counter() - t
    finally:
        bar.close()
        for f in futures:
            f.release()
        with suppress(Exception):
            client.unregister_worker_plugin(plugin.name)
    markers = writer.markers.iterdir() if writer.markers.exists() else ()  # none: complete
    report.rewritten = sorted(int(f.name.split(".")[0]) for f in markers if ".again-" in f.name)
    writer.finish()
    return report


@contextmanager
def connect(scheduler: str | None = None, local_workers: int | None = None) -> Iterator[Client]:
    """A client: of the scheduler at ``scheduler``, or of a new :class:`~distributed.LocalCluster`
    of ``local_workers`` single-threaded worker processes (closed on exit)."""
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as e:
            raise SweepError(f"--scheduler: cannot connect to {scheduler!r}: "
                             f"{' '.join(str(e).split())}") from None
        with client:
            yield client
        return
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES}), \
            local_cluster(local_workers or 1) as cluster, Client(cluster) as client:
        yield client


def local_cluster(n_workers: int) -> LocalCluster:
    """``n_workers`` worker processes of one thread each, Numba limited to one thread each."""
    return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                        dashboard_address=None, env={"NUMBA_NUM_THREADS": "1"})
