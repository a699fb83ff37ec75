r"""Vectorisable ``log``, ``exp`` and ``pow`` for Numba kernels.

Why this module exists
----------------------
Model right-hand sides written in the strided layout are inlined into a loop over 16 SIMD lanes
(see :data:`immunosim._numba_config.JIT_INLINE_FLAGS`). A Hill term ``x ** y`` in such a
right-hand side lowers to ``llvm.pow.f64``. Without a vector math library (SVML, libmvec) LLVM
cannot widen that intrinsic, so it scalarises it into 16 calls to libm's ``pow`` per loop trip,
about 12 ns each, which dominate the whole loop. The functions here are written only with
floating-point arithmetic, integer operations, bit reinterpretation and selects (conditional
expressions, no early returns), so that after inlining LLVM sees a straight-line loop body and
vectorises it like any other arithmetic.

Algorithms
----------
Both kernels follow Sun Microsystems' fdlibm (freely distributable; the same code is in musl
libc up to 1.1.21), re-expressed branch-free:

``log_pos`` -- fdlibm ``e_log.c`` (``__ieee754_log``). Subnormal ``x`` is first multiplied by
:math:`2^{54}`. Integer operations on the high word then write :math:`x = 2^k (1 + f)` with
:math:`1 + f \in [\sqrt{2}/2, \sqrt{2})`. With :math:`s = f / (2 + f)`,
:math:`\log(1 + f) = f - f^2/2 + s (f^2/2 + R(s^2))`, where :math:`R` is the degree-14 minimax
polynomial in ``Lg1 .. Lg7`` (evaluated as two interleaved halves). The result
:math:`k\,\mathrm{ln2\_hi} + (f - (f^2/2 - (s (f^2/2 + R) + k\,\mathrm{ln2\_lo})))` uses a
two-part :math:`\ln 2` whose high part has 32 trailing zero bits, so :math:`k\,\mathrm{ln2\_hi}`
is exact. fdlibm states an error below 1 ulp.

``exp_`` -- fdlibm ``e_exp.c`` (``__ieee754_exp``). :math:`k = \mathrm{round}(x / \ln 2)` is
obtained by adding :math:`1.5 \cdot 2^{52}` (the integer then sits in the low mantissa bits, so
``k`` is read back with an integer subtraction, no float-to-int conversion or ``floor`` call).
Cody-Waite reduction :math:`r = (x - k\,\mathrm{ln2hi}) - k\,\mathrm{ln2lo}`, and on
:math:`|r| \le \ln 2 / 2` the rational form
:math:`e^r = 1 + (r\,c / (2 - c) - \mathrm{lo} + \mathrm{hi})` with
:math:`c = r - r^2 (P_1 + r^2 (P_2 + \dots + r^2 P_5))`. The scale :math:`2^k` is built from
exponent bits in two factors :math:`2^{\lfloor k/2 \rfloor} 2^{k - \lfloor k/2 \rfloor}`,
each a normal number for every :math:`k \in [-1076, 1024]`, so results from subnormal up to
``DBL_MAX`` are rounded once, as with ``scalbn``. fdlibm states an error below 1 ulp.

``pow_pos`` -- :math:`x^y = \exp(y \log x)` for :math:`x \ge 0`. The absolute error of
:math:`y \log x` (about :math:`|y \log x|\,\varepsilon`) becomes a relative error of
:math:`e^{y \log x}`, so the relative error grows like :math:`|y \log x|\,\varepsilon`: it is
not a correctly rounded ``pow`` (libm's uses an extra-precise logarithm), but it is ample for
model right-hand sides.

Measured accuracy (x86-64, glibc; see ``tests/test_vmath.py``). Against CPython's ``math``
(libm): ``log_pos`` is at most 1 ulp from ``math.log`` (and equal to it for 99.99 % of 400 000
points log-uniform in [1e-310, 1e308], plus all powers of two and :math:`1 \pm` tiny);
``exp_`` is at most 1 ulp from ``math.exp`` over [-745.13, 709.78] including subnormal results
(equal for 91 %). Against a 50-digit ``decimal`` reference (100 000 points) the true errors are
at most 0.62 ulp (``log_pos``) and 0.85 ulp (``exp_``), within fdlibm's bound of 1 ulp.
``pow_pos`` for ``x`` log-uniform in [1e-12, 1e6] and ``y`` in [0.5, 8]
(:math:`|y \log x| \le 221`), 3 million points: relative error against ``math.pow`` at most
:math:`1.47\,\varepsilon \max(1, |y \log x|)`, i.e. at most :math:`1.5 \times 10^{-14}`
overall and :math:`1.3\,\varepsilon` where :math:`|y \log x| \le 1` (true error against
``decimal``: at most :math:`1.17\,\varepsilon \max(1, |y \log x|)`).

Special values follow C99 ``pow`` (and hence ``x ** y``) for :math:`x \ge 0`: ``pow_pos(0, y)``
is 0 for ``y > 0``, 1 for ``y == 0`` and ``inf`` for ``y < 0``; ``pow_pos(x, 0)`` and
``pow_pos(1, y)`` are 1 even when the other argument is NaN; otherwise NaN propagates.
Negative ``x`` gives NaN (except for ``y == 0``), and ``-0.0`` is treated as ``+0.0``.

References
----------
Sun Microsystems, fdlibm 5.3, ``e_log.c`` (Copyright (C) 1993) and ``e_exp.c`` (Copyright (C)
2004 by Sun Microsystems, Inc.: "Permission to use, copy, modify, and distribute this software is
freely granted, provided that this notice is preserved"); the same code is in FreeBSD's msun and
in musl. The code below is an independent Python rendering of those algorithms; only the
published polynomial coefficients and constants are shared.
"""

