"""The command line: exit status 2 with one line and no traceback on bad input; nothing
half-written is left behind."""

import subprocess
import sys

import pytest

from tests.conftest import ROOT, SMALL_CONFIG


def cli(*args, cwd=None):
    """A real process running the console script's module (one test keeps it: start-up, the
    installed entry point, the exit status seen by a shell)."""
    return subprocess.run([sys.executable, "-m", "immunosim", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.fixture
def run(capsys):
    """The CLI in-process: the same ``main()`` the console script calls, its exit status
    (argparse's usage errors included) and what it printed, like ``subprocess.run``."""
    import types

    from immunosim.cli import main

    def call(*args):
        capsys.readouterr()
        try:
            rc = main([str(a) for a in args])
        except SystemExit as e:  # argparse: --help, usage errors
            rc = e.code
        out, err = capsys.readouterr()
        return types.SimpleNamespace(returncode=rc, stdout=out, stderr=err)

    return call


def test_info_lists_parameters_with_units_and_sources(run):
    r = run("info")
    assert r.returncode == 0
    assert "msc_half_life = 1 d [0.5, 2] (> 0); mice: Lee RH et al." in r.stdout
    assert "std_therapy = 0 1 [0, 0.9] ([0, 1)); assumed" in r.stdout
    assert "igg_half_life = 21 d" in r.stdout


def test_validate_examples(run):
    files = sorted((ROOT / "configs").rglob("*.toml"))
    r = run("validate", *files)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(": ok") == len(files) >= 4
    assert "calibrate.toml: ok (calibration:" in r.stdout


BROKEN = {
    "unknown_key": ("[scenarios.msc]\nmsc = { dose_per_kg = 1e6 }\n",
                    "scenarios.msc.msc.dose_per_kg: unknown key 'dose_per_kg'; "
                    "did you mean 'amount'?"),
    "negative": ("[scenarios.msc]\nmsc = { amount = -5 }\n", "scenarios.msc.msc.amount: -5"),
    "after_horizon": ("horizon = 100\n[scenarios.msc]\nmsc = { amount = 1e6, time = 200 }\n",
                      "scenarios.msc: dose at day 200 is after the horizon (100 d)"),
    "empty_axis": ("[scenarios.msc]\nmsc = { amount = 1e6 }\n[sweep.axes.a]\n"
                   "target = 'msc.amount'\nvalues = []\n", "sweep.axes.a.values: empty axis"),
    "bad_toml": ("horizon = = 1\n", "not valid TOML"),
}


@pytest.mark.parametrize("command", ["validate", "run", "sweep"])
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_bad_config_exits_2_with_one_line(tmp_path, capsys, command, case):
    """In-process (the same main() the console script calls), for speed."""
    from immunosim.cli import main

    text, message = BROKEN[case]
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    args = [command, str(cfg)] + (["-o", str(tmp_path / "out.zarr")] if command == "sweep"
                                  else [])
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert message in lines[0], lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]  # nothing written


def test_bad_config_in_a_real_process(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(BROKEN["unknown_key"][0])
    r = cli("sweep", cfg, "-o", tmp_path / "out.zarr")
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    assert r.stderr.strip() == "immunosim: error: " + BROKEN["unknown_key"][1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_usage_errors_exit_2(tmp_path, run):
    r = run("sweep")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    cfg = tmp_path / "c.toml"
    cfg.write_text(SMALL_CONFIG)
    r = run("sweep", cfg, "-o", tmp_path / "missing_dir" / "o.zarr")
    assert r.returncode == 2 and "does not exist" in r.stderr
    r = run("sweep", cfg, "-o", tmp_path / "o.txt")
    assert r.returncode == 2 and "cannot tell the format" in r.stderr
    r = run("sweep", cfg, "-o", tmp_path / "o.zarr", "--workers", "0")
    assert r.returncode == 2 and "--workers" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml"]


def test_run_and_sweep(tmp_path, run):
    """The summary's values, not its headers: each column equals the numbers recomputed from
    the written result (tests/test_summary.py checks them). Catches: scenarios' columns swapped
    or mislabelled, the sweep points pooled into one line, a share over the wrong denominator,
    a mean for the median, a failed run counted, --select ignored."""
    import xarray as xr

    from immunosim.experiments.config import SweepConfig, load_config
    from immunosim.experiments.sweep import sweep
    from tests.test_summary import check_column, parse

    cfg = tmp_path / "c.toml"
    cfg.write_text(SMALL_CONFIG)
    r = run("run", cfg)
    assert r.returncode == 0, r.stderr
    plain = sweep(load_config(cfg).model_copy(update={"sweep": SweepConfig()}),  # run: no axes
                  progress=False)
    (table,) = parse(r.stdout).values()
    assert list(table) == ["untreated", "msc"]
    for s in table:
        check_column(table[s], plain.sel(scenario=s))
    r = run("sweep", cfg, "-o", tmp_path / "o.zarr", "--quiet", "--select", "amount=3e6")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == f"wrote {tmp_path / 'o.zarr'}"
    ds = xr.open_zarr(tmp_path / "o.zarr").load()
    assert set(ds.remission.dims) == {"scenario", "amount", "n_infusions", "patient"}
    msc = parse(r.stdout)["scenario msc"]
    assert list(msc) == ["all 2 points", "point 1", "point 2"]
    for col, d in zip(msc, [ds.sel(scenario="msc", amount=3e6)] + [
            ds.sel(scenario="msc", amount=3e6, n_infusions=n) for n in (1, 2)]):
        check_column(msc[col], d)
    assert ds.remission.sel(scenario="msc", amount=3e6).any()  # not all shares are 0


def test_select_is_checked_before_any_compute(tmp_path, run):
    cfg = tmp_path / "c.toml"
    cfg.write_text(SMALL_CONFIG)
    r = run("sweep", cfg, "-o", tmp_path / "o.zarr", "--select", "dose=1e6")
    assert r.returncode == 2 and r.stderr.strip() == (
        "immunosim: error: --select: 'dose' is not a scenario or sweep axis of small; valid: "
        "scenario, amount, n_infusions")
    r = run("run", cfg, "--select", "amount")
    assert r.returncode == 2 and "expected AXIS=VALUE" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml"]


def test_config_warning_is_one_line(tmp_path, run):
    p = tmp_path / "w.toml"
    p.write_text("[scenarios.soc]\ntherapy = [{ drug = 'glucocorticoid', oral_mg = 150 }]\n")
    r = run("validate", p)
    assert r.returncode == 0 and ": ok" in r.stdout
    assert r.stderr.strip().splitlines() == [
        "immunosim: warning: scenarios.soc.therapy.0.oral_mg: 150 mg/d prednisone is above "
        "100 mg/d (induction is 0.5-1 mg/kg/d, 35-70 mg/d)"]


def test_sweep_on_dask_errors_are_one_line(tmp_path, capsys, monkeypatch):
    """--scheduler without dask.distributed says what to install; an unreachable scheduler,
    a second cluster option or --workers with Dask are one-line errors (exit 2)."""
    import immunosim.experiments as experiments
    from immunosim.cli import main

    cfg = tmp_path / "c.toml"
    cfg.write_text(SMALL_CONFIG)
    base = ["sweep", str(cfg), "-o", str(tmp_path / "o.zarr")]
    cases = [(["--dask-local", "1", "--scheduler", "tcp://127.0.0.1:9"], "not allowed with"),
             (["--dask-local", "1", "--workers", "2"], "--workers: engine threads"),
             (["--task-size", "10"], "--task-size: only with --scheduler or --dask-local")]
    pytest.importorskip("distributed")
    from immunosim.experiments import distributed as dist

    monkeypatch.setattr(dist, "CONNECT_TIMEOUT", "0.5s")
    cases.append((["--scheduler", "tcp://127.0.0.1:9"],
                  "--scheduler: cannot connect to 'tcp://127.0.0.1:9'"))
    for extra, message in cases:
        try:
            rc = main(base + extra)
        except SystemExit as e:  # argparse's usage errors
            rc = e.code
        assert rc == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    # without the dask extra
    monkeypatch.setitem(sys.modules, "distributed", None)
    monkeypatch.delitem(sys.modules, "immunosim.experiments.distributed")
    monkeypatch.delattr(experiments, "distributed", raising=False)
    assert main(base + ["--scheduler", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'immunosim[dask]'" in err, err
    assert not (tmp_path / "o.zarr.partial").exists()
