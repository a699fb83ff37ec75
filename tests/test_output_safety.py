"""Output safety (issue 17): a user's data at the output path is never deleted, one writer per
output, store creation interruptible, OS errors in one line (exit 1) with the work kept."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from immunosim.cli import main
from immunosim.experiments import sweep as sw
from immunosim.experiments.config import load_config

SMALL = """
name = "small"
horizon = 30
seed = 1
[cohort]
size = 4
[cohort.parameters.activation_rate]
distribution = "lognormal"
median = 0.05
cv = 0.3
[scenarios.untreated]
[scenarios.msc.msc]
amount = 1e6
time = 5
[outcomes]
landmarks = [10, 30]
[output]
chunk_size = 2
"""


@pytest.fixture
def small(tmp_path):
    p = tmp_path / "small.toml"
    p.write_text(SMALL)
    return p


@pytest.fixture
def reference(small):
    return sw.sweep(load_config(small), progress=False)


def _same(path, ref):
    with xr.open_zarr(path) as ds:
        for v in ("status", "remission", "time_to_response", "activity_at", "response"):
            np.testing.assert_array_equal(ds[v].values, ref[v].values)


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("name", ["my_notes.nc", "results.zarr"])
def test_a_users_directory_is_never_deleted(small, tmp_path, capsys, name):
    out = tmp_path / name
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["sweep", str(small), "-o", str(out), "--quiet"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert str(out) in line and "not an immunosim result" in line
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "small.toml"])


def test_a_foreign_file_is_refused_even_with_overwrite(small, tmp_path, capsys):
    out = tmp_path / "out.nc"
    out.write_text("not netcdf")
    for extra in ([], ["--overwrite"]):
        assert main(["sweep", str(small), "-o", str(out), "--quiet", *extra]) == 2
        assert "not an immunosim result" in _one_line(capsys.readouterr().err)
        assert out.read_text() == "not netcdf"


@pytest.mark.parametrize("command", ["sweep", "run"])
def test_a_previous_result_is_replaced_only_with_overwrite(small, tmp_path, capsys, reference,
                                                           command):
    """A previous result used to be replaced silently; now exit 2 and one line naming the path
    and --overwrite, before any compute, the result untouched; --overwrite replaces it."""
    zout = tmp_path / "out.zarr"
    quiet = ["--quiet"] if command == "sweep" else []
    assert main([command, str(small), "-o", str(zout), *quiet]) == 0
    capsys.readouterr()
    (zout / "mine").write_text("marks the first result")
    assert main([command, str(small), "-o", str(zout), *quiet]) == 2
    line = _one_line(capsys.readouterr().err)
    assert str(zout) in line and "--overwrite" in line and "exists" in line
    assert (zout / "mine").exists() and not zout.with_name("out.zarr.partial").exists()
    assert main([command, str(small), "-o", str(zout), *quiet, "--overwrite"]) == 0
    assert not (zout / "mine").exists()
    _same(zout, reference)
    assert not zout.with_name("out.zarr.lock").exists()
    with pytest.raises(sw.SweepError, match="exists .*overwrite=True"):
        sw.sweep(load_config(small), zout, progress=False)


def test_a_result_appearing_during_the_sweep_is_kept(small, tmp_path, monkeypatch, reference):
    """Something written at OUT while the sweep ran is not replaced without overwrite; the
    finished work stays for --resume --overwrite."""
    out = tmp_path / "out.zarr"
    other = sw.sweep(load_config(small), tmp_path / "other.zarr", progress=False)
    real = sw.ZarrWriter.finish

    def meanwhile(self):
        import shutil

        shutil.copytree(other, out)  # another result lands at OUT
        (out / "mine").touch()
        return real(self)

    monkeypatch.setattr(sw.ZarrWriter, "finish", meanwhile)
    with pytest.raises(sw.SweepError, match="exists"):
        sw.sweep(load_config(small), tmp_path / "out.zarr", progress=False)
    monkeypatch.setattr(sw.ZarrWriter, "finish", real)
    assert (out / "mine").exists() and out.with_name("out.zarr.partial").exists()
    assert not out.with_name("out.zarr.lock").exists()
    sw.sweep(load_config(small), out, resume=True, overwrite=True, progress=False)
    assert not (out / "mine").exists()
    _same(out, reference)


def test_a_second_writer_is_refused_and_a_stale_lock_taken_over(small, tmp_path, capsys,
                                                                reference):
    out = tmp_path / "out.zarr"
    lock = tmp_path / "out.zarr.lock"
    import socket

    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock.write_text(f"{live.pid} {socket.gethostname()}\n")
        assert main(["sweep", str(small), "-o", str(out), "--quiet"]) == 2
        line = _one_line(capsys.readouterr().err)
        assert f"pid {live.pid}" in line and "being written by another sweep" in line
        assert not out.exists() and lock.exists()
    finally:
        live.kill()
        live.wait()
    # the writer died (SIGKILL leaves its lock): the next sweep takes the lock over
    assert main(["sweep", str(small), "-o", str(out), "--quiet"]) == 0
    _same(out, reference)
    assert not lock.exists()


def test_kill_during_store_creation_is_resumable(small, tmp_path, monkeypatch, reference):
    """A kill while ``OUT.partial`` was being created used to leave a store with the config's
    digest but not all its arrays: ``--resume`` then ended in ``KeyError: 'remission'``."""
    out = tmp_path / "out.zarr"
    real = xr.Dataset.to_zarr

    def killed(self, store, **kw):  # the coordinates are written, not the results: the kill
        real(self, store, **kw)
        raise KeyboardInterrupt

    cfg = load_config(small)
    monkeypatch.setattr(xr.Dataset, "to_zarr", killed)
    with pytest.raises(KeyboardInterrupt):
        sw.sweep(cfg, out, progress=False)
    monkeypatch.setattr(xr.Dataset, "to_zarr", real)
    assert not out.exists()
    with pytest.warns(UserWarning, match="interrupted while being created; starting"):
        sw.sweep(cfg, out, resume=True, progress=False)
    _same(out, reference)
    assert not any(p.name.startswith("out.zarr.") for p in tmp_path.iterdir())


def test_full_disk_is_one_line_and_resumable(small, tmp_path, monkeypatch, capsys, reference):
    out = tmp_path / "out.zarr"
    real = sw.ZarrWriter.write_data
    calls = []

    def full(self, b, data):
        calls.append(b.index)
        if len(calls) == 2:  # the second block finds the disk full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(self, b, data)

    monkeypatch.setattr(sw.ZarrWriter, "write_data", full)
    assert main(["sweep", str(small), "-o", str(out), "--quiet"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert str(out) in line and "No space left on device" in line and "--resume" in line
    assert not out.exists() and out.with_name("out.zarr.partial").exists()
    monkeypatch.setattr(sw.ZarrWriter, "write_data", real)
    assert main(["sweep", str(small), "-o", str(out), "--quiet", "--resume"]) == 0
    _same(out, reference)


def test_read_only_output_is_one_line(small, tmp_path, monkeypatch, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    out = ro / "out.zarr"
    if os.geteuid() == 0:  # root writes anywhere: make the lock meet what a user would
        def refuse(self, out):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(out) + ".lock")

        monkeypatch.setattr(sw.OutputLock, "__init__", refuse)
    ro.chmod(0o555)
    try:
        rc = main(["sweep", str(small), "-o", str(out), "--quiet"])
    finally:
        ro.chmod(0o755)
    assert rc == 1
    line = _one_line(capsys.readouterr().err)
    assert str(out) in line
    assert "Read-only file system" in line or "Permission denied" in line
    assert list(ro.iterdir()) == []


def test_calibrate_os_error_is_one_line(tmp_path, monkeypatch, capsys):
    from immunosim.experiments import calibrate as cal
    from tests.conftest import ROOT

    monkeypatch.setattr(cal, "calibrate", lambda *a, **k: None)
    monkeypatch.setattr(cal, "fit_table", lambda res: "fit")

    def full(res, out, command=""):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(out))

    monkeypatch.setattr(cal, "write_cohort", full)
    out = tmp_path / "cohort.toml"
    assert main(["calibrate", str(ROOT / "configs" / "calibrate.toml"), "-o", str(out),
                 "--quiet"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert str(out) in line and "No space left on device" in line


def _interrupt_after_first_block_data(monkeypatch):
    """Make the sweep raise KeyboardInterrupt right after writing its first block's data (its
    marker not yet written); returns the real ``ZarrWriter.write_data`` to restore."""
    real = sw.ZarrWriter.write_data

    def stop(self, b, data):
        real(self, b, data)
        raise KeyboardInterrupt

    monkeypatch.setattr(sw.ZarrWriter, "write_data", stop)
    return real


def test_resume_refuses_another_package_version(small, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out.zarr"
    real = _interrupt_after_first_block_data(monkeypatch)
    assert main(["sweep", str(small), "-o", str(out), "--quiet"]) == 130
    monkeypatch.setattr(sw.ZarrWriter, "write_data", real)
    monkeypatch.setattr(sw, "__version__", "0.0.0-other")
    capsys.readouterr()
    assert main(["sweep", str(small), "-o", str(out), "--quiet", "--resume"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "immunosim_version" in line and "0.0.0-other" in line


def test_ctrl_c_during_start_up_is_one_line():
    """``import immunosim.cli`` no longer loads Numba, xarray and pydantic (the package's names
    are imported on first use), so a Ctrl-C while they load reaches the CLI's handler: one line,
    exit 130, and no --resume offered when nothing was kept."""
    import signal
    import time

    code = ("import sys, time; sys.argv = ['immunosim', 'validate', 'x.toml']; "
            "import immunosim.cli as c; print('ready', flush=True); "
            "sys.exit(c.main(['info']))")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert p.stdout.readline().strip() == "ready"
    mods = subprocess.run([sys.executable, "-c", "import sys, immunosim.cli; "
                           "print(sorted(m for m in ('numba', 'xarray', 'pydantic') "
                           "if m in sys.modules))"], capture_output=True, text=True)
    assert mods.stdout.strip() == "[]", mods.stdout
    time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    if p.returncode == 0:  # `info` finished before the signal: nothing to check
        pytest.skip("the command ended before the signal")
    assert p.returncode == 130 and _one_line(err) == "immunosim: interrupted"


def test_ctrl_c_that_a_library_turns_into_another_error_is_still_an_interruption(
        monkeypatch, capsys):
    """A Ctrl-C while numpy's C extensions load surfaces as an ImportError with no
    KeyboardInterrupt in its chain (seen in CI); the CLI still reads it as the interruption:
    one line, exit 130. The same error without a Ctrl-C is not hidden."""
    import contextlib
    import signal

    import immunosim.cli as cli

    def swallowed(args):
        with contextlib.suppress(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)  # through the CLI's handler
        raise ImportError('PyCapsule_Import could not import module "datetime"')

    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (a
    try:  # background shell or a test worker may ignore SIGINT; the CLI then leaves it be)
        monkeypatch.setattr(cli, "_main", swallowed)
        assert cli.main(["info"]) == 130
        assert _one_line(capsys.readouterr().err) == "immunosim: interrupted"
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    finally:
        signal.signal(signal.SIGINT, before)

    def broken(args):
        raise ImportError("a broken install")

    monkeypatch.setattr(cli, "_main", broken)
    with pytest.raises(ImportError, match="broken install"):
        cli.main(["info"])


def test_kill_while_finishing_resumes_without_recomputing(small, tmp_path, monkeypatch,
                                                          reference):
    import zarr

    out = tmp_path / "out.zarr"
    real = zarr.consolidate_metadata

    def killed(*a, **k):
        raise KeyboardInterrupt

    cfg = load_config(small)
    monkeypatch.setattr(zarr, "consolidate_metadata", killed)
    with pytest.raises(KeyboardInterrupt):
        sw.sweep(cfg, out, progress=False)
    monkeypatch.setattr(zarr, "consolidate_metadata", real)
    computed = _count_batches(monkeypatch)
    sw.sweep(cfg, out, resume=True, progress=False)
    assert computed == []  # every block was done: only the finishing is repeated
    _same(out, reference)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr", "small.toml"]


def test_an_empty_directory_is_not_refused(small, tmp_path, reference):
    out = tmp_path / "out.zarr"
    out.mkdir()  # made ready by the user: nothing in it to lose
    sw.sweep(load_config(small), out, progress=False)
    _same(out, reference)


# --- the lock is taken before any expensive work ------------------------------------------------


@pytest.fixture
def live_pid():
    """The pid of a process that runs for the whole test (a lock it holds is not stale)."""
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        yield p.pid
    finally:
        p.kill()
        p.wait()


def _hold_lock(out, pid):
    import socket

    lock = out.with_name(out.name + ".lock")
    lock.write_text(f"{pid} {socket.gethostname()}\n")
    return lock


def _no_planning(*a, **k):
    raise AssertionError("the cohort was sampled before the output lock was taken")


def test_a_second_writer_is_refused_before_any_compute(small, tmp_path, capsys, monkeypatch,
                                                       live_pid):
    """Regression: the lock was taken after the cohort was sampled (minutes for a large
    cohort) and the store planned; a second writer is now refused before any of that."""
    out = tmp_path / "out.zarr"
    lock = _hold_lock(out, live_pid)
    monkeypatch.setattr(sw, "plan", _no_planning)
    monkeypatch.setattr(sw, "sample_cohort", _no_planning)
    for extra in ([], ["--resume"]):
        assert main(["sweep", str(small), "-o", str(out), "--quiet", *extra]) == 2
        line = _one_line(capsys.readouterr().err)
        assert f"pid {live_pid}" in line and "being written by another sweep" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr.lock", "small.toml"]
    assert lock.read_text().split()[0] == str(live_pid)  # the other writer's lock is untouched


def test_dask_second_writer_is_refused_before_the_cluster_starts(small, tmp_path, capsys,
                                                                 monkeypatch, live_pid):
    """``--dask-local N`` starts N worker processes: a second writer is refused before that."""
    pytest.importorskip("distributed")
    from immunosim.experiments import distributed as dist

    def no_cluster(**k):
        raise AssertionError("a Dask cluster was started before the output lock was taken")

    monkeypatch.setattr(dist, "connect", no_cluster)
    monkeypatch.setattr(dist, "plan", _no_planning)
    out = tmp_path / "out.zarr"
    _hold_lock(out, live_pid)
    assert main(["sweep", str(small), "-o", str(out), "--quiet", "--dask-local", "1"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"pid {live_pid}" in line and "being written by another sweep" in line
    with pytest.raises(sw.SweepError, match="being written by another sweep"):
        dist.sweep_on_client(load_config(small), out, client=None)  # the API: no planning either


def test_an_interrupted_sweep_releases_its_lock(small, tmp_path, monkeypatch):
    """In a long-lived process (a notebook) an interrupted sweep used to keep ``OUT.lock`` with
    its live pid, so every other process was refused until it exited."""
    out = tmp_path / "out.zarr"
    _interrupt_after_first_block_data(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        sw.sweep(load_config(small), out, progress=False)
    assert not out.with_name("out.zarr.lock").exists()
    assert out.with_name("out.zarr.partial").exists()  # the finished block is kept


# --- --resume refuses whatever would change the result ---------------------------------------

ABM = "[engine]\nkind = \"abm\"\nreplicates = 2\nsystem_size = 1000\n[output]"


@pytest.mark.parametrize("before, after, named", [
    ("[output]", "[solver]\nmethod = \"rodas4\"\n[output]",
     'solver.method: "dopri5" then, "rodas4" now'),
    ("[output]", "[solver]\nrtol = 1e-5\n[output]", "solver.rtol: 1e-06 then, 1e-05 now"),
    ("[output]", ABM, 'engine.kind: "ode" then, "abm" now'),
    (ABM, ABM.replace("1000", "2000"), "engine.system_size: 1000.0 then, 2000.0 now"),
    (ABM, ABM.replace("replicates = 2", "replicates = 3"), "engine.replicates: 2 then, 3 now"),
    ("size = 4", "size = 5", "cohort.size: 4 then, 5 now"),
    ("median = 0.05", "median = 0.06",
     "cohort.parameters.activation_rate.median: 0.05 then, 0.06 now"),
    ("landmarks = [10, 30]", "landmarks = [10, 30]\nremission_threshold = 2",
     "outcomes.remission_threshold: 4.0 then, 2.0 now"),
    ("time = 5", "time = 6", "scenarios.msc.msc.time: 5.0 then, 6.0 now"),
], ids=["solver_method", "solver_rtol", "engine_kind", "abm_system_size", "abm_replicates",
        "cohort_size", "cohort_distribution", "outcome_definition", "scenario"])
def test_resume_names_the_setting_that_changed(small, tmp_path, capsys, before, after, named):
    """A changed setting (engine kind and options, solver, cohort, outcomes, scenarios) is
    refused in one line that names it; the unfinished store is left as it was. Before, the
    line said only "a different config (or is unreadable)"."""
    base = SMALL.replace("[output]", ABM) if before == ABM else SMALL
    small.write_text(base)
    out = tmp_path / "out.zarr"
    w = sw.ZarrWriter(sw.plan(load_config(small)), out, "zarr", resume=False)  # no block yet
    w.lock.release()
    stored = (tmp_path / "out.zarr.partial" / ".zattrs").read_text()
    small.write_text(base.replace(before, after, 1))
    assert main(["sweep", str(small), "-o", str(out), "--quiet", "--resume"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "was started from a different config" in line and named in line, line
    assert (tmp_path / "out.zarr.partial" / ".zattrs").read_text() == stored


def test_resume_refuses_another_model(small, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out.zarr"
    w = sw.ZarrWriter(sw.plan(load_config(small)), out, "zarr", resume=False)
    w.lock.release()
    monkeypatch.setattr(sw, "model_digest", lambda: "0123456789abcdef")
    assert main(["sweep", str(small), "-o", str(out), "--quiet", "--resume"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "model_digest" in line and "'0123456789abcdef'" in line and "--resume" in line


# --- kills while finishing: OUT is the old result, absent or the new one, never half -----------


def _count_batches(monkeypatch) -> list:
    computed = []
    real = sw.compute_batch

    def counted(p, blocks, **k):
        computed.extend(blocks)
        return real(p, blocks, **k)

    monkeypatch.setattr(sw, "compute_batch", counted)
    return computed


@pytest.mark.parametrize("name", ["out.zarr", "out.nc"])
def test_kill_after_the_rename_resumes_by_cleaning_up(small, tmp_path, monkeypatch, reference,
                                                      name):
    """Killed once ``OUT`` is complete but before the clean-up (markers; for NetCDF the Zarr
    store it was converted from). Before, ``--resume`` recomputed every block (Zarr: the store
    was gone, "starting afresh"), or for NetCDF the store was deleted before the rename, so a
    kill there left markers over a half-deleted store."""
    out = tmp_path / name
    real = sw.ZarrWriter._discard

    def killed(self, path):
        if self.out.exists():  # the first removal after OUT appeared
            raise KeyboardInterrupt
        real(self, path)

    cfg = load_config(small)
    monkeypatch.setattr(sw.ZarrWriter, "_discard", killed)
    with pytest.raises(KeyboardInterrupt):
        sw.sweep(cfg, out, progress=False)
    monkeypatch.setattr(sw.ZarrWriter, "_discard", real)
    assert out.exists() and out.with_name(name + ".partial-blocks").exists()
    computed = _count_batches(monkeypatch)
    with pytest.warns(UserWarning, match="is already complete"):
        sw.sweep(cfg, out, resume=True, progress=False)
    assert computed == []
    with xr.open_dataset(out, engine="zarr" if name.endswith("zarr") else None) as ds:
        xr.testing.assert_identical(ds.load(), reference)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name, "small.toml"]


@pytest.mark.parametrize("name", ["out.zarr", "out.nc"])
def test_kill_while_an_old_result_is_deleted(small, tmp_path, monkeypatch, reference, name):
    """A sweep replacing an earlier result is killed half-way through deleting it. Before, the
    old ``OUT`` was deleted in place: half of it stayed, without its attributes, and every
    later sweep refused it as "not an immunosim result". Now it is renamed aside first."""
    import shutil

    out = tmp_path / name
    cfg = load_config(small)
    sw.sweep(cfg, out, progress=False)  # the earlier result
    real = shutil.rmtree

    def half(path, *a, **k):  # deletes some files, in an order where .zattrs goes early
        path = os.fspath(path)
        if os.path.basename(path) in (name, name + ".partial-trash"):  # OUT, or OUT set aside
            for f in sorted(os.listdir(path))[:3]:
                p = os.path.join(path, f)
                real(p) if os.path.isdir(p) else os.unlink(p)
            raise KeyboardInterrupt
        real(path, *a, **k)

    monkeypatch.setattr(shutil, "rmtree", half)
    if name.endswith(".nc"):  # a file is unlinked, not rmtree'd: kill at the unlink instead
        def unlink(p):
            if p.exists():
                raise KeyboardInterrupt

        monkeypatch.setattr(sw, "_remove", unlink)
    with pytest.raises(KeyboardInterrupt):
        sw.sweep(cfg, out, progress=False, overwrite=True)
    monkeypatch.setattr(shutil, "rmtree", real)
    monkeypatch.undo()
    if out.exists():  # the old result or the new one, whole
        with xr.open_dataset(out, engine="zarr" if name.endswith("zarr") else None) as ds:
            xr.testing.assert_identical(ds.load(), reference)
    sw.sweep(cfg, out, resume=True, progress=False)
    with xr.open_dataset(out, engine="zarr" if name.endswith("zarr") else None) as ds:
        xr.testing.assert_identical(ds.load(), reference)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name, "small.toml"]


def test_netcdf_output_resumes_to_the_same_file(small, tmp_path, monkeypatch, reference,
                                                capsys):
    """``-o OUT.nc``: blocks go into the ``OUT.nc.partial`` Zarr store, so an interrupted NetCDF
    sweep resumes like a Zarr one, to the same values."""
    out = tmp_path / "out.nc"
    real = sw.ZarrWriter.write
    calls = []

    def stop(self, b, data):
        real(self, b, data)  # data and marker
        calls.append(b.index)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(sw.ZarrWriter, "write", stop)
    assert main(["sweep", str(small), "-o", str(out), "--quiet"]) == 130
    assert "--resume" in _one_line(capsys.readouterr().err)
    monkeypatch.setattr(sw.ZarrWriter, "write", real)
    computed = _count_batches(monkeypatch)
    assert main(["sweep", str(small), "-o", str(out), "--quiet", "--resume"]) == 0
    assert sorted(b.index for b in computed) == [2, 3]  # only the two blocks not kept
    with xr.open_dataset(out) as ds:
        xr.testing.assert_identical(ds.load(), reference)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nc", "small.toml"]


def test_interrupt_after_the_result_is_written_says_it_is_complete(small, tmp_path,
                                                                   monkeypatch, capsys):
    """Ctrl-C while the summary is printed (the result renamed into place, its store removed)
    used to say "nothing was kept (interrupted before the first block)"."""
    out = tmp_path / "out.zarr"

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(sw, "summary_table", interrupted)
    assert main(["sweep", str(small), "-o", str(out), "--quiet"]) == 130
    line = _one_line(capsys.readouterr().err)
    assert line == f"immunosim: interrupted; the result was complete: {out}"
    assert is_complete(out)


def is_complete(out) -> bool:
    with xr.open_zarr(out) as ds:
        return bool((ds.status >= 0).all())


# --- real processes killed at random instants, then --resume ----------------------------------

#: 2 scenarios x 8 patients in blocks of 1: 16 blocks, each written as it is computed.
KILLED = SMALL.replace("size = 4", "size = 8").replace("chunk_size = 2", "chunk_size = 1")
N_BLOCKS = 16


def _default_sigint() -> None:
    """In the child before exec: SIGINT back to its default disposition. A suite started in
    the background by a non-interactive shell (as CI may start it) ignores SIGINT, children
    inherit that, and Python then installs no KeyboardInterrupt handler: the sweep would never
    see the Ctrl-C this test sends (seen in CI: exit 0)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _sweep_process(cfg, out):
    import immunosim

    src = str(Path(immunosim.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-m", "immunosim", "sweep", str(cfg), "-o", str(out),
                             "--quiet", "--workers", "1"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)


def _state(out) -> dict:
    """What is on disk next to ``out`` (a snapshot at the kill)."""
    markers = out.with_name(out.name + ".partial-blocks")
    try:
        done = len([f for f in os.listdir(markers) if f.endswith(".done")])
    except OSError:
        done = None
    return {"lock": out.with_name(out.name + ".lock").exists(),
            "creating": out.with_name(out.name + ".partial-creating").exists(),
            "partial": out.with_name(out.name + ".partial").exists(),
            "markers": done, "out": out.exists()}


def _wait(proc, predicate, timeout=120.0):
    """Poll every 2 ms until ``predicate()`` or the process ends; True if the predicate held."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.002)
    return False


def _kill_at(phase: str, delay: float, k: int, cfg, out) -> dict:
    """Start a sweep, wait for ``phase`` to begin, sleep ``delay`` s, SIGKILL; the state then."""
    proc = _sweep_process(cfg, out)
    markers = out.with_name(out.name + ".partial-blocks")

    def n_done():
        try:
            return len([f for f in os.listdir(markers) if f.endswith(".done")])
        except OSError:
            return 0

    begins = {"start-up": lambda: True,
              "creation": lambda: out.with_name(out.name + ".partial-creating").exists(),
              "middle": lambda: n_done() >= k,
              "finishing": lambda: n_done() >= N_BLOCKS}[phase]
    _wait(proc, begins)
    time.sleep(delay)
    state = _state(out)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    return {"phase": phase, "delay": round(delay, 4), "k": k, "rc": proc.returncode, **state}


def test_killed_at_random_instants_then_resumed_equals_an_uninterrupted_run(tmp_path, capsys):
    """SIGKILL real ``immunosim sweep`` processes at seeded random instants in each phase:
    start-up, store creation, the middle (after a random number of finished blocks) and
    finishing (every block done: metadata, rename, clean-up). ``--resume`` then gives a result
    identical, value for value and attribute for attribute, to an uninterrupted run, and leaves
    nothing behind. The four processes run side by side (about 15 s in all on 2 cores)."""
    import threading

    cfg = tmp_path / "killed.toml"
    cfg.write_text(KILLED)
    rng = np.random.default_rng(20261203)
    cases = [("start-up", rng.uniform(0.0, 0.5), 0),
             ("creation", rng.uniform(0.0, 0.03), 0),
             ("middle", rng.uniform(0.0, 0.02), int(rng.integers(1, N_BLOCKS - 1))),
             ("finishing", rng.uniform(0.0, 0.02), N_BLOCKS)]  # finishing: ~35 ms
    outs = [tmp_path / f"run{i}" / "out.zarr" for i in range(len(cases))]
    states = [None] * len(cases)

    def one(i):
        outs[i].parent.mkdir()
        states[i] = _kill_at(*cases[i], cfg, outs[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(cases))]
    for th in threads:
        th.start()
    reference = sw.sweep(load_config(cfg), progress=False)  # meanwhile, in this process
    for th in threads:
        th.join(180)
    assert all(s is not None for s in states), states
    for s in states:
        assert s["rc"] in (-signal.SIGKILL, 0), s  # 0: it ended before the kill landed
    # the kills landed in different phases: before any block, part-way, with every block done
    assert not states[0]["partial"] and not states[0]["out"], states[0]
    assert states[2]["partial"] and 0 < states[2]["markers"] < N_BLOCKS, states[2]
    assert states[3]["markers"] == N_BLOCKS or states[3]["out"], states[3]
    for out, s in zip(outs, states):
        assert main(["sweep", str(cfg), "-o", str(out), "--quiet", "--resume"]) == 0, s
        with xr.open_zarr(out) as ds:
            xr.testing.assert_identical(ds.load(), reference)
        assert sorted(p.name for p in out.parent.iterdir()) == ["out.zarr"], s
    capsys.readouterr()


@pytest.mark.parametrize("sig, rc", [(signal.SIGTERM, 143), (signal.SIGINT, 130)],
                         ids=["SIGTERM", "SIGINT"])
def test_sigterm_and_sigint_end_in_one_line_naming_resume(tmp_path, sig, rc):
    """A signal after some blocks are kept: exit 143 (SIGTERM) or 130 (SIGINT), one line on
    stderr naming ``--resume``; the lock is gone and the resumed result is the full one."""
    cfg = tmp_path / "killed.toml"
    # 80 blocks: after the first 2, enough are left that a test process starved of CPU for a
    # while (xdist workers and the sweep share 2 cores) still signals a running sweep.
    cfg.write_text(KILLED.replace("size = 8", "size = 40"))
    out = tmp_path / "out.zarr"
    proc = _sweep_process(cfg, out)
    markers = out.with_name(out.name + ".partial-blocks")
    assert _wait(proc, lambda: markers.exists() and len(os.listdir(markers)) >= 2), \
        proc.communicate()[1]
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == rc, err
    line = _one_line(err)
    assert line.startswith("immunosim: terminated (SIGTERM)" if sig == signal.SIGTERM
                           else "immunosim: interrupted"), line
    assert f"`immunosim sweep {cfg} -o {out} --resume`" in line, line
    assert not out.with_name("out.zarr.lock").exists()
    assert main(["sweep", str(cfg), "-o", str(out), "--quiet", "--resume"]) == 0
    with xr.open_zarr(out) as ds:
        full = sw.sweep(load_config(cfg), progress=False)
        xr.testing.assert_identical(ds.load(), full)


def test_a_complete_result_does_not_drop_another_configs_unfinished_store(small, tmp_path,
                                                                          reference):
    """``OUT`` complete for this config, ``OUT.partial`` started from another one: ``--resume``
    refuses (naming the change) and keeps that store, rather than "cleaning it up"."""
    out = tmp_path / "out.zarr"
    cfg = load_config(small)
    sw.sweep(cfg, out, progress=False)
    other = small.with_name("other.toml")
    other.write_text(SMALL.replace("time = 5", "time = 6"))
    w = sw.ZarrWriter(sw.plan(load_config(other)), out, "zarr", resume=False)
    w.lock.release()
    with pytest.raises(sw.SweepError, match=r"scenarios\.msc\.msc\.time: 6\.0 then, 5\.0 now"):
        sw.sweep(cfg, out, resume=True, progress=False)
    assert out.with_name("out.zarr.partial").exists()
    with xr.open_zarr(out) as ds:
        xr.testing.assert_identical(ds.load(), reference)
