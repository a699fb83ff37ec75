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

#: Public names and the modules that define them, imported on first use (PEP 562): ``import
#: immunosim.cli`` stays light, so the CLI is inside its Ctrl-C handler (one line, exit 130)
#: before Numba, xarray and pydantic load.
_LAZY = {
    "Config": "experiments.config", "ConfigError": "experiments.config",
    "load_config": "experiments.config", "Scenario": "experiments.simulate",
    "SolverOptions": "experiments.simulate", "simulate": "experiments.simulate",
    "sweep": "experiments.sweep", "open_result": "experiments.results",
    "HSCT": "model.interventions",
    "MSCInfusion": "model.interventions", "StandardTherapy": "model.interventions",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'immunosim' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])


__all__ = [
    "Config",
    "ConfigError",
    "load_config",
    "open_result",
    "sweep",
    "HSCT",
    "MSCInfusion",
    "Scenario",
    "SolverOptions",
    "StandardTherapy",
    "__version__",
    "simulate",
]