from __future__ import annotations

import math

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ._numba_config import JIT_INLINE

__all__ = ["exp_", "log_pos", "pow_pos"]


@intrinsic
def _f64_bits(typingctx, x):
    """Reinterpret the bits of a float64 as an int64 (LLVM ``bitcast``, no code emitted)."""
    if not isinstance(x, types.Float) or x.bitwidth != 64:
        return None
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return sig, codegen


@intrinsic
def _bits_f64(typingctx, i):
    """Reinterpret the bits of an int64 as a float64 (LLVM ``bitcast``, no code emitted)."""
    if not isinstance(i, types.Integer):
        return None
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        # The argument has been cast to int64 by the signature.
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


# -- constants of fdlibm e_log.c -------------------------------------------------------------
_LN2_HI = 6.93147180369123816490e-01  # 0x3FE62E42 FEE00000
_LN2_LO = 1.90821492927058770002e-10  # 0x3DEA39EF 35793C76
_TWO54 = 1.80143985094819840000e16  # 0x43500000 00000000
_LG1 = 6.666666666666735130e-01  # 0x3FE55555 55555593
_LG2 = 3.999999999940941908e-01  # 0x3FD99999 9997FA04
_LG3 = 2.857142874366239149e-01  # 0x3FD24924 94229359
_LG4 = 2.222219843214978396e-01  # 0x3FCC71C5 1D8E78AF
_LG5 = 1.818357216161805012e-01  # 0x3FC74664 96CB03DE
_LG6 = 1.531383769920937332e-01  # 0x3FC39A09 D078C69F
_LG7 = 1.479819860511658591e-01  # 0x3FC2F112 DF3E5244
_DBL_MIN = 2.2250738585072014e-308  # smallest normal number, 0x00100000 00000000
_SQRT2_HALF_HI = 0x3FE6A09E  # high word of sqrt(2)/2

# -- constants of fdlibm e_exp.c -------------------------------------------------------------
_INV_LN2 = 1.44269504088896338700e00  # 0x3FF71547 652B82FE
_P1 = 1.66666666666666019037e-01  # 0x3FC55555 5555553E
_P2 = -2.77777777770155933842e-03  # 0xBF66C16C 16BEBD93
_P3 = 6.61375632143793436117e-05  # 0x3F11566A AF25DE2C
_P4 = -1.65339022054652515390e-06  # 0xBEBBBD41 C5D26BF1
_P5 = 4.13813679705723846039e-08  # 0x3E663769 72BEA4D0
_EXP_OVERFLOW = 7.09782712893383973096e02  # above: exp(x) > DBL_MAX
_EXP_UNDERFLOW = -7.45133219101941108420e02  # below: exp(x) < 2**-1075, rounds to 0
_ROUND_SHIFT = 6755399441055744.0  # 1.5 * 2**52: x + this rounds x to an integer (|x| < 2**51)
_ROUND_SHIFT_BITS = 0x4338000000000000  # its bit pattern

_INF = math.inf
_NAN = math.nan


