"""Output safety (issue 17): a user's data at the output path is never deleted, one writer per
output, store creation interruptible, OS errors in one line (exit 1) with the work kept."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

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

    def killed(self, store, **kw):  # the first arrays are written, then the kill
        enc = {"status": kw.pop("encoding")["status"]}
        real(self[["status"]], store, encoding=enc, **kw)
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


def test_resume_refuses_another_package_version(small, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out.zarr"
    real = sw.ZarrWriter.write_data

    def stop(self, b, data):
        real(self, b, data)
        raise KeyboardInterrupt

    monkeypatch.setattr(sw.ZarrWriter, "write_data", stop)
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
    computed = []
    real_batch = sw.compute_batch

    def counted(p, blocks, **k):
        computed.extend(blocks)
        return real_batch(p, blocks, **k)

    monkeypatch.setattr(sw, "compute_batch", counted)
    sw.sweep(cfg, out, resume=True, progress=False)
    assert computed == []  # every block was done: only the finishing is repeated
    _same(out, reference)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr", "small.toml"]


def test_an_empty_directory_is_not_refused(small, tmp_path, reference):
    out = tmp_path / "out.zarr"
    out.mkdir()  # made ready by the user: nothing in it to lose
    sw.sweep(load_config(small), out, progress=False)
    _same(out, reference)
