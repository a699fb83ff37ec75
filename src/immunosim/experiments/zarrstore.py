"""A sweep's Zarr store on local disk: created without Dask, written in whole chunks.

A sweep writes every block as whole chunks: one chunk of every result variable at each design
point the block fills (see :mod:`.sweep`). Through zarr, ``array[region] = values`` costs about
1.5 ms a call, mostly hand-offs between zarr's event loop and its thread pool (one to compress,
one to write), which is more than the engine spends on a 256-patient block of a dozen variables.
:class:`ChunkWriter` writes what zarr would write: the same bytes under the same key, with
the array's own compressor, through a temporary file renamed over the chunk's, as zarr's
``LocalStore`` does. Arrays it cannot write byte for byte as zarr does (another Zarr format,
filters, Fortran order, nested chunk keys, a store not on local disk) go through zarr.

:func:`create_store` creates the store as ``Dataset.to_zarr(compute=False)`` does with Dask
arrays (the same files, byte for byte), without Dask: building and tokenizing a Dask graph of
every chunk of every variable cost about as much as integrating a few thousand runs.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import xarray as xr


def create_store(ds: xr.Dataset, path: Path, empty: Sequence[str],
                 encoding: Mapping[str, dict], zarr_format: int = 2) -> None:
    """Write ``ds`` to a new Zarr format 2 store at ``path``, its variables ``empty`` without
    their values.

    The store is what ``ds.to_zarr(path, encoding=encoding, compute=False, consolidated=False,
    zarr_format=2)`` writes when the ``empty`` variables are Dask arrays: every other variable
    and coordinate with its values, and the ``empty`` variables' metadata only (their chunks read
    as the fill value until written). xarray writes everything but the empty variables' two
    metadata files, which take the shape of ``ds`` and their chunks from ``encoding``, and the
    rest of their metadata (attributes, ``_ARRAY_DIMENSIONS``, fill value, compressor, and the
    CF ``coordinates`` attributes) from xarray's own encoding of a one-element slice of ``ds``.

    Parameters
    ----------
    ds : Dataset
        The ``empty`` variables' values are never read (e.g. ``np.broadcast_to`` of a scalar).
    path : Path
        A new store (anything there is replaced).
    empty : sequence of str
        Variables written as metadata only.
    encoding : mapping
        xarray's ``to_zarr`` encoding of the ``empty`` variables; each gives ``chunks``.
    zarr_format : int
        2 (the only format whose metadata this writes).
    """
    import zarr
    from zarr.core.buffer import default_buffer_prototype

    if zarr_format != 2:
        raise ValueError(f"zarr_format: {zarr_format!r}; create_store writes Zarr format 2 "
                         "stores only")
    path = Path(path)
    ds.drop_vars(empty).to_zarr(path, mode="w", consolidated=False, zarr_format=2)
    mini = ds.isel({d: slice(0, 1) for d in ds.dims})
    memory = zarr.storage.MemoryStore()
    mini.to_zarr(memory, mode="w", consolidated=False, zarr_format=2,
                 encoding={n: {k: v for k, v in encoding[n].items() if k != "chunks"}
                           for n in empty})
    written = zarr.open_group(memory, mode="r", zarr_format=2)
    proto = default_buffer_prototype()
    for name in empty:
        md = replace(written[name].metadata, shape=ds[name].shape,
                     chunks=tuple(encoding[name]["chunks"]))
        (path / name).mkdir()
        for key, doc in md.to_buffer_dict(proto).items():
            (path / name / key).write_bytes(doc.to_bytes())
    # The group's attributes as written with every variable (without the empty ones, a
    # coordinate only they carry would be listed in a global ``coordinates`` attribute).
    for key, doc in written.metadata.to_buffer_dict(proto).items():
        (path / key).write_bytes(doc.to_bytes())


class ChunkWriter:
    """Writes whole chunks of one Zarr array as zarr would write them (see the module
    docstring); anything else (part of a chunk, an array it cannot write as zarr does) through
    ``array[region] = values``.

    Parameters
    ----------
    array : zarr.Array
        Opened for writing.
    """

    def __init__(self, array):
        from zarr.core.metadata.v2 import ArrayV2Metadata
        from zarr.storage import LocalStore

        md = array.metadata
        self.array = array
        self.shape = tuple(array.shape)
        self.chunks = tuple(array.chunks)
        self.fast = (isinstance(md, ArrayV2Metadata) and not md.filters and md.order == "C"
                     and md.dimension_separator == "." and isinstance(array.store, LocalStore))
        if self.fast:
            self.dtype = np.dtype(md.dtype.to_native_dtype())  # with the stored byte order
            self.compressor = md.compressor
            self.fill = md.fill_value if md.fill_value is not None else 0
            self.key = md.encode_chunk_key
            self.dir = Path(array.store.root) / array.path

    def write(self, region: tuple[slice, ...], values: np.ndarray) -> None:
        """Write ``values`` at ``region``: slices with a step of 1 over the leading dimensions
        (the others whole), covering whole chunks (at the array's edge, up to its end);
        ``values`` has the region's size."""
        if not self.fast:
            self.array[region] = np.reshape(values, region_shape(region, self.shape))
            return
        bounds = [s.indices(n)[:2] for s, n in zip(region, self.shape)]
        bounds += [(0, n) for n in self.shape[len(bounds):]]
        starts, stops = zip(*bounds)
        if not all(a % c == 0 and (b - a == c or b == n) for a, b, c, n
                   in zip(starts, stops, self.chunks, self.shape)):
            # part of a chunk: zarr merges it with the rest
            self.array[region] = np.reshape(values, region_shape(region, self.shape))
            return
        index = tuple(a // c for a, c in zip(starts, self.chunks))
        self._put(index, self._chunk(values, tuple(b - a for a, b in zip(starts, stops))))

    def _chunk(self, values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """The chunk's array: ``values`` in the stored dtype, padded with the fill value to the
        chunk shape at the array's edge (zarr stores edge chunks whole)."""
        values = np.asarray(values).reshape(shape)
        if shape == self.chunks:
            return np.ascontiguousarray(values, dtype=self.dtype)
        chunk = np.full(self.chunks, self.fill, dtype=self.dtype)
        chunk[tuple(slice(0, n) for n in shape)] = values
        return chunk

    def _is_fill(self, chunk: np.ndarray) -> bool:
        if self.dtype.kind in "fc" and np.isnan(self.fill):
            return bool(np.isnan(chunk).all())
        return bool((chunk == self.fill).all())

    def _put(self, index: tuple[int, ...], chunk: np.ndarray) -> None:
        path = self.dir / self.key(index)
        if self._is_fill(chunk):  # as zarr does (``write_empty_chunks`` off): no file, which
            path.unlink(missing_ok=True)  # reads as the fill value
            return
        data = chunk if self.compressor is None else self.compressor.encode(chunk)
        tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.partial")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)  # a reader sees the old chunk or the new one, never half
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def region_shape(region: tuple[slice, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shape of ``array[region]`` for slices ``region`` over the leading axes of ``shape``."""
    lead = tuple(len(range(*s.indices(n))) for s, n in zip(region, shape))
    return lead + tuple(shape[len(region):])
