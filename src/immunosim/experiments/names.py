"""Names a sweep axis cannot or should not take, checked when a config is read.

An axis becomes a dimension of the result, so it cannot take the name of another dimension,
coordinate or variable of the result (:data:`RESERVED_NAMES`), and it should not take the name of
an attribute of ``xarray.Dataset`` or ``xarray.DataArray`` (:data:`XARRAY_ATTRIBUTES`): ``ds.count``
is the method, not the axis. The second list is written out so that reading a config does not
import xarray (``immunosim validate`` starts fast); ``tests/test_config.py`` checks that it holds
every public attribute of the installed xarray. Regenerate it with::

    python -c "import xarray as xr; print(sorted({n for c in (xr.Dataset, xr.DataArray)
               for n in dir(c) if not n.startswith('_')}))"
"""

from __future__ import annotations

from .clinical import OUTCOMES

#: Dimensions and coordinates of a result other than the axes.
RESULT_COORDS = ("scenario", "patient", "patient_id", "replicate", "point", "landmark", "time",
                 "dose", "parameter", "parameter_units", "draw", "subject", "quantile")
#: Variables of a result besides the outcomes (``traj_*`` are reserved too).
RESULT_VARIABLES = ("status", "nfev", "nsteps", "origin", "dose_time", "parameters",
                    "patient_parameters", "cohort_redraws", "clones", "reseeding_clones",
                    "surviving_clones", "extinction_time")
#: Names no axis may take.
RESERVED_NAMES = frozenset(RESULT_COORDS) | frozenset(RESULT_VARIABLES) | frozenset(OUTCOMES)

#: Public attributes of ``xarray.Dataset`` and ``xarray.DataArray`` (xarray 2026.9.0).
XARRAY_ATTRIBUTES = frozenset({
    'T', 'all', 'any', 'apply', 'argmax', 'argmin', 'argsort', 'as_numpy', 'assign',
    'assign_attrs', 'assign_coords', 'astype', 'attrs', 'bfill', 'broadcast_equals',
    'broadcast_like', 'chunk', 'chunks', 'chunksizes', 'clip', 'close', 'coarsen',
    'combine_first', 'compute', 'conj', 'conjugate', 'convert_calendar', 'coords', 'copy',
    'count', 'cumprod', 'cumsum', 'cumulative', 'cumulative_integrate', 'curvefit', 'data',
    'data_vars', 'diff', 'differentiate', 'dims', 'dot', 'drop', 'drop_attrs', 'drop_dims',
    'drop_duplicates', 'drop_encoding', 'drop_indexes', 'drop_isel', 'drop_sel', 'drop_vars',
    'dropna', 'dt', 'dtype', 'dtypes', 'dump_to_store', 'encoding', 'equals', 'eval',
    'expand_dims', 'ffill', 'fillna', 'filter_by_attrs', 'from_dataframe', 'from_dict',
    'from_iris', 'from_series', 'get', 'get_axis_num', 'get_index', 'groupby', 'groupby_bins',
    'head', 'identical', 'idxmax', 'idxmin', 'imag', 'indexes', 'info', 'integrate', 'interp',
    'interp_calendar', 'interp_like', 'interpolate_na', 'isel', 'isin', 'isnull', 'item',
    'items', 'keys', 'load', 'load_async', 'load_store', 'loc', 'map', 'map_blocks', 'max',
    'mean', 'median', 'merge', 'min', 'name', 'nbytes', 'ndim', 'notnull', 'pad', 'persist',
    'pipe', 'plot', 'polyfit', 'prod', 'quantile', 'query', 'rank', 'real', 'reduce',
    'reindex', 'reindex_like', 'rename', 'rename_dims', 'rename_vars', 'reorder_levels',
    'resample', 'reset_coords', 'reset_encoding', 'reset_index', 'roll', 'rolling',
    'rolling_exp', 'round', 'searchsorted', 'sel', 'set_close', 'set_coords', 'set_index',
    'set_xindex', 'shape', 'shift', 'size', 'sizes', 'sortby', 'squeeze', 'stack', 'std',
    'str', 'sum', 'swap_dims', 'tail', 'thin', 'to_array', 'to_dask_dataframe', 'to_dataarray',
    'to_dataframe', 'to_dataset', 'to_dict', 'to_index', 'to_iris', 'to_masked_array',
    'to_netcdf', 'to_numpy', 'to_pandas', 'to_series', 'to_stacked_array',
    'to_unstacked_dataset', 'to_zarr', 'transpose', 'unify_chunks', 'unstack', 'update',
    'values', 'var', 'variable', 'variables', 'weighted', 'where', 'xindexes'})


def is_reserved(name: str) -> bool:
    """Whether ``name`` is a dimension, coordinate or variable name of every result."""
    return name in RESERVED_NAMES or name.startswith("traj_")
