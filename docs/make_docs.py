"""Regenerate docs/parameters.md and the figures in docs/figures/ from the code.

Run: ``python docs/make_docs.py``. ``tests/test_docs.py`` checks parameters.md is current.
``python docs/make_docs.py --plots`` redraws (only) the ``plot_*`` figures of docs/plots.md from
cut-down copies of the example configs (:data:`PLOT_SWEEPS`; about two minutes on 2 cores).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from immunosim.model import activity as activity_module

HERE = Path(__file__).parent

#: The sweeps behind the figures of docs/plots.md: example configs with a smaller cohort.
PLOT_SWEEPS = {"msc_vs_hsct": 60, "dose_timing": 30}
#: docs/figures/<name>.png <- (sweep, figure stem of `immunosim plot`, plot_result options)
PLOT_FIGURES = {
    "plot_timecourse": ("msc_vs_hsct", "timecourse", {}),
    "plot_survival": ("msc_vs_hsct", "survival__remission", {}),
    "plot_relapse_free": ("msc_vs_hsct", "survival__relapse_free", {}),
    "plot_bistability": ("msc_vs_hsct", "bistability", {}),
    "plot_dose_timing_map": ("dose_timing", "dose_timing__remission_map", {}),
    "plot_relapse_map": ("dose_timing", "dose_timing__relapse_map", {}),
    "plot_relapse_among_remitters_map": ("dose_timing", "dose_timing__relapse_among_remitters_map",
                                         {}),
    "plot_timecourse_selected": ("dose_timing", "timecourse",
                                 {"select": ["first_day=91"], "subgroup": "activation_rate>q50",
                                  "figures": ["timecourse"]}),
}


def parameters_markdown() -> str:
    from immunosim.model import sle_msc as m

    lines = [
        "# sle_msc parameters",
        "",
        "Generated from `immunosim.model.sle_msc.PARAMETERS` by `docs/make_docs.py`; do not edit.",
        "The range is the plausible range used by cohorts and random sweep designs; a config value",
        "outside it is allowed with a warning. The domain is the hard domain: what keeps the model",
        "meaningful (half-lives > 0, maximal suppressions in [0, 1], ...); a config value outside",
        "it (model or scenario parameters, sweep axis values, the support of a cohort distribution)",
        "is refused. Sources marked `assumed` give the reason; `LITERATURE.md` is the project's",
        "evidence digest.",
        "",
        "| name | default | unit | range | domain | meaning | source |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in m.PARAMETERS:
        lines.append(f"| `{p.name}` | {p.default:g} | {p.unit} | {p.low:g} - {p.high:g} | "
                     f"{p.domain_text} | {p.description} | {p.source} |")
    return "\n".join(lines) + "\n"


def bistability_figure(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import immunosim as im
    from immunosim.model import sle_msc as m
    from immunosim.model.activity import activity
    from immunosim.model.steady_states import steady_states

    rates = np.logspace(np.log10(0.004), np.log10(0.6), 160)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    ax = axes[0]
    stable_pts, unstable_pts = [], []
    for r in rates:
        for s in steady_states(m.PARAMETERS.vector({"activation_rate": r})):
            (stable_pts if s.stable else unstable_pts).append((r, s.y[m.ANTI_DSDNA]))
    st, un = np.array(stable_pts), np.array(unstable_pts)
    ax.plot(st[:, 0], st[:, 1], ".", color="#0072B2", ms=3, label="stable equilibrium")
    ax.plot(un[:, 0], un[:, 1], ".", color="#D55E00", ms=3, label="unstable (threshold)")
    d = m.PARAMETERS["activation_rate"].default
    ax.axvline(d, color="0.5", ls=":", label=f"default patient ({d:g} /d)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("B-cell activation rate, activation_rate (1/d)")
    ax.set_ylabel("anti-dsDNA at equilibrium (IU/mL)")
    ax.set_title("Two stable states with hysteresis (no MSCs)")
    ax.legend(loc="upper left", fontsize=8)

    ax = axes[1]
    scen = [im.Scenario("untreated"),
            im.Scenario("MSC 3e5 cells/kg", (im.MSCInfusion(3e5),)),
            im.Scenario("MSC 1e6 cells/kg", (im.MSCInfusion(1e6),)),
            im.Scenario("MSC 1e6 x2, 90 d apart", (im.MSCInfusion(1e6, interval=90, count=2),))]
    ds = im.simulate(scen, horizon=1095)
    colors = ["#000000", "#E69F00", "#0072B2", "#009E73"]
    for i, c in enumerate(colors):
        ax.step(ds.time / 30.44, ds.activity[i] + 0.15 * (i - 1.5), where="post", color=c,
                label=str(ds.scenario.values[i]))
    ax.set_xlabel("months after first infusion")
    ax.set_ylabel("SLEDAI-like activity (points)")
    ax.set_title("Default patient starts diseased (activity 14)")
    ax.set_ylim(-1, 16)
    ax.legend(fontsize=8, loc="center right")
    y0 = ds.isel(time=0)
    assert float(activity(np.array([y0[s].values[0] for s in m.STATE_NAMES]),
                          m.PARAMETERS.defaults())) == 14
    fig.savefig(path, dpi=130)
    plt.close(fig)


def baseline_figure(path: Path) -> str:
    """Baseline activity and proteinuria of the example cohort (configs/baseline.toml) against
    Liang 2010 (SLEDAI 12.2 +- 3.3; proteinuria 2.5 +- 1.3 g/24h); returns a one-line summary."""
    import matplotlib

    from immunosim.experiments.assess import clinical_inputs
    from immunosim.experiments.config import load_config
    from immunosim.experiments.sweep import plan

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = plan(load_config(HERE.parent / "configs" / "baseline.toml"))
    y0, q = p.cohort.y0, p.cohort.params
    score = clinical_inputs(y0[:, None, :], q)["score"][:, 0]
    prot = activity_module.readouts(y0, q)["proteinuria"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    ax = axes[0]
    bins = np.arange(-0.5, score.max() + 2.5, 1.0)
    ax.hist(score, bins=bins, density=True, color="#0072B2", alpha=0.7,
            label=f"example cohort (n={score.size}): {score.mean():.1f} +- {score.std():.1f}")
    x = np.linspace(0, bins[-1], 200)
    ax.plot(x, np.exp(-0.5 * ((x - 12.2) / 3.3) ** 2) / (3.3 * np.sqrt(2 * np.pi)), "k--",
            label="Liang 2010 (n=15): 12.2 +- 3.3")
    ax.set_xlabel("baseline SLEDAI-2K-like score (points)")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    ax = axes[1]
    ax.hist(prot, bins=30, density=True, color="#E69F00", alpha=0.7,
            label=f"example cohort: {prot.mean():.2f} +- {prot.std():.2f}")
    x = np.linspace(0, prot.max(), 200)
    ax.plot(x, np.exp(-0.5 * ((x - 2.505) / 1.324) ** 2) / (1.324 * np.sqrt(2 * np.pi)), "k--",
            label="Liang 2010 (n=12): 2.51 +- 1.32")
    ax.set_xlabel("baseline proteinuria (g/24h)")
    ax.legend(fontsize=8)
    fig.suptitle("Untreated baseline of the calibrated example cohort vs the BM-MSC pilot")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return (f"activity {score.mean():.1f} +- {score.std():.1f}, "
            f"proteinuria {prot.mean():.2f} +- {prot.std():.2f}")


def cut_down_sweep(name: str, size: int, out_dir: Path) -> Path:
    """Run ``configs/<name>.toml`` with a cohort of ``size`` patients into ``out_dir``."""
    import re

    from immunosim.experiments.config import load_config
    from immunosim.experiments.sweep import sweep

    configs = HERE.parent / "configs"
    text = (configs / f"{name}.toml").read_text()
    text = re.sub(r"(?m)^size = \d+", f"size = {size}", text, count=1)
    text = text.replace('include = "cohort_calibrated.toml"',
                        f'include = "{(configs / "cohort_calibrated.toml").as_posix()}"')
    path = out_dir / f"{name}_{size}.toml"
    path.write_text(text)
    return sweep(load_config(path), out_dir / f"{name}_{size}.zarr", progress=False)


def plot_figures() -> list[str]:
    """Redraw the figures of docs/plots.md (:data:`PLOT_FIGURES`) from the cut-down sweeps."""
    import shutil
    import tempfile

    from immunosim.plotting import plot_result

    done = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        results = {n: cut_down_sweep(n, k, tmp) for n, k in PLOT_SWEEPS.items()}
        for target, (sweep_name, stem, opts) in PLOT_FIGURES.items():
            out = tmp / target
            plot_result(results[sweep_name], out, formats=["png"], **opts)
            shutil.copy(out / f"{stem}.png", HERE / "figures" / f"{target}.png")
            done.append(f"docs/figures/{target}.png")
    return done


def main() -> int:
    if "--plots" in sys.argv[1:]:  # only these: they need two sweeps
        print("wrote " + ", ".join(plot_figures()))
        return 0
    (HERE / "parameters.md").write_text(parameters_markdown())
    bistability_figure(HERE / "figures" / "bistability.png")
    summary = baseline_figure(HERE / "figures" / "baseline_activity.png")
    print(f"wrote docs/parameters.md, docs/figures/bistability.png, "
          f"docs/figures/baseline_activity.png ({summary})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
