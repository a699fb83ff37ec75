"""The sweep's Zarr store: whole-chunk writes and creation give the files zarr and xarray give."""

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
from numcodecs import Delta

from immunosim.experiments.zarrstore import ChunkWriter, create_store

#: (dtype, fill value) of the result variables: float outcomes, event flags, status.
KINDS = [(np.float64, np.nan), (np.bool_, None), (np.int64, -1)]


def files(root: Path) -> dict[str, bytes]:
    return {str(f.relative_to(root)): f.read_bytes() for f in sorted(root.rglob("*"))
            if f.is_file()}


def pair(tmp_path, dtype, fill, shape, chunks, **kw):
    """The same empty array in two stores."""
    out = []
    for name in ("zarr", "fast"):
        g = zarr.open_group(str(tmp_path / f"{name}.zarr"), mode="w", zarr_format=2)
        out.append(g.create_array("v", shape=shape, chunks=chunks, dtype=dtype,
                                  fill_value=fill, **kw))
    return out


@pytest.mark.parametrize("dtype, fill", KINDS)
def test_whole_chunks_are_the_files_zarr_writes(tmp_path, dtype, fill):
    """Every chunk of a (point, patient, landmark) array, the last patient chunk at the edge
    (padded with the fill value), and chunks all of fill value (no file, as zarr: one written
    first, then emptied)."""
    rng = np.random.default_rng(1)
    slow, fast = pair(tmp_path, dtype, fill, (3, 10, 2), (1, 4, 2))
    w = ChunkWriter(fast)
    assert w.fast
    regions = [(slice(i, i + 1), slice(a, min(a + 4, 10))) for i in range(3) for a in (0, 4, 8)]
    for k, region in enumerate(regions):
        shape = (1, region[1].stop - region[1].start, 2)
        values = rng.random(shape) * 100 if dtype is np.float64 else rng.random(shape) < 0.5
        values = np.asarray(values).astype(dtype)
        if k == 4:  # all fill value: written over, then the file goes
            slow[region] = values
            w.write(region, values)
            values = np.full(shape, 0 if fill is None else fill, dtype=dtype)
        slow[region] = values
        w.write(region, values.ravel())  # any shape with the region's size
    assert files(tmp_path / "fast.zarr") == files(tmp_path / "zarr.zarr")
    assert "v/1.1.0" not in files(tmp_path / "fast.zarr")  # regions[4]: all fill value
    np.testing.assert_array_equal(fast[:], slow[:])


def test_part_of_a_chunk_goes_through_zarr(tmp_path):
    """A region that is not whole chunks is merged with what the chunk holds, by zarr."""
    slow, fast = pair(tmp_path, np.float64, np.nan, (2, 10), (1, 4))
    w = ChunkWriter(fast)
    for write in (slow.__setitem__, w.write):
        write((slice(0, 1), slice(0, 4)), np.arange(4.0).reshape(1, 4))
        write((slice(0, 1), slice(1, 3)), np.array([[10.0, 20.0]]))
    np.testing.assert_array_equal(fast[0, :4], [0.0, 10.0, 20.0, 3.0])
    assert files(tmp_path / "fast.zarr") == files(tmp_path / "zarr.zarr")


@pytest.mark.parametrize("kw", [{"chunk_key_encoding": {"name": "v2", "separator": "/"}},
                                {"filters": [Delta(dtype="<f8")]}])
def test_other_layouts_go_through_zarr(tmp_path, kw):
    slow, fast = pair(tmp_path, np.float64, np.nan, (2, 8), (1, 4), **kw)
    w = ChunkWriter(fast)
    assert not w.fast
    values = np.arange(4.0).reshape(1, 4)
    w.write((slice(1, 2), slice(4, 8)), values)
    slow[1:2, 4:8] = values
    assert files(tmp_path / "fast.zarr") == files(tmp_path / "zarr.zarr")


def dataset(patients=7, landmarks=2):
    """A result-like Dataset: an index on every dim, non-dimension coordinates (written as a
    ``coordinates`` attribute of the variables that have their dims; ``visit`` only the result
    variables have), a small static variable and the result variables, one of each kind."""
    dims = ("scenario", "amount", "patient")
    shape = (2, 3, patients)
    data = {name: (dims + extra, np.broadcast_to(np.array(fill, dtype=dtype),
                                                 shape + len(extra) * (landmarks,)),
                   {"long_name": name, "units": "1"})
            for name, dtype, fill, extra in (
                ("time_to_remission", np.float64, np.nan, ()),
                ("remission", np.bool_, False, ()),
                ("status", np.int64, -1, ()),
                ("activity_at", np.float64, np.nan, ("landmark",)))}
    data["status"][2]["flag_values"] = [0, 1, -1]
    ds = xr.Dataset(data, coords={
        "scenario": ("scenario", ["untreated", "msc"]),
        "amount": ("amount", [1e5, 1e6, 1e7], {"units": "cells/kg"}),
        "patient": ("patient", np.arange(patients)),
        "draw": ("patient", np.arange(patients) // 3, {"long_name": "Posterior draw"}),
        "landmark": ("landmark", [91.0, 183.0][:landmarks]),
        "visit": ("landmark", ["3 months", "6 months"][:landmarks])},
        attrs={"title": "test", "seed": 1, "rtol": 1e-6})
    ds["cohort_redraws"] = ("patient", np.arange(patients), {"units": "1"})
    return ds


def test_store_is_the_one_xarray_writes_with_dask(tmp_path):
    """Same files, byte for byte, as ``to_zarr(compute=False)`` with Dask arrays (what the
    sweep did): attributes, ``_ARRAY_DIMENSIONS``, fill values (status: -1), compressor,
    ``coordinates``; readers see the same Dataset."""
    import dask.array as da

    ds = dataset()
    empty = ["time_to_remission", "remission", "status", "activity_at"]
    encoding = {n: {"chunks": (1, 1, 4) + ds[n].shape[3:]} for n in empty}
    encoding["status"]["_FillValue"] = -1
    lazy = ds.copy()
    for n in empty:
        lazy[n] = lazy[n].copy(data=da.full(ds[n].shape, ds[n].values.flat[0],
                                            dtype=ds[n].dtype, chunks=encoding[n]["chunks"]))
    lazy.to_zarr(tmp_path / "dask.zarr", mode="w", compute=False, consolidated=False,
                 zarr_format=2, encoding={n: dict(e) for n, e in encoding.items()})
    create_store(ds, tmp_path / "new.zarr", empty, encoding)
    assert files(tmp_path / "new.zarr") == files(tmp_path / "dask.zarr")
    assert "draw" in (tmp_path / "new.zarr" / "remission" / ".zattrs").read_text()
    with xr.open_zarr(tmp_path / "new.zarr", consolidated=False) as got:
        xr.testing.assert_identical(got.drop_vars("status").load(),
                                    ds.drop_vars("status").load())
        assert got.status.isnull().all()  # -1 is the fill value: not computed yet
