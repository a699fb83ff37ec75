"""Calibration throughput: virtual patients per second through the cloud simulation, next to the
raw engine, and likelihood evaluations per second of the reweighting.

Problem
-------
``configs/calibrate.toml`` read with ``experiments.calibrate.load_problem``: its arms (``hsct``,
``msc``), its 13 fitted parameters, its horizon (1,826 d, weekly assessments) and solver. The
cloud is the one of a calibration's first round: the proposal ``proposal_around`` the prior
centre (``make_layout``), widened by ``calibration.widen``, seed ``config.seed``.

What it measures
----------------
1. **Compile / warm-up**: the first ``simulate_cloud`` call in the process, on a 64-patient cloud
   (steady-state solver, ODE engine and outcome kernels loaded from Numba's cache or compiled),
   and the first likelihood call. Reported apart; nothing below includes them.
2. **Calibration path**: ``experiments.cloud.simulate_cloud`` as a round of ``_calibrate`` calls
   it: the Sobol draw of ``N`` patients (quick: 512, full: 8,192), the untreated steady state of
   each, then every arm through ``simulate_patients`` with the visit features the targets read.
   Rate: virtual patients per second = kept (diseased) patients x arms / wall seconds.
3. **Baseline, same run: the raw engine** (``engines.ode.solver.solve``) on the same kept
   patients and arms: the treated parameters, initial states, dosing events and weekly save grid
   that ``simulate_patients`` hands the engine, prepared outside the timed region; one ``solve``
   call per arm into one reused output array. ``solve`` rather than ``simulate_patients``: the
   latter is itself part of the calibration path (outcome classification and visit features are
   what the likelihood reads), so only the bare engine is free of calibration overhead. The
   ratio **cloud / engine** is the share of the raw engine's rate that the calibration path
   keeps (1 = no overhead). The two sides run in alternating rounds (quick: 5, full: 3), so
   both see the same load; the best round of each counts. Checked once, untimed: the engine's
   solutions read at the visits by the cloud's own ``visit_features`` equal the cloud's features
   patient by patient (the same runs); and every round gives the same cloud (same seed).
4. **Where the time goes** (one pass, after the rounds): the steady states of the ``N`` draws
   and ``simulate_patients`` per arm (engine + outcomes + features), next to the engine alone.
5. **Likelihood**: ``Likelihood.__call__`` (prior, importance weights over the cloud, target
   predictions, log-likelihood), built as a round builds it, at ``K`` points scattered around the
   start (as L-BFGS-B's finite differences and emcee's walkers call it); evaluations per second,
   best of 3 passes, BLAS on one thread as ``calibrate()`` sets it. Its cost grows with the cloud:
   the quick tier scores 512 draws, a real round 8,192-131,072.

``IMMUNOSIM_BENCH_SLOWDOWN`` (``_slowdown.py``) stretches the calibration path and the
likelihood passes; the raw engine is left alone. It reports numbers and asserts nothing about
speed; it exits 1 only if the two sides disagree on the runs or a round differs.

Usage: ``python benchmarks/bench_calibrate.py [--quick] [--threads N] [--json OUT]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import _slowdown
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "calibrate.toml"
TIERS = {
    #        cloud size, rounds (best of), likelihood points per pass
    "quick": {"n": 512, "rounds": 5, "evals": 200},
    "full": {"n": 8192, "rounds": 3, "evals": 100},
}
WARMUP_N = 64  # about 50 kept: enough for the engine's SIMD-lane driver (16 lanes)


class BenchError(RuntimeError):
    """The two sides do not simulate the same runs, or a round changed: broken, not slow."""


@dataclass(frozen=True)
class Round0:
    """What a calibration's first round simulates: config, arms, fitted names, proposal."""

    problem: object  # experiments.calibrate.Problem
    layout: object  # experiments.calibrate.Layout
    theta: np.ndarray  # the prior-centre start, shape (layout.size,)
    trm: float
    mean: np.ndarray  # proposal in log parameter space, shape (d,)
    cov: np.ndarray  # shape (d, d)

    @classmethod
    def load(cls, path: Path = CONFIG) -> Round0:
        from immunosim.experiments.calibrate import (
            _config_trm,
            load_problem,
            make_layout,
            proposal_around,
        )

        p = load_problem(path)
        trm = _config_trm(p.config)
        lay, theta = make_layout(p, trm)
        s = p.settings
        mean, cov = proposal_around(lay, theta, s.widen, s.min_proposal_sd)
        return cls(p, lay, theta, trm, mean, cov)


def time_cloud(r0: Round0, n: int, threads: int | None):
    """Wall seconds of ``simulate_cloud`` as round 0 calls it, and the cloud (measured side)."""
    from immunosim.experiments.cloud import simulate_cloud

    p = r0.problem
    t = time.perf_counter()
    cloud = simulate_cloud(p.config, p.arms, r0.layout.names, r0.mean, r0.cov, n, p.config.seed,
                           threads=threads)
    _slowdown.pad(t)  # IMMUNOSIM_BENCH_SLOWDOWN: the CI gate's failure demonstration
    return time.perf_counter() - t, cloud


