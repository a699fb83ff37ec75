"""Butcher and Rosenbrock tableaus: a solver is its tableau (data) plus one generic step.

Explicit Runge-Kutta pairs follow scipy's ``integrate/_ivp/rk.py`` layout: ``A`` (s, s), ``B`` (s,),
``C`` (s,), ``E`` (s + 1,) with the last entry weighting ``f(t + h, y_new)`` (FSAL), and the dense
output matrix ``P`` (s + 1, k) so that ``y(t + x h) = y + h * (K.T @ P) @ [x, x^2, ..., x^k]``.

Rosenbrock methods use the Hairer-Wanner / KPP (Sandu et al. 1997) transformed form::

    G = I / (h * gamma) - J
    G K_i = f(y + sum_j A[i, j] K_j) + sum_j C[i, j] / h * K_j
    y_new = y + sum_i M[i] K_i,     err = sum_i E[i] K_i

References
----------
Dormand JR, Prince PJ. A family of embedded Runge-Kutta formulae. J Comp Appl Math 1980;6:19-26.
Shampine LF. Some practical Runge-Kutta formulas. Math Comp 1986;46:135-150 (dense output).
Bogacki P, Shampine LF. A 3(2) pair of Runge-Kutta formulas. Appl Math Lett 1989;2:321-325.
Hairer E, Wanner G. Solving ODEs II, 2nd ed., Springer 1996, section IV.7 (RODAS).
Sandu A et al. Benchmarking stiff ODE solvers for atmospheric chemistry problems II: Rosenbrock
solvers. Atmos Environ 1997;31:3459-3472 (RODAS3, and the KPP form used here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

EXPLICIT = 0
ROSENBROCK = 1


@dataclass(frozen=True)
class ExplicitTableau:
    """An embedded explicit Runge-Kutta pair with dense output."""

    name: str
    order: int  # order of the propagated solution
    error_order: int  # order of the embedded error estimator
    A: np.ndarray
    B: np.ndarray
    C: np.ndarray
    E: np.ndarray
    P: np.ndarray
    kind: int = field(default=EXPLICIT)

    @property
    def stages(self) -> int:
        return self.B.size

    @cached_property
    def dense_basis(self) -> tuple[np.ndarray, np.ndarray]:
        """The dense output as Hermite data plus at most one more stage combination.

        Returns ``(W, d)`` with ``W`` of shape ``(nm, 4)`` and ``d`` of shape ``(s + 1,)`` such
        that ``P = [b, e_0, e_s, d] @ W.T``, where ``b`` is ``B`` padded with a zero, and ``e_0``,
        ``e_s`` pick the first and last (FSAL) stage. The interpolant's coefficients are then
        ``Q_m = W[m] . (y_new - y, h f_0, h f_1, h d.K)``: one stage combination instead of
        ``nm`` (Hairer's DOPRI5 dense output is of this form; BS3's is cubic Hermite, ``d = 0``).
        Coefficients within 1e-9 of an integer are snapped to it; the representation is checked
        to reproduce ``P`` to 1e-13.
        """
        s = self.B.size
        b = np.append(self.B, 0.0)
        e0 = np.eye(s + 1)[0]
        es = np.eye(s + 1)[s]
        herm = np.column_stack([b, e0, es])
        X = np.linalg.lstsq(herm, self.P, rcond=None)[0]
        if np.abs(herm @ X - self.P).max() < 1e-13:
            d = np.zeros(s + 1)
            W = np.column_stack([X.T, np.zeros(self.P.shape[1])])
        else:
            d = self.P[:, -1].copy()
            basis = np.column_stack([herm, d])
            W = np.linalg.lstsq(basis, self.P, rcond=None)[0].T
            if np.abs(basis @ W.T - self.P).max() > 1e-13:
                raise ValueError(f"{self.name}: dense output is not Hermite data plus one stage "
                                 "combination; the engine's kernels need that form")
        snapped = np.round(W)
        W = np.ascontiguousarray(np.where(np.abs(W - snapped) < 1e-9, snapped, W) + 0.0)  # no -0.0
        W.flags.writeable = False  # computed once per tableau and shared
        d.flags.writeable = False
        return W, d


@dataclass(frozen=True)
class RosenbrockTableau:
    """A Rosenbrock method in transformed (KPP) form; dense output is cubic Hermite."""

    name: str
    order: int
    error_order: int  # "ELO" in KPP: exponent of the step-size controller is 1 / error_order
    gamma: float
    A: np.ndarray  # (s, s) strictly lower triangular
    C: np.ndarray  # (s, s) strictly lower triangular
    M: np.ndarray  # (s,)
    E: np.ndarray  # (s,)
    new_f: np.ndarray  # (s,) bool: stage needs a new f evaluation
    kind: int = field(default=ROSENBROCK)

    @property
    def stages(self) -> int:
        return self.M.size


def _f(rows) -> np.ndarray:
    return np.array(rows, dtype=np.float64)


DOPRI5 = ExplicitTableau(
    name="dopri5",
    order=5,
    error_order=4,
    C=_f([0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1]),
    A=_f([
        [0, 0, 0, 0, 0, 0],
        [1 / 5, 0, 0, 0, 0, 0],
        [3 / 40, 9 / 40, 0, 0, 0, 0],
        [44 / 45, -56 / 15, 32 / 9, 0, 0, 0],
        [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729, 0, 0],
        [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656, 0],
    ]),
    B=_f([35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84]),
    E=_f([-71 / 57600, 0, 71 / 16695, -71 / 1920, 17253 / 339200, -22 / 525, 1 / 40]),
    P=_f([
        [1, -8048581381 / 2820520608, 8663915743 / 2820520608, -12715105075 / 11282082432],
        [0, 0, 0, 0],
        [0, 131558114200 / 32700410799, -68118460800 / 10900136933, 87487479700 / 32700410799],
        [0, -1754552775 / 470086768, 14199869525 / 1410260304, -10690763975 / 1880347072],
        [0, 127303824393 / 49829197408, -318862633887 / 49829197408,
         701980252875 / 199316789632],
        [0, -282668133 / 205662961, 2019193451 / 616988883, -1453857185 / 822651844],
        [0, 40617522 / 29380423, -110615467 / 29380423, 69997945 / 29380423],
    ]),
)

BS3 = ExplicitTableau(
    name="bs3",
    order=3,
    error_order=2,
    C=_f([0, 1 / 2, 3 / 4]),
    A=_f([[0, 0, 0], [1 / 2, 0, 0], [0, 3 / 4, 0]]),
    B=_f([2 / 9, 1 / 3, 4 / 9]),
    E=_f([5 / 72, -1 / 12, -1 / 9, 1 / 8]),
    P=_f([[1, -4 / 3, 5 / 9], [0, 1, -2 / 3], [0, 4 / 3, -8 / 9], [0, -1, 1]]),
)


def _lower(values: list[float], s: int) -> np.ndarray:
    """Unpack KPP's row-wise packed strictly-lower-triangular storage."""
    out = np.zeros((s, s))
    k = 0
    for i in range(1, s):
        for j in range(i):
            out[i, j] = values[k]
            k += 1
    return out


