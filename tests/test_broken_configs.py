"""Every file in tests/broken_configs/ is refused with one line naming the key, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from immunosim.cli import main

HERE = Path(__file__).parent / "broken_configs"
FILES = sorted(HERE.glob("*.toml"))


def _expect(path: Path) -> str:
    first = path.read_bytes().split(b"\n", 1)[0].decode("latin-1")
    if first.startswith("# expect: "):
        return first.removeprefix("# expect: ").strip()
    return path.name  # files whose bytes cannot carry a comment (empty, UTF-16)


def test_enough_files():
    assert len(FILES) >= 50


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_validate_refuses(path, capsys):
    rc = main(["validate", str(path)])
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert _expect(path) in err, err


def test_subprocess():
    path = HERE / "latin1_comment.toml"
    r = subprocess.run([sys.executable, "-m", "immunosim.cli", "validate", str(path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr and "latin1_comment.toml" in r.stderr


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_sweep_refuses_and_writes_nothing(path, tmp_path, capsys):
    out = tmp_path / "out.zarr"
    assert main(["sweep", str(path), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and _expect(path) in err, err
    assert list(tmp_path.iterdir()) == []
