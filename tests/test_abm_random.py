"""``immunosim.engines.abm._random``: xoshiro256** streams and exact Poisson/binomial variates.

The generator is checked bit for bit against an independent pure-Python twin of the reference C
code (``xoshiro256starstar.c``) and its published first outputs; the variates are checked for
distribution (KS or pooled chi-square against scipy, fixed seeds so the p-values are fixed
numbers) and for their first two moments (within 4 standard errors). Each test says which bug it
is there to catch.
"""

from __future__ import annotations

import decimal
import math
from fractions import Fraction

import numba
import numpy as np
import pytest
from scipy import stats

from immunosim.engines.abm._random import (
    INVERSION_MAX_K,
    POISSON_MEAN_MAX,
    ZERO_STATE_REPLACEMENT,
    _binomial_log_ratio,
    _btrd_squeeze,
    _poisson_log_weight,
    _replace_zero_states,
    _stirling_tail,
    binomial,
    exponential,
    next_u64,
    poisson,
    seed_states,
    uniform,
    uniform_pos,
)

MASK64 = (1 << 64) - 1
SEED = 20240611
N_CONTINUOUS = 100_000
N_DISCRETE = 200_000
PI = decimal.Decimal("3.14159265358979323846264338327950288419716939937510")


# ---------------------------------------------------------------------------------------------
# Helpers: a pure-Python twin of the reference C code, and njit loops that fill arrays
# ---------------------------------------------------------------------------------------------
def _rotl_py(x: int, k: int) -> int:
    return ((x << k) | (x >> (64 - k))) & MASK64


def xoshiro_twin(state, n: int) -> tuple[list[int], list[int]]:
    """``n`` outputs of xoshiro256** from ``state`` and the state after them: the published C
    code (Blackman & Vigna, xoshiro256starstar.c) line by line, in Python ints masked to 64
    bits."""
    s = [int(v) for v in state]
    out = []
    for _ in range(n):
        result = (_rotl_py((s[1] * 5) & MASK64, 7) * 9) & MASK64
        t = (s[1] << 17) & MASK64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl_py(s[3], 45)
        out.append(result)
    return out, s


@numba.njit
def _fill_u64(state, out):
    for i in range(out.size):
        out[i] = next_u64(state)


@numba.njit
def _fill_uniform(state, out):
    for i in range(out.size):
        out[i] = uniform(state)


@numba.njit
def _fill_uniform_pos(state, out):
    for i in range(out.size):
        out[i] = uniform_pos(state)


@numba.njit
def _fill_exponential(state, out):
    for i in range(out.size):
        out[i] = exponential(state)


@numba.njit
def _fill_poisson(state, mean, out):
    for i in range(out.size):
        out[i] = poisson(state, mean)


@numba.njit
def _fill_binomial(state, n, p, out):
    for i in range(out.size):
        out[i] = binomial(state, n, p)


@numba.njit
def _draw_lanes(states, order, n_each, out):
    """Draw ``n_each`` numbers from each lane, lanes visited round-robin in ``order``."""
    for j in range(n_each):
        for lane in order:
            out[lane, j] = next_u64(states[lane])


def _state(key: int) -> np.ndarray:
    return seed_states(SEED, np.array([[key]]))[0]


