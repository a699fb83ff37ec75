"""``immunosim._simd.transpose8``: an 8 x 8 block transpose by vector shuffles, against numpy."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from immunosim._simd import transpose8


@numba.njit(cache=False)
def _transpose(src, so, ss, dst, do, ds):
    transpose8(src, so, ss, dst, do, ds)


def _reference(src, so, ss, dst, do, ds):
    out = dst.copy().ravel()
    for i in range(8):
        for j in range(8):
            out[do + j * ds + i] = src.ravel()[so + i * ss + j]
    return out.reshape(dst.shape)


@given(so=st.integers(0, 40), ss=st.integers(8, 24), do=st.integers(0, 40),
       ds=st.integers(8, 24), seed=st.integers(0, 2**32 - 1))
def test_transpose8_matches_numpy_and_touches_only_its_block(so, ss, do, ds, seed):
    """Any offsets and row strides (rows may not overlap): the 64 moved values land transposed,
    bit for bit (NaN payloads and signed zeros included), and nothing else in ``dst`` changes."""
    rng = np.random.default_rng(seed)
    src = rng.standard_normal(so + 7 * ss + 8)
    src[rng.integers(0, src.size, 3)] = [np.nan, -0.0, np.inf]
    dst = rng.standard_normal(do + 7 * ds + 8 + 5)
    want = _reference(src, so, ss, dst, do, ds)
    _transpose(src, so, ss, dst, do, ds)
    assert dst.tobytes() == want.tobytes()


def test_transpose8_on_the_lane_driver_layout():
    """The lane driver's use: a (rows, 16 states x 16 lanes) block to (lanes, rows, 16 states),
    equal to the strided loop it replaces."""
    L, npad, rows = 16, 16, 5
    rng = np.random.default_rng(1)
    q = rng.standard_normal((rows, npad * L))
    t = np.zeros((L, rows, npad))
    for m in range(rows):
        for kb in range(0, npad, 8):
            for lb in range(0, L, 8):
                _transpose(q, m * npad * L + kb * L + lb, L, t,
                                    lb * rows * npad + m * npad + kb, rows * npad)
    want = q.reshape(rows, npad, L).transpose(2, 0, 1)
    np.testing.assert_array_equal(t, want)


def test_transpose8_rejects_other_dtypes():
    with pytest.raises(numba.TypingError):
        _transpose(np.zeros(64, dtype=np.float32), 0, 8, np.zeros(64, dtype=np.float32), 0, 8)