@JIT_INLINE
def log_pos(x):
    """Natural logarithm for ``x >= 0``, without libm calls (fdlibm ``__ieee754_log``).

    Parameters
    ----------
    x : float
        Argument; subnormal numbers are handled.

    Returns
    -------
    float
        ``log(x)`` within 1 ulp; ``-inf`` for ``x == 0``, ``inf`` for ``x == inf``, NaN for NaN
        or ``x < 0``.
    """
    # Subnormals (and 0, negatives, which are overridden below): scale into the normal range.
    tiny = x < _DBL_MIN
    xs = x * _TWO54 if tiny else x
    bits = _f64_bits(xs)
    # Reduce to 1 + f in [sqrt(2)/2, sqrt(2)): shift the high word so that mantissas at or above
    # that of sqrt(2) carry into the exponent, take k from it, then rebuild the mantissa.
    hx = (bits >> 32) + (0x3FF00000 - _SQRT2_HALF_HI)
    k = (hx >> 20) - 0x3FF - (54 if tiny else 0)
    hx = (hx & 0x000FFFFF) + _SQRT2_HALF_HI
    m = _bits_f64((hx << 32) | (bits & 0xFFFFFFFF))
    f = m - 1.0
    hfsq = 0.5 * f * f
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    r = t2 + t1
    dk = float(k)
    res = dk * _LN2_HI - ((hfsq - (s * (hfsq + r) + dk * _LN2_LO)) - f)
    # Special values, as selects (no early return, so that inlined calls vectorise).
    res = -_INF if x == 0.0 else res
    res = _NAN if x < 0.0 else res
    res = x if not x < _INF else res  # +inf -> inf, NaN -> NaN
    return res


@JIT_INLINE
def exp_(x):
    """Exponential function without libm calls (fdlibm ``__ieee754_exp``).

    Parameters
    ----------
    x : float
        Argument.

    Returns
    -------
    float
        ``exp(x)`` within 1 ulp, including subnormal results; ``inf`` for ``x > 709.78``, 0 for
        ``x < -745.13``, NaN for NaN.
    """
    # Clamp so that k stays in [-1076, 1024] (out-of-range and NaN results are selected below).
    xc = x if x > -746.0 else -746.0
    xc = xc if xc < 710.0 else 710.0
    # k = round(x / ln2): adding 1.5 * 2**52 leaves the integer in the low mantissa bits.
    t = xc * _INV_LN2 + _ROUND_SHIFT
    k = _f64_bits(t) - _ROUND_SHIFT_BITS
    kf = t - _ROUND_SHIFT
    hi = xc - kf * _LN2_HI  # exact: ln2_hi has 32 trailing zero bits and |k| <= 1076
    lo = kf * _LN2_LO
    r = hi - lo  # |r| <= ln2 / 2 (+ rounding)
    rr = r * r
    c = r - rr * (_P1 + rr * (_P2 + rr * (_P3 + rr * (_P4 + rr * _P5))))
    y = 1.0 + ((r * c) / (2.0 - c) - lo + hi)
    # y * 2**k in two steps, each factor a normal number, so that only the last product rounds
    # (subnormal results) or overflows (it cannot for x <= _EXP_OVERFLOW).
    k1 = k >> 1
    k2 = k - k1
    res = y * _bits_f64((k1 + 0x3FF) << 52) * _bits_f64((k2 + 0x3FF) << 52)
    res = _INF if x > _EXP_OVERFLOW else res
    res = 0.0 if x < _EXP_UNDERFLOW else res
    res = x if x != x else res  # NaN
    return res


@JIT_INLINE
def pow_pos(x, y):
    """``x ** y`` for ``x >= 0`` without libm calls, as ``exp_(y * log_pos(x))``.

    Parameters
    ----------
    x : float
        Base, ``x >= 0`` (negative bases give NaN).
    y : float
        Exponent.

    Returns
    -------
    float
        ``x ** y`` with relative error below about ``eps * max(1, |y log x|)`` (see the module
        docstring for the measured bound). ``pow_pos(0, y)`` is 0, 1 or ``inf`` for ``y``
        positive, zero or negative; ``pow_pos(x, 0) == pow_pos(1, y) == 1`` for any ``x``, ``y``
        (including NaN), as in C99 ``pow``; otherwise NaN propagates.
    """
    res = exp_(y * log_pos(x))
    return 1.0 if (y == 0.0) | (x == 1.0) else res
