"""Speed and accuracy of the batched Numba ODE engine against scipy, on the SLE/MSC model.

Problem
-------
The default model (``sle_msc``) over two years (``t_eval = 0, 1, ..., 730`` d, daily output),
each trajectory starting from its own diseased equilibrium (``steady_states.diseased_state``)
with one MSC dose of 1e6 cells/kg at day 0 (``+1.0`` on state 0). Parameters are drawn
uniformly (fixed seed) within +-20 % of the defaults, clipped to ``PARAMETERS.bounds()``; draws
without a diseased state are skipped. A no-dose variant (the patient stays at equilibrium) is
timed too. Tolerances everywhere: ``rtol=1e-6, atol=1e-8``.

What it measures
----------------
1. **Compile**: wall time of the first ``solve`` call in the process; Numba either loads the
   cached machine code or compiles (which one is printed). Nothing below includes it. For a cold
   compile, point Numba at an empty cache: ``NUMBA_CACHE_DIR=$(mktemp -d) python ...``.
2. **Throughput**: trajectories per second of ``solve(..., threads=1)`` on a batch of P, best of
   a few repeats (``time.perf_counter``); with all Numba threads as extra information. Every
   call writes into one output array (``solve(out=...)``), as the sweep does batch after batch;
   the rate with a fresh output array per call (its pages mapped and zeroed by the OS on first
   touch) is printed too.
3. **Baseline**, in the same run: ``scipy.integrate.solve_ivp(rhs_py, method="LSODA")`` on the
   *same* compiled right-hand side, same tolerances, one thread, one trajectory per call over a
   subset spread across the engine's cost distribution. The ratio compares the two on exactly
   these trajectories: the engine integrates them batched, as in a sweep (the subset repeated
   to the batch size, shuffled), since batching is how it is fast (SIMD lanes). The dose at
   t = 0 is added to the initial state (equivalent, since it acts at t0).
   If ``numbalsoda`` is installed, its LSODA is timed on the batch too (optional).
4. **Accuracy**: every engine method (dopri5, bs3, rodas3, rodas4) and the baselines against
   scipy Radau at ``rtol=1e-10, atol=1e-12`` on a few trajectories, as the largest error over
   all save times and states in tolerance units, ``max |y - y_ref| / (atol + rtol |y_ref|)``
   (1 = an error as large as the requested tolerance), with RHS evaluations and steps per
   trajectory. This table is what the default method (dopri5) rests on.

How to read the ratio
---------------------
``engine/LSODA = (engine traj/s on 1 thread) / (LSODA traj/s on 1 thread)``: the speed-up per
core of integrating one trajectory, before any parallelism (multiply by the thread scaling for
the whole-machine gain). Both sides call the same compiled RHS, so the ratio factors into
``(LSODA RHS calls / engine RHS calls) x (LSODA time per RHS call / engine time per RHS call)``:
method efficiency times interpreter overhead per call; the "where the time goes" lines print
both factors. A ratio is only meaningful next to the accuracy table: a method that is faster but
misses the tolerance has not won.

It reports numbers and asserts nothing about speed. Exit status 1 only if a solver fails on
a trajectory (a real breakage), 0 otherwise.

Usage: ``python benchmarks/bench_engine.py [--quick] [--json OUT]``
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
import time
from pathlib import Path

import _slowdown
import numba
import numpy as np
import scipy
from scipy.integrate import solve_ivp

from immunosim.engines.ode import _lanes, _rhs
from immunosim.engines.ode._rhs import LANES
from immunosim.engines.ode.solver import DEFAULT_METHOD, EventTable, solve
from immunosim.model import sle_msc
from immunosim.model.steady_states import diseased_state

RTOL, ATOL = 1e-6, 1e-8
REF_RTOL, REF_ATOL = 1e-10, 1e-12
METHODS = ("dopri5", "bs3", "rodas3", "rodas4")
DOSE = 1.0  # 1e6 cells/kg on state 0 (MSC)
SEED = 20240611
TIERS = {
    #        engine batch, LSODA subset, Radau references, repeats
    "quick": {"P": 200, "n_lsoda": 10, "n_ref": 3, "repeats": 10},
    "full": {"P": 2000, "n_lsoda": 30, "n_ref": 10, "repeats": 10},
}


class BenchError(RuntimeError):
    """A solver failed: the benchmark is broken, not merely slow."""


# --------------------------------------------------------------------------------------------
# Problem
# --------------------------------------------------------------------------------------------


def draw_batch(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """``n`` parameter vectors within +-20 % of the defaults that have a diseased state.

    Returns ``(y0 (n, 13), params (n, n_params), number of draws)``.
    """
    rng = np.random.default_rng(seed)
    defaults = sle_msc.PARAMETERS.defaults()
    bounds = sle_msc.PARAMETERS.bounds()
    ys, ps, drawn = [], [], 0
    while len(ps) < n:
        if drawn >= 20 * n + 100:
            raise BenchError(f"only {len(ps)} of {drawn} parameter draws have a diseased state")
        p = np.clip(defaults * rng.uniform(0.8, 1.2, defaults.size), bounds[:, 0], bounds[:, 1])
        drawn += 1
        y = diseased_state(p)
        if y is not None:
            ys.append(y)
            ps.append(p)
    return np.array(ys), np.array(ps), drawn


def dose_events(n: int, dose: bool) -> EventTable:
    return EventTable.from_lists([[(0.0, 0, 0, DOSE)] if dose else [] for _ in range(n)])


def dosed_y0(y0: np.ndarray, dose: bool) -> np.ndarray:
    """Initial states with the t = 0 dose applied (what the baselines integrate from)."""
    y = np.array(y0, dtype=np.float64, copy=True)
    if dose:
        y[..., 0] += DOSE
    return y


# --------------------------------------------------------------------------------------------
# Solvers
# --------------------------------------------------------------------------------------------


def check(sol, what: str) -> None:
    if not sol.success.all():
        raise BenchError(f"{what}: {sol.summary()}")


def time_engine(y0, params, t_eval, events, method, threads, repeats, reuse=True):
    """Best wall time over ``repeats`` calls, and the last solution.

    With ``reuse`` every call writes into one output array, as a sweep does (``solve(out=)``);
    otherwise each call allocates a fresh one, whose pages the OS maps and zeroes on first touch.
    """
    best, sol = np.inf, None
    out = np.empty((y0.shape[0], t_eval.size, y0.shape[1])) if reuse else None
    for _ in range(repeats):
        t = time.perf_counter()
        sol = solve(y0, params, t_eval, events=events, method=method, rtol=RTOL, atol=ATOL,
                    threads=threads, out=out)
        _slowdown.pad(t)  # IMMUNOSIM_BENCH_SLOWDOWN: the CI gate's failure demonstration
        best = min(best, time.perf_counter() - t)
    check(sol, f"engine {method} (threads={threads})")
    return best, sol


def scipy_one(y0, p, t_eval, method="LSODA", rtol=RTOL, atol=ATOL):
    r = solve_ivp(sle_msc.rhs_py, (t_eval[0], t_eval[-1]), y0, method=method, t_eval=t_eval,
                  rtol=rtol, atol=atol, args=(p,))
    if r.status != 0 or r.y.shape[1] != t_eval.size:
        raise BenchError(f"scipy {method}: {r.message}")
    return r


def time_scipy(y0s, params, t_eval, repeats):
    """LSODA one trajectory per call: best total over ``repeats`` passes, solutions, nfev."""
    scipy_one(y0s[0], params[0], t_eval)  # warm-up (imports, first-call caches)
    best, sols = np.inf, []
    for _ in range(repeats):
        sols = []
        t = time.perf_counter()
        for y0, p in zip(y0s, params):
            sols.append(scipy_one(y0, p, t_eval))
        best = min(best, time.perf_counter() - t)
    ys = np.stack([r.y.T for r in sols])
    return best, ys, np.array([r.nfev for r in sols]), np.array([r.njev for r in sols])


@numba.njit(cache=False)
def _rhs_lanes_loop(t, y, p, dydt, n):
    """``n`` lane-layout RHS calls; each feeds a tiny Euler step back into ``y`` so that no
    call can be hoisted out of the loop (16 FMAs against the whole RHS)."""
    for _ in range(n):
        _rhs.rhs_lanes(0, t, y, p, dydt)
        for i in range(y.size):
            y[i] += 1e-12 * dydt[i]
    return y[0]


def rhs_floor_us(y0s: np.ndarray, params: np.ndarray, n: int = 20_000, repeats: int = 5
                 ) -> float:
    """Microseconds per trajectory-RHS evaluation inside the engine's lanes: ``LANES`` states
    (``y0s[:LANES]``) in the lane layout, the compiled ``rhs_lanes`` called ``n`` times, best of
    ``repeats``. Times the engine's RHS calls per trajectory, this is the floor the engine's
    time per trajectory is compared with (everything above it is step control, the Runge-Kutta
    stages' arithmetic, events and output)."""
    y = np.ascontiguousarray(y0s[:LANES].T).ravel()  # element i of lane l at i * LANES + l
    pl = np.ascontiguousarray(params[:LANES].T).ravel()
    t, dydt = np.zeros(LANES), np.empty_like(y)
    _rhs_lanes_loop(t, y.copy(), pl, dydt, 10)  # compile
    best = np.inf
    for _ in range(repeats):
        yy = y.copy()
        t0 = time.perf_counter()
        _rhs_lanes_loop(t, yy, pl, dydt, n)
        best = min(best, time.perf_counter() - t0)
    return 1e6 * best / (n * LANES)


def rhs_call_cost(y0, p, n=20_000) -> float:
    """Seconds per call of ``rhs_py`` from Python (the floor of any scipy-driven solver)."""
    sle_msc.rhs_py(0.0, y0, p)
    t = time.perf_counter()
    for _ in range(n):
        sle_msc.rhs_py(0.0, y0, p)
    return (time.perf_counter() - t) / n


def numbalsoda_bench(y0s, params, t_eval, repeats):
    """numbalsoda's LSODA through a ``cfunc`` around the model's compiled RHS, or None."""
    try:
        import numbalsoda
    except ImportError:
        return None
    n, n_par = sle_msc.N_STATES, sle_msc.N_PARAMS
    rhs = sle_msc.rhs
    t = time.perf_counter()

    @numba.cfunc(numbalsoda.lsoda_sig)
    def rhs_c(t, u, du, p):  # pragma: no cover - compiled
        rhs(t, numba.carray(u, (n,)), numba.carray(p, (n_par,)), numba.carray(du, (n,)))

    addr = rhs_c.address
    compile_s = time.perf_counter() - t
    y0s = np.ascontiguousarray(y0s)
    params = np.ascontiguousarray(params)
    best, ys, failed = np.inf, None, 0
    for _ in range(repeats):
        out, failed = np.empty((y0s.shape[0], t_eval.size, n)), 0
        t = time.perf_counter()
        for i in range(y0s.shape[0]):
            out[i], ok = numbalsoda.lsoda(addr, y0s[i], t_eval, data=params[i], rtol=RTOL,
                                          atol=ATOL, mxstep=100_000)
            failed += not ok
        best = min(best, time.perf_counter() - t)
        ys = out
    try:
        version = importlib.metadata.version("numbalsoda")
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    return {"seconds": best, "y": ys, "failed": failed, "compile_s": compile_s,
            "version": version}


def tol_error(y, y_ref) -> np.ndarray:
    """Per-trajectory max error in tolerance units; ``y``, ``y_ref`` shape (K, n_save, n)."""
    e = np.abs(y - y_ref) / (ATOL + RTOL * np.abs(y_ref))
    return e.reshape(e.shape[0], -1).max(axis=1)


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def fmt_rate(x) -> str:
    return "-" if x is None else f"{x:,.0f}"


def spread(nfev: np.ndarray, k: int) -> np.ndarray:
    """Indices of ``k`` trajectories at the mid-ranks of ``k`` equal cost strata.

    Patients differ in cost (RHS calls per trajectory range over about 1.5x: see the median and
    max in the accuracy table), so the small LSODA and reference subsets are a systematic sample
    of the engine's cost distribution rather than the first ``k`` draws, whose mix of cheap and
    costly patients would be left to chance.
    """
    order = np.argsort(nfev, kind="stable")
    return np.sort(order[((np.arange(k) + 0.5) * nfev.size / k).astype(np.int64)])


def run(tier: str) -> dict:
    cfg = TIERS[tier]
    P, n_lsoda, n_ref, repeats = cfg["P"], cfg["n_lsoda"], cfg["n_ref"], cfg["repeats"]
    n_threads = numba.config.NUMBA_NUM_THREADS
    t_eval = np.arange(0.0, 731.0)
    res: dict = {
        "tier": tier, "P": P, "n_lsoda": n_lsoda, "n_ref": n_ref, "repeats": repeats,
        "rtol": RTOL, "atol": ATOL, "ref": {"method": "Radau", "rtol": REF_RTOL,
                                            "atol": REF_ATOL},
        "horizon_days": float(t_eval[-1]), "seed": SEED, "default_method": DEFAULT_METHOD,
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "scipy": scipy.__version__, "numba": numba.__version__},
        "cpu_count": os.cpu_count(), "numba_threads": n_threads,
        "benchmark": "engine", "slowdown": _slowdown.factor(),
    }
    print(f"engine benchmark ({tier} tier): sle_msc, {t_eval[-1]:.0f} d, daily output, "
          f"rtol={RTOL:g}, atol={ATOL:g}")
    print(f"  python {res['versions']['python']}, numpy {np.__version__}, scipy "
          f"{scipy.__version__}, numba {numba.__version__}, {os.cpu_count()} CPUs, "
          f"{n_threads} Numba threads")

    # 1. Compile: the very first solve() in the process, before anything else has called the
    # model's RHS (diseased_state does), on a one-day problem with the benchmark's types.
    t = time.perf_counter()
    first = solve(np.ones((LANES, sle_msc.N_STATES)), sle_msc.PARAMETERS.defaults(), t_eval[:2],
                  events=dose_events(LANES, True), rtol=RTOL, atol=ATOL, threads=1)
    compile_s = time.perf_counter() - t
    check(first, "engine first call")
    st = _lanes.solve_batch_lanes.stats
    source = ("compiled" if sum(st.cache_misses.values()) or not sum(st.cache_hits.values())
              else "loaded from Numba cache")
    res["compile"] = {"first_call_s": compile_s, "source": source}
    print(f"\ncompile: first solve() call {compile_s:.2f} s ({source}); excluded below")

    # Problem batch.
    t = time.perf_counter()
    y0, params, drawn = draw_batch(P, SEED)
    res["setup"] = {"seconds": time.perf_counter() - t, "draws": drawn}
    print(f"batch: {P} trajectories from {drawn} draws (+-20 % of defaults, "
          f"{drawn - P} without a diseased state), set-up {res['setup']['seconds']:.1f} s")

    # 2. Engine throughput; its cost per trajectory picks the LSODA and reference subsets.
    ev_dose = dose_events(P, True)
    s_dose, sol_dose = time_engine(y0, params, t_eval, ev_dose, DEFAULT_METHOD, 1, repeats)
    sub = spread(sol_dose.nfev, n_lsoda)
    ref_idx = spread(sol_dose.nfev, n_ref)
    res["lsoda_subset"], res["ref_subset"] = sub.tolist(), ref_idx.tolist()

    # 3. Baseline on the subset, dose and no-dose; the ratio is on the same trajectories.
    rows = {}
    for variant, dose in (("dose", True), ("no dose", False)):
        ev = dose_events(P, dose)
        if dose:
            s1, sol1 = s_dose, sol_dose
        else:
            s1, sol1 = time_engine(y0, params, t_eval, ev, DEFAULT_METHOD, 1, repeats)
        sN, _ = time_engine(y0, params, t_eval, ev, DEFAULT_METHOD, n_threads, repeats)
        # The engine on exactly the LSODA trajectories, but batched as in a sweep: the subset
        # repeated to the batch size in shuffled order (so a trajectory's lane neighbours are
        # the others of the subset, not copies of itself).
        tiled = np.random.default_rng(SEED).permutation(np.repeat(sub, max(1, P // n_lsoda)))
        sS, solS = time_engine(y0[tiled], params[tiled], t_eval,
                               dose_events(tiled.size, dose), DEFAULT_METHOD, 1, repeats)
        sF, _ = time_engine(y0[tiled], params[tiled], t_eval, dose_events(tiled.size, dose),
                            DEFAULT_METHOD, 1, max(3, repeats // 3), reuse=False)
        sL, _, nfevL, njevL = time_scipy(dosed_y0(y0[sub], dose), params[sub], t_eval,
                                         repeats=5)
        row = {
            "engine_1thread_traj_per_s": P / s1,
            "engine_all_threads_traj_per_s": P / sN,
            "engine_1thread_traj_per_s_lsoda_subset": tiled.size / sS,
            "engine_1thread_traj_per_s_lsoda_subset_fresh_output": tiled.size / sF,
            "lsoda_traj_per_s": n_lsoda / sL,
            "engine_nfev_mean": float(sol1.nfev.mean()),
            "engine_nfev_mean_lsoda_subset": float(solS.nfev.mean()),
            "lsoda_nfev_mean": float(nfevL.mean()),
            "lsoda_nfev_median": float(np.median(nfevL)),
            "lsoda_nfev_max": float(nfevL.max()),
            "lsoda_njev_mean": float(njevL.mean()),
        }
        row["ratio_engine_over_lsoda"] = (row["engine_1thread_traj_per_s_lsoda_subset"]
                                          / row["lsoda_traj_per_s"])
        row["ratio_fresh_output_over_lsoda"] = (
            row["engine_1thread_traj_per_s_lsoda_subset_fresh_output"] / row["lsoda_traj_per_s"])
        row["ratio_engine_batch_rate_over_lsoda"] = (row["engine_1thread_traj_per_s"]
                                                     / row["lsoda_traj_per_s"])
        rows[variant] = row
    res["throughput"] = rows

    # numbalsoda (optional), dose variant on the whole batch.
    nbl = numbalsoda_bench(dosed_y0(y0, True), params, t_eval, repeats)
    if nbl is None:
        res["numbalsoda"] = None
        nbl_msg = ("numbalsoda: not installed (pip install -e '.[numbalsoda]' builds it; needs "
                   "gfortran and a C++ compiler)")
    else:
        nbl_rate = P / nbl["seconds"]
        res["numbalsoda"] = {"version": nbl["version"], "traj_per_s": nbl_rate,
                             "failed": nbl["failed"], "cfunc_compile_s": nbl["compile_s"],
                             "ratio_engine_over_numbalsoda":
                                 rows["dose"]["engine_1thread_traj_per_s"] / nbl_rate}
        nbl_msg = (f"numbalsoda {nbl['version']} (dose, batch of {P}): {nbl_rate:,.0f} traj/s "
                   f"on 1 thread; engine/numbalsoda = "
                   f"{res['numbalsoda']['ratio_engine_over_numbalsoda']:.2f}x "
                   f"(cfunc compile {nbl['compile_s']:.2f} s)")
        if nbl["failed"]:
            nbl_msg += f"  [WARNING: {nbl['failed']} of {P} trajectories reported failure]"

    print(f"\nthroughput, trajectories per second, engine {DEFAULT_METHOD} (best of {repeats})")
    print(f"  {'':<8} {f'batch of {P}':^27} {f'{n_lsoda} of the batch (spread by cost)*':^42}")
    print(f"  {'variant':<8} {'engine 1 thr':>13} {f'engine {n_threads} thr':>13} "
          f"{'engine 1 thr':>13} {'LSODA 1 thr':>13} {'engine/LSODA':>14}")
    for variant, row in rows.items():
        print(f"  {variant:<8} {fmt_rate(row['engine_1thread_traj_per_s']):>13} "
              f"{fmt_rate(row['engine_all_threads_traj_per_s']):>13} "
              f"{fmt_rate(row['engine_1thread_traj_per_s_lsoda_subset']):>13} "
              f"{fmt_rate(row['lsoda_traj_per_s']):>13} "
              f"{row['ratio_engine_over_lsoda']:>13.1f}x")
    print(f"  * the engine runs them batched: the {n_lsoda} repeated to {tiled.size} in shuffled "
          f"order; LSODA one per call")
    print("  engine output written into one array reused by every call, as the sweep does "
          "(solve(out=...));")
    print("  with a fresh output array per call (the OS maps and zeroes its pages): "
          + ", ".join(f"{v} {fmt_rate(r['engine_1thread_traj_per_s_lsoda_subset_fresh_output'])}"
                      f" traj/s = {r['ratio_fresh_output_over_lsoda']:.1f}x"
                      for v, r in rows.items()))
    print(f"  {nbl_msg}")

    # Where the time goes (dose variant, LSODA subset): RHS calls x cost per call.
    d = rows["dose"]
    us_eng = 1e6 / d["engine_1thread_traj_per_s_lsoda_subset"]
    us_lsoda = 1e6 / d["lsoda_traj_per_s"]
    call_us = 1e6 * rhs_call_cost(dosed_y0(y0[0], True), params[0])
    nfev_ratio = d["lsoda_nfev_mean"] / d["engine_nfev_mean_lsoda_subset"]
    per_call_eng = us_eng / d["engine_nfev_mean_lsoda_subset"]
    per_call_lsoda = us_lsoda / d["lsoda_nfev_mean"]
    floor_call_us = rhs_floor_us(dosed_y0(y0, True), params)
    floor_us = floor_call_us * d["engine_nfev_mean_lsoda_subset"]
    res["where_time_goes"] = {
        "engine_us_per_traj": us_eng, "lsoda_us_per_traj": us_lsoda,
        "engine_us_per_rhs_call": per_call_eng, "lsoda_us_per_rhs_call": per_call_lsoda,
        "rhs_py_call_us": call_us, "nfev_ratio_lsoda_over_engine": nfev_ratio,
        "rhs_lanes_us_per_call": floor_call_us, "rhs_floor_us_per_traj": floor_us,
        "ratio_engine_over_rhs_floor": us_eng / floor_us,
    }
    print(f"\nwhere the time goes (dose, 1 thread, the {n_lsoda} LSODA trajectories):")
    print(f"  engine {DEFAULT_METHOD}: {us_eng:7.0f} us/traj, "
          f"{d['engine_nfev_mean_lsoda_subset']:6.0f} RHS calls/traj -> {per_call_eng:5.2f} us "
          f"per call (RHS + step arithmetic)")
    print(f"  scipy LSODA:   {us_lsoda:7.0f} us/traj, {d['lsoda_nfev_mean']:6.0f} RHS calls/traj "
          f"({d['lsoda_njev_mean']:.0f} Jacobians) -> {per_call_lsoda:5.2f} us per call")
    print(f"  bare rhs_py call from Python: {call_us:.2f} us (same compiled RHS)")
    print(f"  RHS floor: {1e3 * floor_call_us:.1f} ns per trajectory-RHS in {LANES} lanes x "
          f"{d['engine_nfev_mean_lsoda_subset']:.0f} calls = {floor_us:.0f} us/traj; the engine "
          f"takes {us_eng / floor_us:.1f}x its RHS floor")
    print(f"  engine/LSODA {d['ratio_engine_over_lsoda']:.1f}x = RHS-call ratio {nfev_ratio:.2f} "
          f"(LSODA/engine) x per-call cost ratio {d['ratio_engine_over_lsoda'] / nfev_ratio:.1f}")

    # 4. Accuracy vs Radau, and cost per method over the batch.
    t = time.perf_counter()
    ref_y0 = dosed_y0(y0[ref_idx], True)
    y_ref = np.stack([scipy_one(ref_y0[k], params[i], t_eval, "Radau", REF_RTOL, REF_ATOL).y.T
                      for k, i in enumerate(ref_idx)])
    res["reference_seconds"] = time.perf_counter() - t

    def row_of(name, y, nfev, steps, rejected, us):
        err = tol_error(y, y_ref)
        return {"method": name, "max_err": float(err.max()), "median_err": float(np.median(err)),
                "nfev_mean": None if nfev is None else float(nfev.mean()),
                "nfev_median": None if nfev is None else float(np.median(nfev)),
                "nfev_max": None if nfev is None else float(nfev.max()),
                "steps": None if steps is None else float(steps.mean()),
                "rejected": None if rejected is None else float(rejected.mean()),
                "us_per_traj": us}

    acc = []
    for method in METHODS:
        if method == DEFAULT_METHOD:
            s, sol = s_dose, sol_dose
        else:
            s, sol = time_engine(y0, params, t_eval, ev_dose, method, 1, repeats)
        acc.append(row_of(method, sol.y[ref_idx], sol.nfev, sol.naccept, sol.nreject,
                          1e6 * s / P))
    y_lsoda = np.stack([scipy_one(ref_y0[k], params[i], t_eval).y.T
                        for k, i in enumerate(ref_idx)])
    _, _, nfevL, _ = time_scipy(dosed_y0(y0[sub], True), params[sub], t_eval, repeats=1)
    acc.append(row_of("scipy LSODA", y_lsoda, nfevL, None, None, us_lsoda))
    if nbl is not None:
        acc.append(row_of("numbalsoda", nbl["y"][ref_idx], None, None, None,
                          1e6 * nbl["seconds"] / P))
    res["accuracy"] = acc

    print(f"\naccuracy and cost per trajectory (dose, 1 thread). Error: max over {n_ref} "
          f"trajectories (spread by cost) of max |y - y_ref| / (atol + rtol |y_ref|), reference "
          f"Radau rtol={REF_RTOL:g}, atol={REF_ATOL:g}. Cost: mean over the batch of {P} "
          f"(LSODA: over its {n_lsoda}).")
    print(f"  {'method':<12} {'max err':>8} {'median':>7} {'RHS mean':>9} {'median':>7} "
          f"{'max':>7} {'steps':>6} {'rejected':>8} {'us/traj':>8} {'traj/s':>7}")

    def cell(v, f):
        return "-" if v is None else format(v, f)

    for a in acc:
        mark = " *" if a["method"] == DEFAULT_METHOD else ""
        print(f"  {a['method'] + mark:<12} {a['max_err']:>8.2f} {a['median_err']:>7.2f} "
              f"{cell(a['nfev_mean'], '.0f'):>9} {cell(a['nfev_median'], '.0f'):>7} "
              f"{cell(a['nfev_max'], '.0f'):>7} {cell(a['steps'], '.0f'):>6} "
              f"{cell(a['rejected'], '.1f'):>8} {a['us_per_traj']:>8.0f} "
              f"{1e6 / a['us_per_traj']:>7,.0f}")
    print(f"  * engine default. Reference solves: {res['reference_seconds']:.1f} s.")
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="CI tier: small batch (< 60 s)")
    ap.add_argument("--json", help="write the numbers to this file")
    args = ap.parse_args(argv)
    t = time.perf_counter()
    try:
        res = run("quick" if args.quick else "full")
    except BenchError as e:
        print(f"bench_engine: FAILED: {e}", file=sys.stderr)
        return 1
    res["total_seconds"] = time.perf_counter() - t
    print(f"\ntotal {res['total_seconds']:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
