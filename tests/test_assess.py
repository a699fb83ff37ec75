"""From solved runs to outcomes (``experiments/assess.py``), end to end through a sweep: the
sweep's outcomes equal the plain-Python reference of docs/outcomes.md (tests/naive_outcomes.py)
applied to the sweep's own score trajectory, with origins at each arm's first dose, follow-up
the horizon minus the latest origin, weekly assessments ending in a shorter last step, and
treatment-related deaths drawn as docs/outcomes.md says."""

from __future__ import annotations

import math

import numpy as np
import pytest

from immunosim.experiments.clinical import OutcomeOptions
from immunosim.experiments.config import load_config
from immunosim.experiments.sweep import sweep
from tests.naive_outcomes import reference_run

CONFIG = """
name = "assess"
seed = 5
horizon = 400                   # weekly assessments: 0, 7, ..., 399, then 400
[scenarios.untreated]
[scenarios.msc]
msc = { amount = 1e6, time = 14 }
[scenarios.hsct]
hsct = { time = 3, trm = 0.5, trm_window = 60 }
[cohort]
size = 8
[cohort.parameters.activation_rate]
distribution = "lognormal"
median = 0.05
cv = 0.5
[outcomes]
time_origin = "first_dose"
assessment_every = 7
landmarks = [0, 28, 91, 180, 365]
remission_threshold = 6         # thresholds other than the defaults reach the kernel too
remission_min_duration = 21
flare_rise = 2
[output]
trajectories = true
trajectory_every = 7
trajectory_variables = ["activity"]
"""

OPTIONS = OutcomeOptions(remission_threshold=6.0, remission_min_duration=21.0, flare_rise=2.0)

#: Outcomes a score course decides alone (SRI-4, major response and flares also need items).
SCORE_ONLY = ("baseline_activity", "min_activity", "follow_up", "remission",
              "time_to_remission", "partial_response", "time_to_partial_response", "relapse",
              "time_to_relapse", "death", "time_to_death")


def death_day(seed: int, patient: int, time: float, trm: float, window: float) -> float:
    """docs/outcomes.md: "Treatment-related death (HSCT trm) is drawn once per patient from its
    own random stream (SeedSequence(seed, spawn_key=(3, patient)))"; docs/configs.md: "trm
    (probability of treatment-related death) and trm_window (d; deaths fall uniformly within
    it)", from the transplant: the draw u dies when u < trm, at time + window * u / trm."""
    u = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(3, patient))).random()
    return time + window * u / trm if u < trm else math.nan


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    path = tmp_path_factory.mktemp("assess") / "assess.toml"
    path.write_text(CONFIG)
    return sweep(load_config(path), progress=False)


def test_sweep_outcomes_equal_the_reference_on_its_own_trajectories(result):
    ds = result
    t = ds.time.values
    assert t[-1] == 400 and t[-2] == 399 and np.all(np.diff(t[:-1]) == 7)
    origins = {"untreated": 0.0, "msc": 14.0, "hsct": 3.0}  # each arm's first dose
    follow = 400.0 - max(origins.values())
    landmarks = ds.landmark.values
    compared = deaths = remissions = relapses = 0
    for s, origin in origins.items():
        assert float(ds.origin.sel(scenario=s)) == origin
        for i in range(ds.sizes["patient"]):
            run = ds.sel(scenario=s).isel(patient=i)
            if int(run.status) != 0:
                continue
            death = death_day(5, i, 3.0, 0.5, 60.0) if s == "hsct" else math.nan
            want = reference_run(list(t), list(run.traj_activity.values), horizon=follow,
                                 origin=origin, death=death, landmarks=landmarks,
                                 options=OPTIONS)
            for name in SCORE_ONLY:
                np.testing.assert_array_equal(run[name].values, want[name],
                                              err_msg=f"{name}, {s}, patient {i}")
            for name in ("activity_at", "remission_at"):
                np.testing.assert_array_equal(run[name].values, np.asarray(want[name]),
                                              err_msg=f"{name}, {s}, patient {i}")
            compared += 1
            deaths += want["death"]
            remissions += want["remission"]
            relapses += want["relapse"]
    # not vacuous: most runs compared; some die, some remit (and some do not), some relapse
    assert compared >= 20 and 0 < deaths < 8 and 0 < remissions < compared and relapses > 0
