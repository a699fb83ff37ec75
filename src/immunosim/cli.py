"""``immunosim`` command line: run, sweep, validate, plot, report, info, sensitivity, calibrate,
validation-report.

Every expected error (bad config, bad path, missing variables) is one line on stderr and exit
status 2, with no traceback; an error of the system (read-only location, full disk) is one line
and exit status 1. Config warnings (a likely unit slip) are one line each too.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import warnings

EXIT_USAGE = 2
EXIT_OS_ERROR = 1  # the system refused (read-only location, full disk): not the input's fault
EXIT_INTERRUPT = 130
EXIT_TERM = 143


class Terminated(Exception):
    """Raised by the SIGTERM handler so that the CLI exits 143 with one line."""


def _on_sigterm(signum, frame):
    raise Terminated


#: Set by :func:`_on_sigint` when Ctrl-C arrives during :func:`main`.
_SIGINT_SEEN = threading.Event()


def _on_sigint(signum, frame):
    """Python's own SIGINT handler, remembering that the signal came: a Ctrl-C while a C
    extension loads can surface as another error (numpy turns it into an ImportError whose
    chain no longer holds the KeyboardInterrupt), which :func:`main` then reads as the
    interruption it is."""
    _SIGINT_SEEN.set()
    raise KeyboardInterrupt


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    """``warnings.showwarning`` for the CLI: ``immunosim: warning: key.path: ...``."""
    print(f"immunosim: warning: {message}", file=sys.stderr if file is None else file)


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (checked like a config key)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: expected an integer >= 1") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n} is invalid: expected an integer >= 1")
    return n


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse prints usage first otherwise)
        self.exit(EXIT_USAGE, f"immunosim: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    ap = _Parser(prog="immunosim", description="Simulate MSC therapy of refractory SLE.")
    ap.add_argument("--version", action="version", version=f"immunosim {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("run", help="run a config's scenarios over its cohort, print a summary")
    r.add_argument("config")
    r.add_argument("-o", "--output", help="also write the result (.zarr or .nc)")
    r.add_argument("--overwrite", action="store_true",
                   help="replace a previous immunosim result at -o")
    r.add_argument("--workers", type=_positive_int, default=None, help="engine threads")
    r.add_argument("--select", action="append", metavar="scenario=NAME",
                   help="summary: only these scenarios (repeatable; several: scenario=a,b)")

    s = sub.add_parser("sweep", help="run a config's full sweep and write the result")
    s.add_argument("config")
    s.add_argument("-o", "--output", help="result path (.zarr or .nc); default output.path")
    s.add_argument("--resume", action="store_true", help="continue an interrupted sweep")
    s.add_argument("--overwrite", action="store_true",
                   help="replace a previous immunosim result at the output path")
    s.add_argument("--workers", type=_positive_int, default=None, help="engine threads")
    s.add_argument("--chunk-size", type=_positive_int, default=None,
                   help="trajectories per batch (results do not depend on it)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.add_argument("--select", action="append", metavar="AXIS=VALUE",
                   help="summary: show these sweep points or scenarios (repeatable; e.g. "
                        "amount=1e6; several values: interval=30,90)")
    s.add_argument("--task-size", type=_positive_int, default=None,
                   help="with Dask: runs per task (results do not depend on it)")
    d = s.add_mutually_exclusive_group()
    d.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on this dask.distributed scheduler (e.g. tcp://host:8786); "
                        "see docs/distributed.md")
    d.add_argument("--dask-local", type=_positive_int, default=None, metavar="N",
                   help="run on a new local Dask cluster of N single-threaded worker processes")

    v = sub.add_parser("validate", help="check a config without computing anything")
    v.add_argument("config", nargs="+")

    p = sub.add_parser("plot", help="draw figures from a result file")
    p.add_argument("result")
    p.add_argument("-o", "--output", required=True, help="directory for the figures")
    p.add_argument("--figures", nargs="*", default=None,
                   help="names of figures to draw (default: all that the result supports)")
    p.add_argument("--format", nargs="*", default=["png", "svg"], help="file formats")
    p.add_argument("--select", action="append", default=None, metavar="DIM=VALUE",
                   help="hold a scenario or sweep axis at a value in every figure (repeatable; "
                        "nearest within 5%% for floats, exact for names and integers); "
                        "e.g. --select amount=1e6 --select first_day=91")
    p.add_argument("--subgroup", action="append", default=None, metavar="CONDITION",
                   help="draw only the patients meeting a condition on a patient parameter or "
                        "covariate (repeatable, combined with AND): NAME OP VALUE with OP one "
                        "of > >= < <= == and VALUE a number or a cohort quantile qNN; "
                        "e.g. --subgroup 'activation_rate>q75'")
    p.add_argument("--relapse-origin", choices=["remission_onset", "time_origin"],
                   default=None, help="time origin of the relapse-free curves (default: each "
                                      "patient's remission onset)")

    _report_parser(sub)

    sub.add_parser("info", help="version, model, parameters with units and sources")

    c = sub.add_parser("calibrate", help="fit the cohort to published outcomes (targets)")
    c.add_argument("config", help="a calibration config (e.g. configs/calibrate.toml)")
    c.add_argument("-o", "--output", help="fitted cohort TOML; default calibration.output")
    c.add_argument("--workers", type=_positive_int, default=None, help="engine threads")
    c.add_argument("--quiet", action="store_true", help="no progress lines")
    cd = c.add_mutually_exclusive_group()
    cd.add_argument("--scheduler", metavar="ADDRESS",
                    help="simulate the cloud on this dask.distributed scheduler")
    cd.add_argument("--dask-local", type=_positive_int, default=None, metavar="N",
                    help="simulate the cloud on a new local Dask cluster of N worker processes")

    vr = sub.add_parser("validation-report",
                        help="compare a calibrated cohort with every target (docs/validation.md)")
    vr.add_argument("config", help="the calibration config")
    vr.add_argument("--cohort", help="calibrated cohort TOML; default calibration.output")
    vr.add_argument("-o", "--output", default="docs/validation.md", help="Markdown report")
    vr.add_argument("--draws", type=_positive_int, default=40,
                    help="posterior draws to simulate (at most all in the cohort file)")
    vr.add_argument("--patients", type=_positive_int, default=2000,
                    help="virtual patients per draw and arm")
    vr.add_argument("--workers", type=_positive_int, default=None, help="engine threads")

    n = sub.add_parser("sensitivity", help="Sobol' sensitivity of outcomes to patient parameters")
    n.add_argument("config")
    n.add_argument("--scenario", help="default: the first scenario with an MSC infusion")
    n.add_argument("--parameters", nargs="+", default=None, metavar="NAME",
                   help="model parameters to vary besides the cohort's (log-uniform over range)")
    n.add_argument("--samples", type=_positive_int, default=256,
                   help="N, a power of 2 (N*(D+2) patients for D parameters)")
    n.add_argument("--seed", type=int, default=None, help="default: the config's seed")
    n.add_argument("-o", "--output", help="write the indices (.nc or .zarr)")
    n.add_argument("--figure", help="draw the indices to this image file")
    n.add_argument("--workers", type=_positive_int, default=None, help="engine threads")
    n.add_argument("--quiet", action="store_true", help="no progress bar")
    x = sub.add_parser("export-sbml", help="write one scenario for one patient as SBML L3V2 "
                                           "(needs immunosim[sbml]; docs/sbml.md)")
    x.add_argument("config")
    x.add_argument("-o", "--output", required=True, help="SBML file to write (e.g. model.xml)")
    x.add_argument("--scenario", help="default: the config's first scenario")
    x.add_argument("--patient", type=int, default=None, metavar="I",
                   help="cohort patient I (default: the reference patient, model.parameters)")
    x.add_argument("--antimony", metavar="FILE", help="also write the Antimony source")
    return ap


def _report_parser(sub) -> None:
    """``immunosim report RESULT -o report.html`` (options as ``immunosim plot``)."""
    rp = sub.add_parser("report", help="write a self-contained HTML report of a result")
    rp.add_argument("result")
    rp.add_argument("-o", "--output", required=True, help="HTML file to write (report.html)")
    rp.add_argument("--figures", nargs="*", default=None,
                    help="names of figures to include (default: all that the result supports)")
    rp.add_argument("--select", action="append", default=None, metavar="DIM=VALUE",
                    help="hold a scenario or sweep axis at a value in the tables and figures "
                         "(repeatable; as immunosim plot --select)")
    rp.add_argument("--subgroup", action="append", default=None, metavar="CONDITION",
                    help="report only the patients meeting a condition (repeatable, combined "
                         "with AND; as immunosim plot --subgroup), e.g. 'activation_rate>q75'")
    rp.add_argument("--relapse-origin", choices=["remission_onset", "time_origin"],
                    default=None, help="time origin of the relapse-free curves")
    rp.add_argument("--overwrite", action="store_true", help="replace an existing report")


def _export_sbml(args) -> int:
    """``immunosim export-sbml``: one line and exit 2 for a missing extra or a bad choice."""
    from pathlib import Path

    from .experiments.config import ConfigError, load_config
    from .experiments.sbml import SBMLExportError, export_config

    for opt, path in (("-o", args.output), ("--antimony", args.antimony)):
        if path and not Path(path).resolve().parent.is_dir():
            raise ConfigError(f"{opt}: {path}: the directory does not exist")
    try:
        cfg = load_config(args.config)
        ex = export_config(cfg, scenario=args.scenario, patient=args.patient)
    except SBMLExportError as e:
        print("immunosim: error: " + " ".join(str(e).split()), file=sys.stderr)
        return EXIT_USAGE
    if cfg.sweep.axes:
        print("note: sweep axes are not applied; the scenario's own values are exported")
    Path(args.output).write_text(ex.sbml, encoding="utf-8")
    print(f"wrote {args.output} (SBML L3V2; libsbml: 0 errors, {ex.warnings} warnings, "
          f"mostly units)")
    if args.antimony:
        Path(args.antimony).write_text(ex.antimony, encoding="utf-8")
        print(f"wrote {args.antimony}")
    return 0


def _sensitivity(args, cfg) -> None:
    from pathlib import Path

    from matplotlib.figure import Figure

    from .experiments.config import ConfigError
    from .experiments.sensitivity import sensitivity_table, sobol_sensitivity, write_sensitivity

    for opt, path in (("-o", args.output), ("--figure", args.figure)):  # before any compute
        if path and not Path(path).resolve().parent.is_dir():
            raise ConfigError(f"{opt}: {path}: the directory does not exist")
    kinds = Figure().canvas.get_supported_filetypes()
    if args.figure and Path(args.figure).suffix.lstrip(".").lower() not in kinds:
        raise ConfigError(f"--figure: {args.figure}: expected one of the image formats "
                          f"{', '.join(sorted(kinds))}")
    ds = sobol_sensitivity(cfg, scenario=args.scenario, parameters=args.parameters,
                           samples=args.samples, seed=args.seed, threads=args.workers,
                           progress=not args.quiet)
    print(sensitivity_table(ds))
    if args.output:
        write_sensitivity(ds, args.output)
        print(f"wrote {args.output}")
    if args.figure:
        from .plotting.sensitivity import draw_sensitivity

        draw_sensitivity(ds).savefig(args.figure, dpi=150)
        print(f"wrote {args.figure}")


def _info() -> str:
    from . import __version__
    from .engines.ode.solver import DEFAULT_METHOD
    from .engines.ode.tableaus import METHODS
    from .model import sle_msc as m

    lines = [f"immunosim {__version__}", f"model: {m.NAME} ({m.N_STATES} states, "
             f"{m.N_PARAMS} parameters)", f"ODE methods: {', '.join(METHODS)} "
             f"(default {DEFAULT_METHOD})", "", "states:"]
    for s in m.STATES:
        lines.append(f"  {s.name:<16} {s.unit:<14} {s.long_name}")
    lines += ["", "parameters (name = default unit [plausible range] (hard domain); source):"]
    for p in m.PARAMETERS:
        lines.append(f"  {p.name} = {p.default:g} {p.unit} [{p.low:g}, {p.high:g}] "
                     f"({p.domain_text}); {p.source}")
    return "\n".join(lines)


def _check_workers(n: int | None) -> None:
    from .experiments.config import ConfigError

    if n is not None and n < 1:
        raise ConfigError(f"--workers: {n!r} is not a positive number of threads")


def _kind(path: str) -> str:
    """"calibration" (a ``[calibration]`` table), "cohort" (a cohort file to include: a
    ``[cohort]`` table and no scenarios) or "config"; unreadable files are "config" and the
    regular loader reports why."""
    import tomllib

    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError):
        return "config"
    if "calibration" in data:
        return "calibration"
    return "cohort" if "cohort" in data and "scenarios" not in data else "config"


def _validate(path: str) -> str:
    from .experiments.config import load_config

    kind = _kind(path)
    if kind == "calibration":
        from .experiments.calibrate import load_problem

        p = load_problem(path)
        return (f"ok (calibration: {len(p.fitted)} fitted targets, {len(p.settings.fit)} "
                f"parameters, arms {', '.join(p.arms)})")
    if kind == "cohort":
        from .experiments.calibrate import check_cohort_file

        return check_cohort_file(path)
    cfg = load_config(path)
    return (f"ok ({len(cfg.scenarios)} scenarios, {len(cfg.sweep.axes)} axes, "
            f"{cfg.cohort.size} patients)")


def _calibrate(args) -> None:
    from pathlib import Path

    from .experiments.calibrate import calibrate, fit_table, load_problem, write_cohort
    from .experiments.config import ConfigError

    p = load_problem(args.config)
    out = Path(args.output) if args.output else p.path.parent / p.settings.output
    if not out.parent.exists():
        raise ConfigError(f"--output: directory '{out.parent}' does not exist")
    if not os.access(out.parent, os.W_OK):  # before hours of compute
        raise ConfigError(f"--output: directory '{out.parent}' is not writable")
    if args.scheduler is None and args.dask_local is None:
        res = calibrate(p, threads=args.workers, verbose=not args.quiet)
    else:
        from .experiments.sweep import distributed_module

        if args.workers is not None:
            raise ConfigError("--workers: engine threads of the local engine; not with Dask")
        with distributed_module().connect(scheduler=args.scheduler,
                                          local_workers=args.dask_local) as client:
            res = calibrate(p, verbose=not args.quiet, client=client)
    print(fit_table(res))
    write_cohort(res, out, command=f"immunosim calibrate {args.config}")
    print(f"wrote {out}")


def _select(items: list[str] | None, cfg) -> dict[str, list[str]]:
    """``--select`` parsed and its keys checked against the config before any compute (the
    values are checked against the result)."""
    from .experiments.summary import SelectError, parse_select

    select = parse_select(items)
    valid = ["scenario", *cfg.sweep.axes] + (["point"] if cfg.sweep.design != "grid" else [])
    for name in select:
        if name not in valid:
            raise SelectError(f"--select: '{name}' is not a scenario or sweep axis of "
                              f"{cfg.name}; valid: {', '.join(valid)}")
    return select


def _sweep(args, cfg, out):
    """``immunosim sweep`` on the local engine or on Dask (``--scheduler``, ``--dask-local``)."""
    from pathlib import Path

    from .experiments.config import ConfigError
    from .experiments.sweep import claim_output, distributed_module, sweep

    progress = False if args.quiet else None
    dask = args.scheduler is not None or args.dask_local is not None
    if not dask:
        if args.task_size is not None:
            raise ConfigError("--task-size: only with --scheduler or --dask-local")
        return sweep(cfg, out, resume=args.resume, workers=args.workers,
                     chunk_size=args.chunk_size, progress=progress, overwrite=args.overwrite)
    opt = "--scheduler" if args.scheduler is not None else "--dask-local"
    if args.workers is not None:
        raise ConfigError(f"--workers: engine threads of the local engine; not with {opt} "
                          "(each Dask worker runs its kernels on its own threads)")
    dist = distributed_module()
    lock = claim_output(Path(out))  # before the cluster starts: a second writer is refused now
    try:
        with dist.connect(scheduler=args.scheduler, local_workers=args.dask_local) as client:
            return sweep(cfg, out, resume=args.resume, chunk_size=args.chunk_size,
                         progress=progress, client=client, task_size=args.task_size,
                         overwrite=args.overwrite)
    finally:
        lock.release()  # a no-op when the finished sweep released it


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0, 1 for an OS error, 2 for bad input, 130 Ctrl-C,
    143 SIGTERM)."""
    old = old_int = None
    _SIGINT_SEEN.clear()
    if threading.current_thread() is threading.main_thread():
        old = signal.signal(signal.SIGTERM, _on_sigterm)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not if ignored
            old_int = signal.signal(signal.SIGINT, _on_sigint)
    args = None
    try:
        args = _parser().parse_args(argv)
        with warnings.catch_warnings():  # restores showwarning on exit
            warnings.showwarning = _one_line_warning
            return _main(args)
    except KeyboardInterrupt:
        print(_interrupted("interrupted", args), file=sys.stderr)
        return EXIT_INTERRUPT
    except Terminated:
        print(_interrupted("terminated (SIGTERM)", args), file=sys.stderr)
        return EXIT_TERM
    except Exception:
        if not _SIGINT_SEEN.is_set():
            raise
        print(_interrupted("interrupted", args), file=sys.stderr)  # see _on_sigint
        return EXIT_INTERRUPT
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)
        if old_int is not None:
            signal.signal(signal.SIGINT, old_int)


