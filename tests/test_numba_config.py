"""The stale-cache guard: editing a kernel source removes the package's Numba cache files."""

import shutil

from immunosim import _numba_config as nc


def test_stale_caches_are_removed_when_a_kernel_source_changes(tmp_path):
    root = tmp_path / "pkg"
    for rel in nc.KERNEL_SOURCES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"# {rel}\\n")
    cache = root / "engines" / "ode" / "__pycache__"
    cache.mkdir(parents=True)
    (cache / "_kernels.solve_batch-1.py311.nbi").write_text("index")
    (cache / "_kernels.solve_batch-1.py311.1.nbc").write_text("code")
    (cache / "keep.pyc").write_text("bytecode")
    assert nc.invalidate_stale_caches(root)  # no stamp yet: first run clears
    assert not list(cache.glob("*.nb*")) and (cache / "keep.pyc").exists()
    (cache / "x.nbi").write_text("index")
    assert not nc.invalidate_stale_caches(root)  # unchanged sources: cache kept
    assert (cache / "x.nbi").exists()
    (root / "model" / "sle_msc.py").write_text("# edited model\\n")  # a dependency changes
    assert nc.invalidate_stale_caches(root)
    assert not (cache / "x.nbi").exists()
    shutil.rmtree(root)


def test_digest_covers_the_model():
    assert "model/sle_msc.py" in nc.KERNEL_SOURCES
    assert (nc._PACKAGE / "model" / "sle_msc.py").exists()
    assert all((nc._PACKAGE / rel).exists() for rel in nc.KERNEL_SOURCES)