@dataclass(frozen=True)
class EngineRuns:
    """One arm's engine inputs, exactly as ``simulate_patients`` builds them."""

    arm: str
    y0: np.ndarray  # (P, n_states)
    params: np.ndarray  # (P, n_params), treated
    events: object  # EventTable
    t: np.ndarray  # (n_save,) days
    origin: float  # day of the outcomes' time origin


def engine_runs(r0: Round0, cloud) -> list[EngineRuns]:
    """The kept patients of ``cloud`` under each arm, as the engine receives them (untimed)."""
    from immunosim.experiments.patients import steady_states
    from immunosim.experiments.simulate import save_grid, treat
    from immunosim.model import sle_msc as m

    cfg = r0.problem.config
    base = m.PARAMETERS.vector(cfg.model.parameters)
    params = np.repeat(base[None, :], cloud.size, axis=0)
    params[:, [m.PARAMETERS.index[k] for k in cloud.names]] = np.exp(cloud.x)
    y0, ok = steady_states(params)
    if not ok.all():
        raise BenchError(f"{int((~ok).sum())} kept patients of the cloud have no steady state")
    t = save_grid(cfg.horizon, cfg.outcomes.assessment_every)
    scen = {s.name: s for s in cfg.build_scenarios()}
    out = []
    for arm in r0.problem.arms:
        sc = scen[arm]
        q = params.copy()
        for name, v in sc.parameters.items():  # as simulate_patients does
            q[:, m.PARAMETERS.index[name]] = v
        treated, events = treat(q, [sc.interventions] * cloud.size)
        doses = [tt for iv in sc.interventions for tt in iv.dose_times()]
        origin = (float(min(doses)) if cfg.outcomes.time_origin == "first_dose" and doses
                  else 0.0)
        out.append(EngineRuns(arm, y0, treated, events, t, origin))
    return out


def solve_runs(r: EngineRuns, solver, threads: int | None, out: np.ndarray | None = None):
    """The bare engine call on one arm's runs (``engines.ode.solver.solve``)."""
    from immunosim.engines.ode.solver import solve

    return solve(r.y0, r.params, r.t, events=r.events, t0=0.0, method=solver.method,
                 rtol=solver.rtol, atol=solver.atol, max_steps=solver.max_steps, threads=threads,
                 out=None if out is None else out[:r.y0.shape[0]])


def time_engine(runs: list[EngineRuns], solver, threads: int | None, out: np.ndarray) -> float:
    """Wall seconds of the raw engine over every arm (baseline side, never slowed)."""
    t = time.perf_counter()
    for r in runs:
        solve_runs(r, solver, threads, out)
    return time.perf_counter() - t


def check_same_runs(r0: Round0, cloud, runs: list[EngineRuns], threads: int | None) -> None:
    """The engine's runs are the cloud's: per arm, its solution read at the visits (the cloud's
    own ``visit_features``) equals the cloud's features, patient by patient (untimed)."""
    from immunosim.experiments.cloud import visit_features

    cfg = r0.problem.config
    features = visit_features(np.asarray(cfg.outcomes.landmarks, dtype=float))
    for r in runs:
        sol = solve_runs(r, cfg.solver.options(), threads)
        ok = sol.status == 0
        got = features(r.t, sol.y, r.params, ok, np.full(ok.size, r.origin))
        got["ok"] = ok
        want = cloud.features[r.arm]
        for k, v in got.items():
            if k not in want:  # computed by visit_features, not kept by the cloud
                continue
            if not np.array_equal(v, want[k], equal_nan=True):
                raise BenchError(f"arm {r.arm}: the raw engine's runs differ from the cloud's "
                                 f"({k} differs for {int(np.sum(v != want[k]))} of {ok.size} "
                                 "patients)")


def same_cloud(a, b) -> bool:
    """Whether two clouds hold the same patients and the same features."""
    if not (np.array_equal(a.x, b.x) and np.array_equal(a.log_q, b.log_q)):
        return False
    return all(np.array_equal(a.features[arm][k], b.features[arm][k], equal_nan=True)
               for arm in a.features for k in a.features[arm])


def likelihood_points(r0: Round0, k: int, seed: int = 0) -> np.ndarray:
    """``k`` points of theta around the start (1 % of each bound's width), inside the bounds."""
    lay = r0.layout
    rng = np.random.default_rng(seed)
    pts = r0.theta + 0.01 * (lay.hi - lay.lo) * rng.uniform(-1, 1, (k, lay.size))
    return np.clip(pts, lay.lo + 1e-6, lay.hi - 1e-6)


