r"""Random numbers for the agent-based engine: keyed per-lane xoshiro256** streams.

Why this module exists
----------------------
The agent-based engine runs many independent *lanes* (one simulated patient or replicate each)
inside Numba kernels, spread over worker threads with ``prange``. Numba's own ``np.random``
keeps one generator state per *thread*, so which numbers a lane receives depends on which thread
ran it and on what that thread ran before: results would change with the number of threads and
with the scheduler's choices. Here every lane owns its generator state instead, one row of a
``(n_lanes, 4)`` ``uint64`` array, and every draw is a pure function of that row. A lane's
random stream is fixed by ``(seed, key)`` alone (see :func:`seed_states`), so a simulation gives
bit-identical results whatever the number of threads, the order in which lanes are run, or how
the lanes are split into batches or across machines. A state row must never be shared by two
threads (each lane is advanced by exactly one thread at a time); nothing else is shared, so the
kernels run with the GIL released (``nogil``).

Generator
---------
xoshiro256** (Blackman & Vigna 2021): 256 bits of state, period :math:`2^{256} - 1`, a handful of
shifts, rotations, XORs and two multiplications per 64-bit output, and no known statistical
failure (it passes BigCrush and PractRand). :func:`next_u64` is a line-by-line rendering of the
authors' reference C code ``xoshiro256starstar.c``. The all-zero state is the generator's only
fixed point and must never occur; :func:`seed_states` excludes it.

Streams are keyed rather than jumped: lane ``i`` with integer key row ``keys[i]`` starts from
``np.random.SeedSequence(seed, spawn_key=tuple(keys[i])).generate_state(4, np.uint64)``.
SeedSequence hashes ``(seed, key)`` into a well-mixed 256-bit state, so distinct keys give
unrelated starting points: for :math:`n` lanes drawing :math:`L` numbers each, the chance that
two streams overlap is below :math:`n^2 L / 2^{256}`. A lane's key (e.g. ``(patient,
replicate)``) is a property of the lane, never of a thread or batch, which is what makes results
independent of parallelisation.

Variates
--------
* :func:`uniform` -- :math:`[0, 1)` from the upper 53 bits, ``(x >> 11) * 2**-53`` (every value
  a multiple of :math:`2^{-53}`); :func:`uniform_pos` -- :math:`(0, 1]`, ``((x >> 11) + 1) *
  2**-53``, safe to take the logarithm of.
* :func:`exponential` -- rate 1 by inversion, :math:`-\log U` with :math:`U` from
  :func:`uniform_pos` (values in :math:`[0, 53 \ln 2]`).
* :func:`poisson` -- exact. For mean :math:`\mu < 10`, inversion by sequential search from
  :math:`k = 0` (one uniform per variate). For :math:`\mu \ge 10`, Hörmann's (1993a) PTRS
  transformed rejection with squeeze (the algorithm numpy uses for ``lam >= 10``; 2.7
  uniforms per variate at :math:`\mu = 10`, 2.25 for large :math:`\mu`: constant expected
  time).
* :func:`binomial` -- exact. With :math:`p' = \min(p, 1 - p)` (symmetry), inversion by
  sequential search for :math:`n p' < 10`, Hörmann's (1993b) BTRD transformed rejection for
  :math:`n p' \ge 10` (2.4 uniforms per variate at :math:`n p' = 10`, 1.4 for large
  :math:`n p'`: constant expected time).

"Exact" means no approximation of the distribution (no normal or Poisson limit): only
floating-point rounding of the probabilities and the 53-bit resolution of the uniforms, and in
the sequential searches a restart (a fresh uniform) after :data:`INVERSION_MAX_K` steps, which
truncates a tail of probability below :math:`10^{-170}` (a Chernoff bound for mean < 10) and
only guards against an endless search when rounding leaves the running sum of probabilities a
few ulps short of the uniform. Two details differ from the papers, both to keep that promise:

* The log-probabilities in the final acceptance tests (``-mu + k log mu - log k!`` in PTRS,
  ``log f(k)/f(m)`` in BTRD) are written in Stirling form with the large terms cancelled
  analytically (:func:`_poisson_log_weight`, :func:`_binomial_log_ratio`). The textbook forms
  lose about :math:`\mu \log \mu\,\varepsilon` or :math:`n \varepsilon` (an error of order
  1 in the log at :math:`\mu = 10^{15}`, 1e-7 at :math:`n = 10^9`); these lose a few
  :math:`|k - m|\,\varepsilon`. The Stirling tails :math:`f_c` are tabulated to ``k = 9`` and
  summed to six terms above (error below 2e-16, where Hörmann's three terms leave 3e-11).
* BTRD's squeeze (step 3.2) is used only for :math:`|k - m| \le m/2`: far in the left tail
  Hörmann's bracket does not hold (see :func:`_btrd_squeeze`), and the exact test decides.

Invalid parameters
------------------
Kernels do not raise. ``poisson`` returns 0 for ``mean <= 0`` and ``-1`` (an impossible count,
for the caller to detect) for NaN, infinite or too large means (> :data:`POISSON_MEAN_MAX`);
``binomial`` returns ``-1`` for ``n < 0`` or NaN ``p``.

References
----------
D. Blackman and S. Vigna (2021). Scrambled linear pseudorandom number generators. *ACM
Transactions on Mathematical Software* 47(4), 36. doi:10.1145/3460772. Reference code:
https://prng.di.unimi.it/xoshiro256starstar.c (public domain).

W. Hörmann (1993a). The transformed rejection method for generating Poisson random variables.
*Insurance: Mathematics and Economics* 12(1), 39-45. doi:10.1016/0167-6687(93)90997-4.

W. Hörmann (1993b). The generation of binomial random variates. *Journal of Statistical
Computation and Simulation* 46(1-2), 101-110. doi:10.1080/00949659308811496.

M. E. O'Neill, ``numpy.random.SeedSequence`` (NumPy documentation, "Parallel random number
generation").

The code below is an independent rendering of the published algorithms; only their constants
are shared with other implementations.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from ..._numba_config import JIT, JIT_INLINE

#: Largest Poisson mean accepted by :func:`poisson` (larger means, NaN and inf give ``-1``).
#: Far beyond any rate in the model; below it every plausible variate is an integer that a
#: double holds exactly (< 2**53) and the acceptance test keeps its accuracy (tested at 1e15).
POISSON_MEAN_MAX = 1.0e15

#: Sequential searches (Poisson mean < 10, binomial n p < 10) restart with a fresh uniform after
#: this many steps. The tail they cut, P(X > 200) <= exp(-mu) (e mu / 200)**200 < 1e-170 for
#: mu < 10 (Chernoff; the same bound holds for the binomial), is far below the 2**-53
#: resolution of a uniform: the restart only stops an endless loop when rounding leaves the
#: running sum of probabilities a few ulps short of the uniform.
INVERSION_MAX_K = 200

#: Replaces an all-zero xoshiro256** state (the generator's fixed point) in :func:`seed_states`.
#: SeedSequence produces it with probability 2**-256; the value is arbitrary (SplitMix64's
#: golden-ratio increment, its two mixing multipliers and the xorshift64* multiplier).
ZERO_STATE_REPLACEMENT = np.array(
    [0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB, 0x2545F4914F6CDD1D],
    dtype=np.uint64,
)

_TWO_M53 = 1.0 / 9007199254740992.0  # 2**-53
_TWO_PI = 2.0 * math.pi

#: Stirling-series tails fc(k) = log(k!) - [(k + 1/2) log(k + 1) - (k + 1) + log(2 pi) / 2] for
#: k = 0..9 (as in Hörmann 1993b; checked against 40-digit ``decimal`` values in the tests);
#: larger k use the series in :func:`_stirling_tail`.
_FC_TABLE = np.array([
    0.08106146679532726, 0.04134069595540929, 0.02767792568499834, 0.02079067210376509,
    0.01664469118982119, 0.01387612882307075, 0.01189670994589177, 0.01041126526197209,
    0.009255462182712733, 0.008330563433362871,
])


# --------------------------------------------------------------------------------------------
# xoshiro256**
# --------------------------------------------------------------------------------------------
@JIT_INLINE
def _rotl(x, k):
    """Rotate the ``uint64`` ``x`` left by ``k`` bits (``0 < k < 64``, ``uint64``)."""
    return (x << k) | (x >> (np.uint64(64) - k))


@JIT_INLINE
def next_u64(state):
    """Next 64-bit output of xoshiro256**, advancing ``state`` in place.

    Parameters
    ----------
    state : ndarray of uint64, shape (4,)
        The lane's generator state (a row of the ``(n_lanes, 4)`` state array), never all zero.
        Modified in place.

    Returns
    -------
    uint64
        ``rotl(s[1] * 5, 7) * 9`` (modulo :math:`2^{64}`), as in the reference C code.
    """
    s0 = state[0]
    s1 = state[1]
    s2 = state[2]
    s3 = state[3]
    result = _rotl(s1 * np.uint64(5), np.uint64(7)) * np.uint64(9)
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, np.uint64(45))
    state[0] = s0
    state[1] = s1
    state[2] = s2
    state[3] = s3
    return result


@JIT_INLINE
def uniform(state):
    """Uniform double in :math:`[0, 1)` with 53 random bits.

    Parameters
    ----------
    state : ndarray of uint64, shape (4,)
        The lane's generator state, advanced by one output.

    Returns
    -------
    float
        ``(next_u64(state) >> 11) * 2**-53``: one of the :math:`2^{53}` multiples of
        :math:`2^{-53}` in :math:`[0, 1 - 2^{-53}]`, each equally likely.
    """
    return np.float64(next_u64(state) >> np.uint64(11)) * _TWO_M53


@JIT_INLINE
def uniform_pos(state):
    """Uniform double in :math:`(0, 1]` with 53 random bits (safe for ``log``).

    Parameters
    ----------
    state : ndarray of uint64, shape (4,)
        The lane's generator state, advanced by one output.

    Returns
    -------
    float
        ``((next_u64(state) >> 11) + 1) * 2**-53``: one of the multiples of :math:`2^{-53}` in
        :math:`[2^{-53}, 1]`, each equally likely.
    """
    return (np.float64(next_u64(state) >> np.uint64(11)) + 1.0) * _TWO_M53


@JIT_INLINE
def exponential(state):
    r"""Standard exponential variate (rate 1) by inversion.

    Parameters
    ----------
    state : ndarray of uint64, shape (4,)
        The lane's generator state, advanced by one output.

    Returns
    -------
    float
        :math:`-\log U` with :math:`U` from :func:`uniform_pos`; in :math:`[0, 53 \ln 2]`.
        Divide by a rate to get a waiting time.
    """
    return -math.log(uniform_pos(state))


# --------------------------------------------------------------------------------------------
# log k! in Stirling form (Poisson and binomial acceptance tests)
# --------------------------------------------------------------------------------------------
@JIT_INLINE
def _stirling_tail(k):
    r"""Stirling-series tail :math:`f_c(k) = \log k! - [(k + 1/2) \log(k + 1) - (k + 1) +
    \log(2\pi)/2]`.

    Parameters
    ----------
    k : int or float
        A non-negative integer value.

    Returns
    -------
    float
        Tabulated for ``k < 10``, otherwise the Stirling series in :math:`x = k + 1` to six
        terms, :math:`1/(12x) - 1/(360x^3) + 1/(1260x^5) - 1/(1680x^7) + 1/(1188x^9) -
        691/(360360x^{11})`, whose truncation error is below the next term,
        :math:`1/(156x^{13}) < 2 \times 10^{-16}` (Hörmann's three terms would leave
        :math:`3 \times 10^{-11}` at ``k = 10``).
    """
    if k < 10:
        return _FC_TABLE[int(k)]
    x = k + 1.0
    r2 = 1.0 / (x * x)
    return (1.0 / 12.0 - r2 * (1.0 / 360.0 - r2 * (1.0 / 1260.0 - r2 * (
        1.0 / 1680.0 - r2 * (1.0 / 1188.0 - r2 * (691.0 / 360360.0)))))) / x


# --------------------------------------------------------------------------------------------
# Poisson
# --------------------------------------------------------------------------------------------
@JIT
def _poisson_inversion(state, mean):
    """Poisson variate by sequential-search inversion, for ``0 < mean < 10``.

    Parameters
    ----------
    state : ndarray of uint64, shape (4,)
        The lane's generator state (one uniform per variate, barring restarts).
    mean : float
        The mean, in ``(0, 10)`` (``exp(-mean)`` must not underflow).

    Returns
    -------
    int64
        The smallest ``k`` with ``U < P(X <= k)``.
    """
    p0 = math.exp(-mean)
    while True:
        u = uniform(state)
        k = 0
        p = p0
        while u >= p and k <= INVERSION_MAX_K:
            u -= p
            k += 1
            p *= mean / k
        if k <= INVERSION_MAX_K:
            return k


@JIT
def _poisson_ptrs(state, mean):
    """Poisson variate by Hörmann's PTRS transformed rejection, for ``mean >= 10``.

    Parameters
    ----------
    state : ndarray of uint64, shape (4,)
        The lane's generator state (two uniforms per trial; 2.25 to 2.7 per variate).
    mean : float
        The mean, at least 10 (the hat's constants are fitted for that range).

    Returns
    -------
    int64
        The Poisson variate.
    """
    slam = math.sqrt(mean)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    log_alpha = math.log(1.1239 + 1.1328 / (b - 3.4))
    vr = 0.9277 - 3.6224 / (b - 2.0)
    while True:
        u = uniform(state) - 0.5
        v = uniform(state)
        us = 0.5 - abs(u)
        # Float floor: near us = 0 the argument is huge and must not be cast to int64 unchecked.
        kf = np.floor((2.0 * a / us + b) * u + mean + 0.43)
        if us >= 0.07 and v <= vr:  # squeeze: inside the box the hat is below the target
            return np.int64(kf)
        if kf < 0.0 or (us < 0.013 and v > us):
            continue
        # log(0) = -inf accepts, the limit of the test as v -> 0.
        if math.log(v) + log_alpha - math.log(a / (us * us) + b) <= _poisson_log_weight(kf, mean):
            return np.int64(kf)


@JIT_INLINE
def _poisson_log_weight(k, mean):
    r""":math:`-\mu + k \log \mu - \log k!`, the log of the Poisson probability of ``k``.

    Parameters
    ----------
    k : float
        A non-negative integer value (as a float; it may exceed the int64 range).
    mean : float
        :math:`\mu > 0`.

    Returns
    -------
    float
        With :math:`\log k!` in Stirling form and :math:`d = k + 1 - \mu`,
        :math:`d + k\,\mathrm{log1p}(-d / (k + 1)) - \tfrac12 \log(2\pi (k + 1)) - f_c(k)`:
        the terms of size :math:`\mu \log \mu` cancel analytically, so the rounding error
        stays near :math:`(|d| + \log \mu)\,\varepsilon` instead of the
        :math:`\mu \log \mu\,\varepsilon` of ``-mu + k log(mu) - lgamma(k + 1)`` (about 4 at
        :math:`\mu = 10^{15}`, enough to change the accepted distribution).
    """
    d = (k + 1.0) - mean  # one rounding (exact by Sterbenz for mean/2 <= k + 1 <= 2 mean)
    return d + k * math.log1p(-d / (k + 1.0)) - 0.5 * math.log(_TWO_PI * (k + 1.0)) \
        - _stirling_tail(k)


@JIT
def poisson(state, mean):
    r"""Poisson variate with the given mean (exact; inversion below 10, PTRS above).

    Parameters
    ----------
    state : ndarray of uint64, shape (4,)
        The lane's generator state, advanced in place.
    mean : float
        The mean :math:`\mu`. ``mean <= 0`` gives 0 without drawing.

    Returns
    -------
    int64
        A draw from Poisson(:math:`\mu`): by sequential-search inversion for :math:`\mu < 10`,
        by Hörmann's PTRS transformed rejection for :math:`\mu \ge 10`. ``-1`` (nothing drawn)
        if ``mean`` is NaN, infinite or above :data:`POISSON_MEAN_MAX`.
    """
    if mean <= 0.0:
        return np.int64(0)
    if not mean <= POISSON_MEAN_MAX:
        return np.int64(-1)
    if mean < 10.0:
        return np.int64(_poisson_inversion(state, mean))
    return _poisson_ptrs(state, mean)


# --------------------------------------------------------------------------------------------
# Binomial
# --------------------------------------------------------------------------------------------
@JIT
def _binomial_inversion(state, n, p):
    """Binomial variate by sequential-search inversion, for ``p <= 0.5`` and ``n p < 10``.

    Parameters
    ----------
    state : ndarray of uint64, shape (4,)
        The lane's generator state (one uniform per variate, barring restarts).
    n : int
        Number of trials, positive.
    p : float
        Success probability in ``(0, 0.5]``, with ``n * p < 10`` (so ``(1 - p)**n`` does not
        underflow).

    Returns
    -------
    int64
        The smallest ``k`` with ``U < P(X <= k)``.
    """
    s = p / (1.0 - p)
    a = (n + 1) * s
    f0 = math.exp(n * math.log1p(-p))
    kmax = min(n, INVERSION_MAX_K)
    while True:
        u = uniform(state)
        k = 0
        f = f0
        while u >= f and k <= kmax:
            u -= f
            k += 1
            f *= a / k - s  # f(k) / f(k-1) = (n - k + 1) p / (k q)
        if k <= kmax:
            return k


@JIT
def _binomial_btrd(state, n, p):
    r"""Binomial variate by Hörmann's BTRD transformed rejection, for ``p <= 0.5``, ``n p >= 10``.

    Parameters
    ----------
    state : ndarray of uint64, shape (4,)
        The lane's generator state (1 or 2 uniforms per trial; 1.4 to 2.4 per variate).
    n : int
        Number of trials.
    p : float
        Success probability in ``(0, 0.5]`` with ``n * p >= 10``.

    Returns
    -------
    int64
        The binomial variate.

    Notes
    -----
    Steps 0-3.4 of Hörmann (1993b). Step 1 accepts inside the box ``|U| <= 0.43``,
    ``V <= v_r`` using a single uniform; step 2 generates the rest of the unit square, reusing
    that uniform. The acceptance test compares ``V`` (scaled by the hat) with
    ``f(k) / f(m)``, ``m`` the mode: by the recursion ``f(i) / f(i-1) = (n+1) r / i - r``
    (``r = p / q``) for ``|k - m| <= 15``, otherwise by its logarithm in Stirling form
    (:func:`_binomial_log_ratio`), after a squeeze (:func:`_btrd_squeeze`) where that is valid.
    Two deviations from the paper, neither changing the output distribution except by
    removing errors: the squeeze is skipped for ``|k - m| > m / 2`` (there Hörmann's bracket
    can fail), and the final log ratio is rearranged to lose a few :math:`|k - m|\,\varepsilon`
    instead of :math:`n \varepsilon`.
    """
    q = 1.0 - p
    m = np.int64(math.floor((n + 1) * p))
    r = p / q
    nr = (n + 1) * r
    npq = n * p * q
    spq = math.sqrt(npq)
    b = 1.15 + 2.53 * spq
    a = -0.0873 + 0.0248 * b + 0.01 * p
    c = n * p + 0.5
    alpha = (2.83 + 5.1 / b) * spq
    vr = 0.92 - 4.2 / b
    urvr = 0.86 * vr
    while True:
        # Step 1: the box, one uniform.
        v = uniform(state)
        if v <= urvr:
            u = v / vr - 0.43
            return np.int64(np.floor((2.0 * a / (0.5 - abs(u)) + b) * u + c))
        # Step 2: the rest of the unit square.
        if v >= vr:
            u = uniform(state) - 0.5
        else:
            u = v / vr - 0.93
            u = (-0.5 if u < 0.0 else 0.5) - u
            v = uniform(state) * vr
        # Step 3.0
        us = 0.5 - abs(u)
        kf = np.floor((2.0 * a / us + b) * u + c)
        if kf < 0.0 or kf > n:
            continue
        k = np.int64(kf)
        v = v * alpha / (a / (us * us) + b)
        km = abs(k - m)
        if km <= 15:
            # Step 3.1: f(k) / f(m) by recursion.
            f = 1.0
            if m < k:
                for i in range(m + 1, k + 1):
                    f *= nr / i - r
            elif m > k:
                for i in range(k + 1, m + 1):
                    v *= nr / i - r
            if v <= f:
                return k
            continue
        # Step 3.2: squeeze on log(f(k) / f(m)), only where its bracket holds (see
        # _btrd_squeeze; far in the left tail it does not, and the exact test decides).
        v = math.log(v)
        if 2 * km <= m:
            t, rho = _btrd_squeeze(km, npq)
            if v < t - rho:
                return k
            if v > t + rho:
                continue
        # Steps 3.3-3.4: the exact log ratio, Stirling form.
        if v <= _binomial_log_ratio(n, m, k, r):
            return k


@JIT_INLINE
def _btrd_squeeze(km, npq):
    r"""Bracket ``(t, rho)`` of BTRD's step 3.2: :math:`|\log(f(k)/f(m)) - t| \le \rho`.

    The bracket is Hörmann's (1993b), but it does not hold everywhere: far in the left tail the
    log ratio falls below :math:`t - \rho` (e.g. ``n = 1000, p = 0.05``, ``k <= 1`` for the mode
    ``m = 50``, a tail of probability 3e-21), where the squeeze would accept too often. A scan
    of every ``k`` for 3000 random ``(n, p)`` with :math:`10 \le n p \le 3000`,
    :math:`p \le 0.5`, :math:`n \le 3 \times 10^6` found violations only for
    :math:`|k - m| \ge 0.85\,m`; :func:`_binomial_btrd` therefore uses the squeeze only for
    :math:`|k - m| \le m / 2` (checked in the tests) and decides every other ``k`` by the
    exact log ratio.

    Parameters
    ----------
    km : int
        :math:`|k - m|`, ``m`` the mode.
    npq : float
        :math:`n p q`.

    Returns
    -------
    t : float
        :math:`-|k - m|^2 / (2 n p q)`, the normal approximation of the log ratio.
    rho : float
        :math:`(|k-m| / npq)\,(((|k-m|/3 + 0.625)\,|k-m| + 1/6) / npq + 0.5)`.
    """
    kmf = np.float64(km)
    rho = (kmf / npq) * (((kmf / 3.0 + 0.625) * kmf + 1.0 / 6.0) / npq + 0.5)
    t = -kmf * kmf / (2.0 * npq)
    return t, rho


@JIT_INLINE
def _binomial_log_ratio(n, m, k, r):
    r""":math:`\log(f(k) / f(m))` for the Binomial(``n``, ``p``) probabilities ``f``.

    Parameters
    ----------
    n : int
        Number of trials.
    m, k : int
        Two values in ``[0, n]``.
    r : float
        :math:`p / (1 - p)`.

    Returns
    -------
    float
        :math:`\log m! + \log(n-m)! - \log k! - \log(n-k)! + d \log r` (:math:`d = k - m`),
        each :math:`\log j!` in Stirling form
        :math:`(j + 1/2)\log(j+1) - (j+1) + \log(2\pi)/2 + f_c(j)`, rearranged so that the
        large terms cancel analytically:

        .. math::

            (m + \tfrac12)\,\mathrm{log1p}\!\left(\frac{-d}{k+1}\right)
            + (n - m + \tfrac12)\,\mathrm{log1p}\!\left(\frac{d}{n-k+1}\right)
            + d \log\frac{r\,(n-k+1)}{k+1}
            + f_c(m) + f_c(n-m) - f_c(k) - f_c(n-k).

        Its rounding error is a few :math:`|d|\,\varepsilon`. Hörmann's (1993b) step 3.4 writes
        the same quantity with ``log`` of ratios near 1 multiplied by ``n + 1`` and ``m + 1/2``,
        which loses about :math:`n \varepsilon` (1e-7 at :math:`n = 10^9`).
    """
    d = k - m
    return ((m + 0.5) * math.log1p(-d / (k + 1.0))
            + (n - m + 0.5) * math.log1p(d / (n - k + 1.0))
            + d * math.log(r * (n - k + 1.0) / (k + 1.0))
            + _stirling_tail(m) + _stirling_tail(n - m) - _stirling_tail(k) - _stirling_tail(n - k))


@JIT
def _binomial_half(state, n, p):
    """Binomial variate for ``n >= 1`` and ``0 < p <= 0.5``: inversion or BTRD by ``n p``."""
    if n * p < 10.0:
        return np.int64(_binomial_inversion(state, n, p))
    return _binomial_btrd(state, n, p)


@JIT
def binomial(state, n, p):
    r"""Binomial variate: successes in ``n`` independent trials of probability ``p`` (exact).

    Parameters
    ----------
    state : ndarray of uint64, shape (4,)
        The lane's generator state, advanced in place.
    n : int
        Number of trials. ``n == 0`` gives 0 without drawing.
    p : float
        Success probability. ``p <= 0`` gives 0 and ``p >= 1`` gives ``n``, without drawing.

    Returns
    -------
    int64
        A draw from Binomial(``n``, ``p``). For ``p > 0.5`` it is ``n`` minus a draw from
        Binomial(``n``, ``1 - p``). With :math:`p' = \min(p, 1 - p)`: sequential-search
        inversion for :math:`n p' < 10`, Hörmann's BTRD for :math:`n p' \ge 10`. ``-1``
        (nothing drawn) if ``n < 0`` or ``p`` is NaN.
    """
    if n < 0 or p != p:
        return np.int64(-1)
    if n == 0 or p <= 0.0:
        return np.int64(0)
    if p >= 1.0:
        return np.int64(n)
    if p > 0.5:
        return np.int64(n) - _binomial_half(state, n, 1.0 - p)  # 1 - p is exact here
    return _binomial_half(state, n, p)


# --------------------------------------------------------------------------------------------
# Seeding
# --------------------------------------------------------------------------------------------
def seed_states(seed: int, keys: np.ndarray) -> np.ndarray:
    """Per-lane xoshiro256** states keyed by ``(seed, key)``.

    Parameters
    ----------
    seed : int
        Non-negative integer: the simulation's seed.
    keys : array_like of int, shape (n, k)
        One row per lane, non-negative integers identifying the lane (e.g. ``(patient,
        replicate)``); rows should be distinct, or lanes share a stream.

    Returns
    -------
    ndarray of uint64, shape (n, 4)
        Row ``i`` is ``np.random.SeedSequence(seed, spawn_key=tuple(keys[i]))
        .generate_state(4, np.uint64)``. Depends only on ``seed`` and ``keys[i]``, never on
        ``n``, the other rows or the order of the rows. An all-zero row (probability
        :math:`2^{-256}`; it would make the generator emit zeros forever) is replaced by
        :data:`ZERO_STATE_REPLACEMENT`.

    Raises
    ------
    TypeError
        If ``seed`` is not an integer.
    ValueError
        If ``keys`` is not two-dimensional or holds non-integers, or ``seed`` or a key is
        negative.

    Notes
    -----
    Plain Python (SeedSequence hashing, a few microseconds per lane); call it once per run,
    outside the kernels.
    """
    seed = operator.index(seed)
    keys = np.asarray(keys)
    if keys.ndim != 2:
        raise ValueError(f"keys: expected a 2-D integer array (n_lanes, k), got shape "
                         f"{keys.shape}")
    if keys.size and not np.issubdtype(keys.dtype, np.integer):
        raise ValueError(f"keys: expected integers, got dtype {keys.dtype}")
    states = np.empty((keys.shape[0], 4), dtype=np.uint64)
    for i, row in enumerate(keys.tolist()):
        ss = np.random.SeedSequence(seed, spawn_key=tuple(row))
        states[i] = ss.generate_state(4, np.uint64)
    return _replace_zero_states(states)


def _replace_zero_states(states: np.ndarray) -> np.ndarray:
    """Replace all-zero rows of a ``(n, 4)`` state array by :data:`ZERO_STATE_REPLACEMENT`.

    Parameters
    ----------
    states : ndarray of uint64, shape (n, 4)
        Modified in place.

    Returns
    -------
    ndarray of uint64, shape (n, 4)
        ``states``.
    """
    zero = ~states.any(axis=1)
    states[zero] = ZERO_STATE_REPLACEMENT
    return states


__all__ = ["INVERSION_MAX_K", "POISSON_MEAN_MAX", "ZERO_STATE_REPLACEMENT", "binomial",
           "exponential", "next_u64", "poisson", "seed_states", "uniform", "uniform_pos"]