def pooled_chisquare_pvalue(x: np.ndarray, dist) -> float:
    """Chi-square goodness of fit of integer samples ``x`` against a frozen scipy discrete
    distribution on the non-negative integers. Bins are consecutive values, pooled from the left
    until each expects at least 5 draws (the remainder joins the last bin); the far tails beyond
    the 1e-13 quantiles (and any observed value outside them) are folded into the end bins."""
    n = x.size
    lo = int(min(x.min(), dist.ppf(1e-13)))
    hi = int(max(x.max(), dist.ppf(1 - 1e-13)))
    ks = np.arange(lo, hi + 1)
    prob = dist.pmf(ks)
    prob[0] += dist.cdf(lo - 1)
    prob[-1] += dist.sf(hi)
    expected = n * prob
    observed = np.bincount(x - lo, minlength=ks.size).astype(float)
    exp_bins, obs_bins = [], []
    e_acc = o_acc = 0.0
    for e, o in zip(expected, observed):
        e_acc += e
        o_acc += o
        if e_acc >= 5.0:
            exp_bins.append(e_acc)
            obs_bins.append(o_acc)
            e_acc = o_acc = 0.0
    exp_bins[-1] += e_acc
    obs_bins[-1] += o_acc
    exp_bins = np.array(exp_bins)
    assert exp_bins.size >= 2 and exp_bins.min() >= 5.0
    return stats.chisquare(obs_bins, exp_bins * n / exp_bins.sum()).pvalue


def assert_moments(x: np.ndarray, dist) -> None:
    """Sample mean and variance within 4 standard errors of ``dist``'s."""
    n = x.size
    mean, var, kurt = (float(v) for v in dist.stats(moments="mvk"))
    se_mean = math.sqrt(var / n)
    se_var = var * math.sqrt((kurt + 2.0) / n)  # Var(s^2) ~ (mu4 - sigma^4) / n
    assert abs(x.mean() - mean) < 4 * se_mean, (x.mean(), mean, se_mean)
    assert abs(x.var(ddof=1) - var) < 4 * se_var, (x.var(ddof=1), var, se_var)


# ---------------------------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------------------------
def test_next_u64_matches_the_reference_c_code():
    # Catches any slip in the update (a wrong shift or rotation, XORs in the wrong order, the
    # multipliers 5 and 9 swapped, a promotion to float64 in Numba's uint64 arithmetic).
    # The published first outputs from state {1, 2, 3, 4} (reference C implementation) ...
    published = [11520, 0, 1509978240, 1215971899390074240, 1216172134540287360,
                 607988272756665600, 16172922978634559625, 8476171486693032832,
                 10595114339597558777, 2904607092377533576]
    state = np.array([1, 2, 3, 4], dtype=np.uint64)
    out = np.empty(10, dtype=np.uint64)
    _fill_u64(state, out)
    assert out.tolist() == published
    assert xoshiro_twin([1, 2, 3, 4], 10)[0] == published
    # ... and the twin over a long run from a seeded state, including the final state.
    state = _state(0)
    twin_out, twin_state = xoshiro_twin(state, 1000)
    out = np.empty(1000, dtype=np.uint64)
    _fill_u64(state, out)
    assert out.tolist() == twin_out
    assert state.tolist() == twin_state


def test_lanes_are_independent_of_visiting_order():
    # Catches state shared between lanes (a global state, or a copy instead of a view so that a
    # lane never advances): each lane's stream must depend on its own row only, which is what
    # makes results independent of the number of threads.
    states = seed_states(SEED, np.arange(5)[:, None])
    twins = [xoshiro_twin(row, 20) for row in states]
    for order in (np.arange(5), np.array([4, 2, 0, 3, 1])):
        st = states.copy()
        out = np.empty((5, 20), dtype=np.uint64)
        _draw_lanes(st, order, 20, out)
        for lane in range(5):
            assert out[lane].tolist() == twins[lane][0]
            assert st[lane].tolist() == twins[lane][1]


def _state_giving(first_output: int) -> np.ndarray:
    """A state whose next xoshiro256** output is ``first_output`` (s[1] solves
    rotl(s1 * 5, 7) * 9 = first_output modulo 2**64; the other words are arbitrary)."""
    y = (first_output * pow(9, -1, 1 << 64)) & MASK64
    y = _rotl_py(y, 64 - 7)  # rotr by 7
    s1 = (y * pow(5, -1, 1 << 64)) & MASK64
    return np.array([123, s1, 456, 789], dtype=np.uint64)


