"""immunosim: mesenchymal stem-cell therapy of refractory SLE, simulated.

The package is layered (imports point one way, edges -> experiments -> engines -> model):

* :mod:`immunosim.model`: the biology (``sle_msc`` states, parameters with units and sources,
  interventions, activity score, steady states);
* :mod:`immunosim.engines`: numerics (the batched Numba ODE engine);
* :mod:`immunosim.experiments`: scenarios, configs, cohorts, sweeps, outcomes;
* edges: :mod:`immunosim.io`, :mod:`immunosim.plotting`, :mod:`immunosim.cli`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .experiments.config import Config, ConfigError, load_config  # noqa: E402
from .experiments.simulate import Scenario, SolverOptions, simulate  # noqa: E402
from .experiments.sweep import sweep  # noqa: E402
from .model.interventions import HSCT, MSCInfusion, StandardTherapy  # noqa: E402

__all__ = [
    "Config",
    "ConfigError",
    "load_config",
    "sweep",
    "HSCT",
    "MSCInfusion",
    "Scenario",
    "SolverOptions",
    "StandardTherapy",
    "__version__",
    "simulate",
]