def _interrupted(what: str, args) -> str:
    if args is not None and getattr(args, "command", None) == "sweep":
        out = args.output
        if getattr(args, "written", None) is not None:
            return f"immunosim: {what}; the result was complete: {args.written}"
        if out is not None and not os.path.exists(out + ".partial"):
            return f"immunosim: {what}; nothing was kept (interrupted before the first block)"
        return (f"immunosim: {what}; finished blocks are kept, continue with "
                f"`immunosim sweep {args.config} -o {out or '<output.path>'} --resume"
                f"{' --overwrite' if args.overwrite else ''}`")
    return f"immunosim: {what}"


def _main(args) -> int:
    from .errors import ImmunosimError  # the modules raising these load only when needed
    from .experiments.config import ConfigError, load_config

    expected = (ImmunosimError, FileNotFoundError)
    try:
        if args.command == "info":
            print(_info())
        elif args.command == "validate":
            for c in args.config:
                print(f"{c}: {_validate(c)}")
        elif args.command == "run":
            _check_workers(args.workers)
            from .experiments.config import SweepConfig
            from .experiments.sweep import summary_table, sweep

            cfg = load_config(args.config)
            cfg = cfg.model_copy(update={"sweep": SweepConfig()})
            select = _select(args.select, cfg)
            res = sweep(cfg, args.output, workers=args.workers, progress=False,
                        overwrite=args.overwrite)
            import xarray as xr

            from .experiments.results import open_result

            print(summary_table(res if isinstance(res, xr.Dataset) else open_result(res),
                                select))
        elif args.command == "sweep":
            _check_workers(args.workers)
            from .experiments.sweep import summary_table

            cfg = load_config(args.config)
            out = args.output or cfg.output.path
            if out is None:
                raise ConfigError("output: no output path; pass -o OUT or set output.path")
            select = _select(args.select, cfg)
            path = _sweep(args, cfg, out)
            args.written = path  # an interrupt from here on finds the result complete
            from .experiments.results import open_result

            with open_result(path) as ds:
                print(summary_table(ds, select))
            print(f"wrote {path}")
        elif args.command == "calibrate":
            _calibrate(args)
        elif args.command == "validation-report":
            from .reporting.validation import write_validation_report

            print(write_validation_report(args.config, args.cohort, args.output,
                                          draws=args.draws, patients=args.patients,
                                          threads=args.workers))
        elif args.command == "plot":
            from .plotting.api import plot_result

            opts = ({"survival": {"relapse_origin": args.relapse_origin}}
                    if args.relapse_origin else None)
            written = plot_result(args.result, args.output, figures=args.figures,
                                  formats=args.format, select=args.select,
                                  subgroup=args.subgroup, options=opts)
            for w in written:
                print(w)
        elif args.command == "report":
            from .reporting.report import write_report

            opts = ({"survival": {"relapse_origin": args.relapse_origin}}
                    if args.relapse_origin else None)
            out = write_report(args.result, args.output, figures=args.figures,
                               select=args.select, subgroup=args.subgroup, options=opts,
                               overwrite=args.overwrite)
            print(f"wrote {out}")
        elif args.command == "sensitivity":
            _sensitivity(args, load_config(args.config))
        elif args.command == "export-sbml":
            return _export_sbml(args)
        return 0
    except expected as e:
        print("immunosim: error: " + " ".join(str(e).split()), file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # e.g. `immunosim info | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:  # read-only location, full disk, ...: one line, no traceback
        print(_os_error_line(e, args), file=sys.stderr)
        return EXIT_OS_ERROR


def _os_error_line(e: OSError, args) -> str:
    """``immunosim: error: PATH: cause`` for an OS error, naming ``--resume`` after a sweep."""
    import errno

    path = e.filename or getattr(args, "output", None) or getattr(args, "config", "")
    cause = e.strerror or os.strerror(e.errno) if e.errno else str(e) or type(e).__name__
    hint = {errno.ENOSPC: "free some space", errno.EDQUOT: "free some space",
            errno.EROFS: "write elsewhere (-o)", errno.EACCES: "write elsewhere (-o)",
            errno.EPERM: "write elsewhere (-o)"}.get(e.errno, "")
    line = f"immunosim: error: {path}: {cause}"
    out = getattr(args, "output", None)
    if args.command == "sweep" and (out is None or os.path.exists(out + ".partial")):
        line += (f"; {hint + ', then ' if hint else ''}finished blocks are kept: continue with "
                 f"`immunosim sweep {args.config} -o {out or '<output.path>'} --resume"
                 f"{' --overwrite' if args.overwrite else ''}`")
    elif hint:
        line += f"; {hint}"
    return " ".join(line.split())


if __name__ == "__main__":
    sys.exit(main())