def test_uniform_uses_53_bits_and_its_interval_ends():
    # Catches a wrong shift or scale (>> 12, * 2**-64 rounding up to exactly 1.0) and a
    # uniform_pos that can return 0 (log(0) = -inf in an exponential waiting time).
    assert xoshiro_twin(_state_giving(0), 1)[0] == [0]
    assert xoshiro_twin(_state_giving(MASK64), 1)[0] == [MASK64]
    assert uniform(_state_giving(0)) == 0.0
    assert uniform(_state_giving(MASK64)) == 1.0 - 2.0**-53
    assert uniform_pos(_state_giving(0)) == 2.0**-53
    assert uniform_pos(_state_giving(MASK64)) == 1.0
    assert uniform(_state_giving(1 << 11)) == 2.0**-53  # the lowest kept bit
    assert uniform(_state_giving((1 << 11) - 1)) == 0.0  # the 11 dropped bits
    # Against the twin's integers over a run.
    state = _state(1)
    ints, _ = xoshiro_twin(state, 1000)
    out = np.empty(1000)
    _fill_uniform(state.copy(), out)
    np.testing.assert_array_equal(out, [(v >> 11) * 2.0**-53 for v in ints])
    _fill_uniform_pos(state.copy(), out)
    np.testing.assert_array_equal(out, [((v >> 11) + 1) * 2.0**-53 for v in ints])


def test_uniform_is_uniform():
    # Catches gross distribution errors (e.g. using only the low 32 bits or a signed conversion
    # that folds the upper half onto negatives): KS against U(0, 1) on 1e5 draws.
    x = np.empty(N_CONTINUOUS)
    _fill_uniform(_state(2), x)
    assert x.min() >= 0.0 and x.max() < 1.0
    assert stats.kstest(x, stats.uniform.cdf).pvalue > 1e-3
    _fill_uniform_pos(_state(3), x)
    assert x.min() > 0.0 and x.max() <= 1.0
    assert stats.kstest(x, stats.uniform.cdf).pvalue > 1e-3


def test_exponential_is_exponential():
    # Catches a wrong inversion (log(U) without the sign, -log(1 - U) from a (0, 1] uniform that
    # hits log(0)) and a rate other than 1: KS against Exp(1) on 1e5 draws, plus the mean.
    x = np.empty(N_CONTINUOUS)
    _fill_exponential(_state(4), x)
    assert np.isfinite(x).all() and x.min() >= 0.0
    assert stats.kstest(x, stats.expon.cdf).pvalue > 1e-3
    assert abs(x.mean() - 1.0) < 4 / math.sqrt(x.size)
    # Exactly -log of uniform_pos, draw for draw.
    state = _state(5)
    u = np.empty(100)
    _fill_uniform_pos(state.copy(), u)
    _fill_exponential(state, x[:100])
    np.testing.assert_array_equal(x[:100], -np.log(u))


# ---------------------------------------------------------------------------------------------
# Poisson
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mean", [0.3, 3.0, 9.9, 10.0, 25.0, 400.0])
def test_poisson_distribution(mean):
    # 0.3 and 3: inversion (an off-by-one in the search shifts the mean by 1, caught by the
    # moment check; a wrong pmf recursion skews the shape, caught by chi-square). 9.9 / 10: both
    # sides of the switch to PTRS (a constant of the hat mistyped shows at small means first).
    # 25 and 400: PTRS (a wrong acceptance test -- log(alpha) dropped, lgamma(k) for log k! --
    # biases the shape and the variance).
    x = np.empty(N_DISCRETE, dtype=np.int64)
    _fill_poisson(_state(100 + int(10 * mean)), mean, x)
    assert x.min() >= 0
    dist = stats.poisson(mean)
    assert pooled_chisquare_pvalue(x, dist) > 1e-4
    assert_moments(x, dist)


