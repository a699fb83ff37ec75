"""Sweeps on a real Dask ``LocalCluster`` (worker processes, loopback): the local engine's values
whatever the workers, block and task sizes; a killed worker or a stopped client changes nothing."""

import os
import threading
import time

import pytest
import xarray as xr

pytest.importorskip("distributed")

import dask  # noqa: E402
from distributed import Client  # noqa: E402

from immunosim.experiments import distributed as dist  # noqa: E402
from immunosim.experiments.config import load_config  # noqa: E402
from immunosim.experiments.sweep import sweep  # noqa: E402
from tests.conftest import SMALL_CONFIG  # noqa: E402

#: 2 scenarios x 4 points x 6 patients, weekly assessments.
CONFIG = SMALL_CONFIG.replace("[outcomes]", "[outcomes]\nassessment_every = 7")
#: The same with 12 patients in blocks of 3: 20 blocks (4 points x 4 of the MSC arm, 4 of the
#: untreated arm, which uses no axis and is computed once), long enough to interrupt.
LONGER = CONFIG.replace("size = 6", "size = 12").replace("chunk_size = 5", "chunk_size = 3")


@pytest.fixture(scope="module")
def cluster():
    with dask.config.set({"distributed.scheduler.allowed-failures": dist.ALLOWED_FAILURES}), \
            dist.local_cluster(2) as c:
        yield c


@pytest.fixture(scope="module")
def client(cluster):
    with Client(cluster) as c:
        yield c


def load(tmp_path, text, name="c.toml"):
    p = tmp_path / name
    p.write_text(text)
    return load_config(p)


def open_result(path):
    with (xr.open_zarr(path) if path.suffix == ".zarr" else xr.open_dataset(path)) as ds:
        return ds.load()


def n_done(markers):
    return len(list(markers.glob("*.done"))) if markers.exists() else 0