def time_likelihood(like, points: np.ndarray, passes: int = 3) -> tuple[float, np.ndarray]:
    """Best wall seconds of one pass of ``like(theta)`` over ``points`` (measured side), and the
    values of the last pass."""
    best, vals = np.inf, None
    for _ in range(passes):
        t = time.perf_counter()
        vals = np.array([like(th) for th in points])
        _slowdown.pad(t)  # IMMUNOSIM_BENCH_SLOWDOWN: the CI gate's failure demonstration
        best = min(best, time.perf_counter() - t)
    return best, vals


def breakdown(r0: Round0, cloud, n: int, threads: int | None) -> dict:
    """One pass of the path's parts: steady states of the ``n`` draws, simulate_patients per arm
    (not gated; the rest of a cloud's time is the Sobol draw and bookkeeping)."""
    from scipy.stats import qmc

    from immunosim.experiments.cloud import visit_features
    from immunosim.experiments.patients import simulate_patients, steady_states
    from immunosim.model import sle_msc as m

    cfg = r0.problem.config
    d = len(r0.layout.names)
    engine = qmc.Sobol(d, scramble=True, seed=np.random.default_rng([cfg.seed, 4]))
    x = qmc.MultivariateNormalQMC(r0.mean, r0.cov, engine=engine).random(n)
    base = m.PARAMETERS.vector(cfg.model.parameters)
    params = np.repeat(base[None, :], n, axis=0)
    params[:, [m.PARAMETERS.index[k] for k in r0.layout.names]] = np.exp(x)
    valid = m.PARAMETERS.in_domain(params)
    t = time.perf_counter()
    y0, ok = steady_states(np.where(valid[:, None], params, base[None, :]))
    steady = time.perf_counter() - t
    ok &= valid
    landmarks = np.asarray(cfg.outcomes.landmarks, dtype=float)
    t = time.perf_counter()
    for arm in r0.problem.arms:
        simulate_patients(cfg, arm, params[ok], y0=y0[ok], features=visit_features(landmarks),
                          threads=threads)
    patients = time.perf_counter() - t
    if int(ok.sum()) != cloud.size:
        raise BenchError(f"breakdown: {int(ok.sum())} kept patients, the cloud has {cloud.size}")
    return {"steady_states_s": steady, "simulate_patients_s": patients}