def test_poisson_edge_cases():
    # Catches a non-positive mean that draws (and so desynchronises the lane's stream) or loops,
    # and a NaN or infinite mean that hangs PTRS or returns a garbage cast instead of -1.
    state = _state(6)
    before = state.copy()
    for mean in (0.0, -1.0, -np.inf):
        assert poisson(state, mean) == 0
    for mean in (np.nan, np.inf, 2 * POISSON_MEAN_MAX):
        assert poisson(state, mean) == -1
    np.testing.assert_array_equal(state, before)
    assert poisson(state, 1e-300) == 0  # exp(-mean) = 1: u < 1 always stops at k = 0
    assert abs(poisson(state, 1e12) - 1e12) < 10 * 1e6  # within 10 sd: no overflow for big means


# ---------------------------------------------------------------------------------------------
# Binomial
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("n", "p"), [(5, 0.3), (40, 0.2), (100, 0.6), (1000, 0.05),
                                      (10000, 0.4), (30, 0.99), (20, 0.5)])
def test_binomial_distribution(n, p):
    # (5, 0.3), (40, 0.2): inversion (an off-by-one in the search shifts the mean by 1, caught
    # by the moment check; a wrong ratio f(k)/f(k-1) skews the shape, caught by chi-square).
    # (100, 0.6): BTRD after symmetry, |k - m| <= 15 recursion branch (a symmetry applied the
    # wrong way gives mean 40 instead of 60). (1000, 0.05), (10000, 0.4): BTRD with the squeeze
    # and the Stirling-form acceptance (|k - m| > 15); a wrong tail fc or a sign slip in the
    # log-ratio biases the variance. (30, 0.99): symmetry into inversion with n p' = 0.3.
    # (20, 0.5): n p = 10 exactly, the smallest BTRD case (a hat constant mistyped, or a box
    # that reaches beyond [0, n], shows here first).
    x = np.empty(N_DISCRETE, dtype=np.int64)
    _fill_binomial(_state(1000 + n), n, p, x)
    assert x.min() >= 0 and x.max() <= n
    dist = stats.binom(n, p)
    assert pooled_chisquare_pvalue(x, dist) > 1e-4
    assert_moments(x, dist)


def test_binomial_edge_cases():
    # Catches the degenerate cases drawing (desynchronising the stream) or returning the wrong
    # end (p >= 1 must give n), and invalid input that loops or returns a plausible count.
    state = _state(7)
    before = state.copy()
    assert binomial(state, 0, 0.5) == 0
    assert binomial(state, 10, 0.0) == 0
    assert binomial(state, 10, -0.5) == 0
    assert binomial(state, 10, 1.0) == 10
    assert binomial(state, 10, 1.5) == 10
    assert binomial(state, -1, 0.5) == -1
    assert binomial(state, 10, np.nan) == -1
    np.testing.assert_array_equal(state, before)
    # Huge n with tiny p (inversion; (1 - p)**n computed through log1p, no underflow).
    x = np.empty(20_000, dtype=np.int64)
    _fill_binomial(state, 10**12, 3e-12, x)
    assert abs(x.mean() - 3.0) < 4 * math.sqrt(3.0 / x.size)
    assert x.max() < INVERSION_MAX_K


def test_stirling_tails_against_decimal():
    # Catches a mistyped table entry or a truncated series in BTRD's final acceptance test:
    # fc(k) = log k! - [(k + 1/2) log(k + 1) - (k + 1) + log(2 pi) / 2] to 3e-16 absolute,
    # against 50-digit decimal arithmetic.
    with decimal.localcontext() as ctx:
        ctx.prec = 50
        half_log_2pi = (2 * PI).ln() / 2
        for k in [*range(40), 100, 1000]:
            kd = decimal.Decimal(k)
            ref = decimal.Decimal(math.factorial(k)).ln() - (
                (kd + decimal.Decimal("0.5")) * (kd + 1).ln() - (kd + 1) + half_log_2pi)
            assert abs(_stirling_tail(k) - float(ref)) < 3e-16, k