def wait_for(predicate, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def in_thread(fn):
    """Run ``fn`` in a thread; returns (thread, dict with 'value' or 'error')."""
    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - reported by the test
            box["error"] = e

    th = threading.Thread(target=target, daemon=True)
    th.start()
    return th, box


def test_same_values_as_the_local_engine_on_two_workers(client, tmp_path):
    """Blocks of 2 patients, 2 blocks per task (the CLI test below: 1 worker, blocks of 5)."""
    cfg = load(tmp_path, CONFIG)
    ref = sweep(cfg, progress=False)
    r = dist.sweep_on_client(cfg, tmp_path / "b.zarr", client, chunk_size=2, task_size=4,
                             progress=False)
    xr.testing.assert_identical(open_result(r.path), ref)
    assert r.rewritten == [] and sorted(r.written) == list(range(r.n_blocks)) and r.n_tasks == 8
    assert r.runs == (4 + 1) * 6 < ref.status.size and r.plan_shipped  # untreated: once
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.zarr", "c.toml"]


def test_a_second_writer_is_refused_before_planning(client, tmp_path, monkeypatch):
    """``OUT.lock`` held by another live process: refused in one line before the plan (cohort
    sampling) and before anything reaches the cluster; the other writer's lock is kept."""
    import socket
    import subprocess
    import sys

    from immunosim.experiments.sweep import SweepError

    def no_planning(*a, **k):
        raise AssertionError("planned before the output lock was taken")

    monkeypatch.setattr(dist, "plan", no_planning)
    cfg = load(tmp_path, CONFIG)
    out = tmp_path / "l.zarr"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        lock = tmp_path / "l.zarr.lock"
        lock.write_text(f"{other.pid} {socket.gethostname()}\n")
        with pytest.raises(SweepError, match=f"being written by another sweep \\(pid "
                           f"{other.pid}") as e:
            sweep(cfg, out, client=client, progress=False)
        assert "\n" not in str(e.value)
        assert lock.read_text().split()[0] == str(other.pid)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml", "l.zarr.lock"]
        assert not any(client.processing().values())
    finally:
        other.kill()
        other.wait()


def test_failing_trajectories_are_status_codes_not_failed_tasks(client, tmp_path, monkeypatch):
    """Also: workers that rebuild the plan from the config (a plan too large to send)."""
    monkeypatch.setattr(dist, "SHIP_PLAN_BYTES", 0)
    cfg = load(tmp_path, CONFIG.replace("[outcomes]", "[solver]\nmax_steps = 20\n[outcomes]")
               .replace("size = 6", "size = 2"))
    ref = sweep(cfg, progress=False)
    assert (ref.status != 0).all()
    r = dist.sweep_on_client(cfg, tmp_path / "f.zarr", client, progress=False)
    assert not r.plan_shipped
    xr.testing.assert_identical(open_result(r.path), ref)


def test_a_worker_killed_mid_sweep_changes_nothing(client, tmp_path):
    """Kill a worker process that is computing; its task is recomputed elsewhere (the nanny
    restarts the worker), the result is unchanged and no block is written twice."""
    cfg = load(tmp_path, LONGER)
    ref = sweep(cfg, progress=False)
    out, markers = tmp_path / "k.zarr", tmp_path / "k.zarr.partial-blocks"
    th, box = in_thread(lambda: dist.sweep_on_client(cfg, out, client, task_size=6,
                                                     progress=False))  # 2 blocks per task
    busy = []

    def some_done_and_a_worker_busy():
        busy[:] = [w for w, keys in client.processing().items() if keys]
        return n_done(markers) >= 4 and busy

    wait_for(some_done_and_a_worker_busy, "4 finished blocks")
    before = n_done(markers)

    async def die():  # a coroutine: client.run sends it without waiting for a reply
        os._exit(1)

    client.run(die, workers=busy[:1], wait=False)
    th.join(120)
    assert "error" not in box, box.get("error")
    r = box["value"]
    assert before < r.n_blocks == 20, "the worker was killed part-way"
    xr.testing.assert_identical(open_result(out), ref)
    # No block written twice: no marker created twice, no block reported by two tasks. The
    # killed worker's last blocks may be marked but unreported (a re-run skips marked blocks).
    assert r.rewritten == [], "a block was written again after its marker"
    assert len(set(r.written)) == len(r.written) >= r.n_blocks - 4


def test_resume_after_the_client_is_stopped(cluster, client, tmp_path):
    cfg = load(tmp_path, LONGER)
    ref = sweep(cfg, progress=False)
    out, markers = tmp_path / "r.zarr", tmp_path / "r.zarr.partial-blocks"
    first = Client(cluster)
    th, box = in_thread(lambda: dist.sweep_on_client(cfg, out, first, task_size=3,
                                                     progress=False))
    wait_for(lambda: n_done(markers) >= 4, "4 finished blocks")
    first.close()
    th.join(60)
    assert not th.is_alive() and "error" in box, "a stopped client ends its sweep"
    assert not out.exists()
    # tasks already running when the client stopped finish on their own: wait for them
    wait_for(lambda: not any(client.run(lambda: dist._COMPUTE.locked()).values()),
             "idle workers")
    done = n_done(markers)
    r = dist.sweep_on_client(cfg, out, client, resume=True, progress=False)
    assert 4 <= r.resumed_blocks == done < r.n_blocks
    assert r.rewritten == [] and len(r.written) == r.n_blocks - done
    xr.testing.assert_identical(open_result(out), ref)


def test_cli_on_a_local_cluster_of_one_worker(tmp_path, capsys):
    """``immunosim sweep --dask-local 1``: the local engine's result from one worker, blocks
    of 5 patients, a NetCDF file."""
    from immunosim.cli import main

    cfg = load(tmp_path, CONFIG)
    ref = sweep(cfg, progress=False)
    out = tmp_path / "cli.nc"  # written as Zarr, converted at the end by the client
    assert main(["sweep", str(tmp_path / "c.toml"), "-o", str(out), "--dask-local", "1",
                 "--quiet", "--chunk-size", "5"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    xr.testing.assert_identical(open_result(out), ref)


def test_task_sizes():
    assert dist.task_size_for(100_000, 256, 2) == 6250  # 8 tasks per worker
    assert dist.task_size_for(10**8, 256, 2) == dist.MAX_TASK_RUNS
    assert dist.task_size_for(10**10, 256, 2) == 10**6  # at most MAX_TASKS tasks
    assert dist.task_size_for(100, 256, 4) == 256  # at least one engine batch
    assert dist.task_size_for(10**10, 256, 2, task_size=10) == 10**6


def test_import_immunosim_does_not_import_distributed():
    import subprocess
    import sys

    code = "import sys, immunosim; assert 'distributed' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_simulate_patients_on_a_client_equals_local(client, tmp_path):
    """Chunks mapped over the cluster, gathered in order; features (a closure) travel along."""
    import numpy as np

    from immunosim.experiments.patients import simulate_patients
    from immunosim.experiments.sweep import plan

    cfg = load(tmp_path, CONFIG.replace("size = 6", "size = 11"))
    params, u = plan(cfg).cohort.params, np.linspace(0.01, 0.99, 11)
    scale = 2.0

    def features(t, y, p, ok, o):
        return {"peak": scale * y[:, :, 0].max(axis=1)}

    a = simulate_patients(cfg, "msc", params, death_u=u, chunk=4, features=features)
    b = simulate_patients(cfg, "msc", params, death_u=u, chunk=3, features=features,
                          client=client)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_progress_is_log_lines_off_a_terminal(capsys, monkeypatch):
    monkeypatch.setattr(dist, "LOG_EVERY", 0.0)
    bar = dist._Progress(total=10, initial=4, progress=None, desc="s")
    bar.update(6)
    bar.close()
    assert capsys.readouterr().err.startswith("immunosim: s: 10/10 runs (100%), ")
    quiet = dist._Progress(total=10, initial=0, progress=False, desc="s")
    quiet.update(10)
    quiet.close()
    assert capsys.readouterr().err == ""
