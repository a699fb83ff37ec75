"""Per-trajectory status codes returned by the compiled kernels, and their messages."""

from __future__ import annotations

import numpy as np

SUCCESS = 0
MAX_STEPS = 1
STEP_UNDERFLOW = 2
NONFINITE = 3
SINGULAR = 4

MESSAGES: dict[int, str] = {
    SUCCESS: "success",
    MAX_STEPS: "step budget exhausted (raise solver.max_steps or loosen tolerances)",
    STEP_UNDERFLOW: "step size underflow (the solution may blow up, or the problem is too stiff "
    "for this method: try method='rodas4')",
    NONFINITE: "non-finite state (NaN or inf) that step-size reduction could not avoid",
    SINGULAR: "singular iteration matrix in the Rosenbrock step",
}


def message(code: int) -> str:
    """Human-readable message for a status code."""
    return MESSAGES.get(int(code), f"unknown status {int(code)}")


def summarize(status: np.ndarray) -> str:
    """One line counting trajectories per status, e.g. ``'98 success, 2 step size underflow'``."""
    codes, counts = np.unique(np.asarray(status), return_counts=True)
    return ", ".join(f"{n} {message(c).split(' (')[0]}" for c, n in zip(codes, counts))