def _exact_log_binomial_ratio(n: int, p: float, m: int, k: int) -> float:
    """log(f(k) / f(m)) for Binomial(n, p) from the exact rational product of
    f(i) / f(i - 1) = (n - i + 1) p / (i q), p taken as its exact binary value, the logarithm
    in 40-digit decimal arithmetic."""
    pr = Fraction(p)
    step = lambda i: Fraction(n - i + 1, i) * pr / (1 - pr)  # noqa: E731
    ratio = Fraction(1)
    for i in range(min(k, m) + 1, max(k, m) + 1):
        ratio *= step(i)
    if k < m:
        ratio = 1 / ratio
    with decimal.localcontext() as ctx:
        ctx.prec = 40
        return float(decimal.Decimal(ratio.numerator).ln()
                     - decimal.Decimal(ratio.denominator).ln())


BTRD_CASES = [(20, 0.5), (100, 0.4), (1000, 0.05), (10000, 0.4), (10**6, 0.3), (10**9, 0.01)]


def test_binomial_log_ratio_is_accurate():
    # Catches a sign or index slip in BTRD's final acceptance test (a dropped or mis-signed
    # f_c(n - k), k + 1 for k, the (n + 1) log(nm / nk) form that loses n * eps = 1e-7 at
    # n = 1e9), all invisible to a chi-square test of 2e5 draws: log f(k)/f(m) against the
    # exact rational ratio, to 4 |k - m| eps.
    for n, p in BTRD_CASES:
        m = math.floor((n + 1) * p)
        sd = math.sqrt(n * p * (1 - p))
        for z in (-6.0, -3.0, -1.0, -0.2, 0.0, 0.3, 1.5, 4.0, 7.0):
            k = min(max(round(m + z * sd), 0), n)
            if abs(k - m) > 2000:  # keeps the exact product small
                continue
            ref = _exact_log_binomial_ratio(n, p, m, k)
            got = _binomial_log_ratio(n, m, k, p / (1 - p))
            assert abs(got - ref) <= 4 * max(1, abs(k - m)) * 2.2e-16, (n, p, k)