RODAS3 = RosenbrockTableau(
    name="rodas3",
    order=3,
    error_order=3,
    gamma=0.5,
    A=_lower([0.0, 2.0, 0.0, 2.0, 0.0, 1.0], 4),
    C=_lower([4.0, 1.0, -1.0, 1.0, -1.0, -8.0 / 3.0], 4),
    M=_f([2.0, 0.0, 1.0, 1.0]),
    E=_f([0.0, 0.0, 0.0, 1.0]),
    new_f=np.array([True, False, True, True]),
)

_R4A = [0.1544000000000000e01, 0.9466785280815826e00, 0.2557011698983284e00,
        0.3314825187068521e01, 0.2896124015972201e01, 0.9986419139977817e00,
        0.1221224509226641e01, 0.6019134481288629e01, 0.1253708332932087e02,
        -0.6878860361058950e00]
RODAS4 = RosenbrockTableau(
    name="rodas4",
    order=4,
    error_order=4,
    gamma=0.25,
    A=_lower(_R4A + _R4A[6:10] + [1.0], 6),
    C=_lower([-0.5668800000000000e01, -0.2430093356833875e01, -0.2063599157091915e00,
              -0.1073529058151375e00, -0.9594562251023355e01, -0.2047028614809616e02,
              0.7496443313967647e01, -0.1024680431464352e02, -0.3399990352819905e02,
              0.1170890893206160e02, 0.8083246795921522e01, -0.7981132988064893e01,
              -0.3152159432874371e02, 0.1631930543123136e02, -0.6058818238834054e01], 6),
    M=_f(_R4A[6:10] + [1.0, 1.0]),
    E=_f([0, 0, 0, 0, 0, 1.0]),
    new_f=np.ones(6, dtype=bool),
)

METHODS: dict[str, ExplicitTableau | RosenbrockTableau] = {
    t.name: t for t in (DOPRI5, BS3, RODAS3, RODAS4)
}