def run(tier: str, threads: int | None) -> dict:
    import numba
    import scipy
    from threadpoolctl import threadpool_limits

    from immunosim.engines.ode import _lanes
    from immunosim.experiments.calibrate import Likelihood

    cfg_t = TIERS[tier]
    n, rounds, k = cfg_t["n"], cfg_t["rounds"], cfg_t["evals"]
    t = time.perf_counter()
    r0 = Round0.load()
    load_s = time.perf_counter() - t
    p, s = r0.problem, r0.problem.settings
    cfg = p.config
    res: dict = {
        "benchmark": "calibrate", "tier": tier, "slowdown": _slowdown.factor(),
        "config": str(CONFIG.relative_to(ROOT)), "arms": p.arms, "fitted": r0.layout.names,
        "horizon_days": cfg.horizon, "assessment_every_days": cfg.outcomes.assessment_every,
        "n_drawn": n, "rounds": rounds, "likelihood_points": k, "threads": threads,
        "numba_threads": numba.config.NUMBA_NUM_THREADS, "cpu_count": os.cpu_count(),
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "scipy": scipy.__version__, "numba": numba.__version__},
        "load_average_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "load_problem_s": load_s,
    }
    print(f"calibration benchmark ({tier} tier): {res['config']}, arms {', '.join(p.arms)}, "
          f"{len(r0.layout.names)} fitted parameters, {cfg.horizon:g} d, visits every "
          f"{cfg.outcomes.assessment_every:g} d; {res['numba_threads']} Numba threads, load "
          f"average {res['load_average_start']}")

    with threadpool_limits(1, user_api="blas"):  # as calibrate() runs
        # 1. Compile / warm-up.
        t = time.perf_counter()
        _, warm = time_cloud(r0, WARMUP_N, threads)
        warm_s = time.perf_counter() - t
        st = _lanes.solve_batch_lanes.stats
        source = ("compiled" if sum(st.cache_misses.values()) or not sum(st.cache_hits.values())
                  else "loaded from Numba cache")
        t = time.perf_counter()
        Likelihood(r0.layout, warm, p.fitted, r0.trm, 10.0)(r0.theta)
        res["compile"] = {"first_cloud_s": warm_s, "first_cloud_patients": WARMUP_N,
                          "source": source, "first_likelihood_s": time.perf_counter() - t}
        print(f"\ncompile / warm-up: first simulate_cloud ({WARMUP_N} patients) {warm_s:.2f} s "
              f"({source}); first likelihood call {res['compile']['first_likelihood_s']:.3f} s; "
              "excluded below")

        # 2-3. The calibration path and the raw engine, alternating rounds.
        cloud_s, engine_s, cloud, runs, buf = [], [], None, None, None
        for _ in range(rounds):
            dt, c = time_cloud(r0, n, threads)
            cloud_s.append(dt)
            if cloud is None:
                cloud = c
                runs = engine_runs(r0, cloud)
                buf = np.empty((cloud.size, runs[0].t.size, runs[0].y0.shape[1]))
                check_same_runs(r0, cloud, runs, threads)
            elif not same_cloud(cloud, c):
                raise BenchError("two rounds of the same seed gave different clouds")
            engine_s.append(time_engine(runs, cfg.solver.options(), threads, buf))
        vp = cloud.size * len(p.arms)
        res.update({
            "n_kept": cloud.size, "virtual_patients": vp, "failed": cloud.failed,
            "cloud_seconds": cloud_s, "engine_seconds": engine_s,
            "cloud_patients_per_s": vp / min(cloud_s),
            "engine_patients_per_s": vp / min(engine_s),
        })
        res["ratio_cloud_over_engine"] = res["cloud_patients_per_s"] / res["engine_patients_per_s"]

        # 4. Where the time goes.
        b = breakdown(r0, cloud, n, threads)
        b["engine_s"] = min(engine_s)
        b["outcomes_features_s"] = b["simulate_patients_s"] - b["engine_s"]
        res["breakdown"] = b

        # 5. Likelihood over this cloud, built as a round builds it.
        floor = max(100.0, s.ess_floor * cloud.size)
        like = Likelihood(r0.layout, cloud, p.fitted, r0.trm, floor)
        pts = likelihood_points(r0, k)
        like_s, vals = time_likelihood(like, pts)
        res["likelihood"] = {
            "points": k, "cloud_size": cloud.size, "targets": len(p.fitted),
            "parameters": r0.layout.size, "seconds_per_pass": like_s,
            "evals_per_s": k / like_s, "finite": int(np.isfinite(vals).sum()),
            "patient_weights_per_s": k * cloud.size / like_s,
            "evals_per_cloud_simulation": min(cloud_s) * k / like_s,
        }
    res["load_average_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    report(res)
    return res


def report(res: dict) -> None:
    """Print the numbers of ``res`` for people."""
    vp, arms = res["virtual_patients"], len(res["arms"])
    print(f"\ncloud: {res['n_drawn']} drawn, {res['n_kept']} kept (diseased, in domain) x "
          f"{arms} arms = {vp} virtual patients; failed runs {res['failed']}")
    print(f"  {'':<34} {'best s':>8} {'patients/s':>11}  rounds (s)")
    for name, key, rate in (("calibration path (simulate_cloud)", "cloud_seconds",
                             "cloud_patients_per_s"),
                            ("raw engine (solve), same runs", "engine_seconds",
                             "engine_patients_per_s")):
        print(f"  {name:<34} {min(res[key]):>8.2f} {res[rate]:>11,.0f}  "
              + ", ".join(f"{x:.2f}" for x in res[key]))
    print(f"  calibration path / raw engine: {res['ratio_cloud_over_engine']:.2f} "
          "(1 = no overhead)")
    b = res["breakdown"]
    print(f"  where the time goes (one pass): steady states of the {res['n_drawn']} draws "
          f"{b['steady_states_s']:.2f} s; simulate_patients over the arms "
          f"{b['simulate_patients_s']:.2f} s = engine {b['engine_s']:.2f} s + outcomes and "
          f"features {b['outcomes_features_s']:.2f} s")
    lk = res["likelihood"]
    print(f"\nlikelihood over the cloud ({lk['cloud_size']} patients, {lk['targets']} targets, "
          f"{lk['parameters']} parameters; {lk['points']} points, best of 3 passes, BLAS 1 "
          f"thread): {lk['evals_per_s']:,.0f} evaluations/s ({1e3 / lk['evals_per_s']:.2f} ms "
          f"each; {lk['patient_weights_per_s'] / 1e6:.1f} M patient-weights/s); one cloud "
          f"simulation costs {lk['evals_per_cloud_simulation']:,.0f} evaluations")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"CI tier: a {TIERS['quick']['n']}-patient cloud (about 15 s)")
    ap.add_argument("--threads", type=int, default=None,
                    help="Numba threads of both sides (default: all)")
    ap.add_argument("--json", help="write the numbers to this file")
    args = ap.parse_args(argv)
    t = time.perf_counter()
    try:
        res = run("quick" if args.quick else "full", args.threads)
    except BenchError as e:
        print(f"bench_calibrate: FAILED: {e}", file=sys.stderr)
        return 1
    res["total_seconds"] = time.perf_counter() - t
    print(f"\ntotal {res['total_seconds']:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