def test_btrd_squeeze_brackets_the_log_ratio_where_used():
    # Catches a mistyped squeeze constant (t or rho) that accepts or rejects without the exact
    # test, and checks the documented range of validity: for |k - m| <= m/2 (where BTRD uses
    # it) t - rho <= log f(k)/f(m) <= t + rho, for every k of each case. The published bracket
    # fails far in the left tail (n = 1000, p = 0.05, k <= 1), which is why the range is cut.
    for n, p in [(20, 0.5), (64, 0.5), (100, 0.4), (1000, 0.05), (3000, 0.01), (10000, 0.4),
                 (10**6, 0.3)]:
        m = math.floor((n + 1) * p)
        npq = n * p * (1 - p)
        r = p / (1 - p)
        for k in range(max(0, m - m // 2), min(n, m + m // 2) + 1):
            km = abs(k - m)
            if km <= 15:  # BTRD uses the exact recursion there
                continue
            t, rho = _btrd_squeeze(km, npq)
            lr = _binomial_log_ratio(n, m, k, r)
            assert t - rho <= lr <= t + rho, (n, p, k)
    t, rho = _btrd_squeeze(50, 1000 * 0.05 * 0.95)  # the counterexample, k = 0 for m = 50
    assert _binomial_log_ratio(1000, 50, 0, 0.05 / 0.95) < t - rho


def test_poisson_log_weight_is_accurate():
    # Catches an error in PTRS's acceptance test (lgamma(k) for log k!, a dropped term) and the
    # cancellation of -mu + k log(mu) - lgamma(k + 1) at large means: against 40-digit decimal
    # (log k! = ln(k!) for small k, Stirling's series to 10 terms for large k).
    dec = decimal.Decimal

    def log_factorial(k: int) -> decimal.Decimal:
        if k < 300:
            return dec(math.factorial(k)).ln()
        x = dec(k + 1)  # log Gamma(x), Stirling series (truncation error < 1e-50 for x > 300)
        bern = [dec(1) / 6, dec(-1) / 30, dec(1) / 42, dec(-1) / 30, dec(5) / 66,
                dec(-691) / 2730, dec(7) / 6, dec(-3617) / 510, dec(43867) / 798,
                dec(-174611) / 330]
        series = sum(b / ((2 * j + 2) * (2 * j + 1) * x ** (2 * j + 1))
                     for j, b in enumerate(bern))
        return (x - dec("0.5")) * x.ln() - x + (2 * PI).ln() / 2 + series

    with decimal.localcontext() as ctx:
        ctx.prec = 40
        for mean in (10.0, 25.0, 400.0, 1e6, 1e12, 1e15):
            sd = math.sqrt(mean)
            for z in (-5.0, -1.0, 0.0, 0.5, 3.0):
                k = max(0, math.floor(mean + z * sd))
                ref = -dec(mean) + k * dec(mean).ln() - log_factorial(k)
                got = _poisson_log_weight(float(k), mean)
                tol = 8 * (abs(k + 1 - mean) + math.log(mean) + 1) * 2.2e-16
                assert abs(got - float(ref)) <= tol, (mean, k, got, float(ref))
    # The textbook form is off by O(1) at mean 1e15; this one is not (the check above).
    assert abs(_poisson_log_weight(0.0, 12.5) + 12.5) < 1e-14  # log 0! = 0


# ---------------------------------------------------------------------------------------------
# Seeding
# ---------------------------------------------------------------------------------------------
def test_seed_states_are_keyed_and_reproducible():
    # Catches keying by row position instead of by key (a lane's stream would change when lanes
    # are added, removed or reordered), keys that collide ((0, 1) vs (1, 0)), a seed that is
    # ignored, and the wrong shape or dtype for the kernels.
    keys = np.array([[0, 0], [0, 1], [1, 0], [7, 3]])
    states = seed_states(SEED, keys)
    assert states.shape == (4, 4) and states.dtype == np.uint64
    np.testing.assert_array_equal(states, seed_states(SEED, keys))
    np.testing.assert_array_equal(states[::-1], seed_states(SEED, keys[::-1]))
    np.testing.assert_array_equal(states[3:], seed_states(SEED, keys[3:]))
    assert len({tuple(row) for row in states.tolist()}) == 4
    assert not (seed_states(SEED + 1, keys) == states).all(axis=1).any()
    expected = np.random.SeedSequence(SEED, spawn_key=(7, 3)).generate_state(4, np.uint64)
    np.testing.assert_array_equal(states[3], expected)
    assert seed_states(SEED, np.zeros((0, 2), dtype=np.int64)).shape == (0, 4)


def test_seed_states_rejects_bad_keys_and_guards_the_zero_state():
    # Catches silently accepted float keys (rounded, so distinct lanes could collide), 1-D keys
    # mistaken for one lane, and an all-zero state (xoshiro's fixed point: zeros forever).
    with pytest.raises(ValueError):
        seed_states(SEED, np.arange(3))
    with pytest.raises(ValueError):
        seed_states(SEED, np.array([[0.5]]))
    with pytest.raises(ValueError):
        seed_states(SEED, np.array([[-1]]))
    with pytest.raises(TypeError):
        seed_states(1.5, np.array([[0]]))
    states = np.array([[0, 0, 0, 0], [0, 0, 0, 1]], dtype=np.uint64)
    fixed = _replace_zero_states(states)
    np.testing.assert_array_equal(fixed[0], ZERO_STATE_REPLACEMENT)
    np.testing.assert_array_equal(fixed[1], [0, 0, 0, 1])
    assert ZERO_STATE_REPLACEMENT.dtype == np.uint64 and ZERO_STATE_REPLACEMENT.any()
    assert all(xoshiro_twin(ZERO_STATE_REPLACEMENT, 4)[0])  # a live stream
