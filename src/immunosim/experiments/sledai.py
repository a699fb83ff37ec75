"""The SLEDAI-2K item table: which descriptors exist, their weights, and which are major-organ or
serological activity.

A run reports the items present at each assessment as an ``int64`` bitmask (bit ``k`` set when
item ``k`` of the table is present). The table is instrument data, not model data: a model sets
the bits of the descriptors it represents and leaves the others clear.

References
----------
Gladman DD, Ibanez D, Urowitz MB. Systemic lupus erythematosus disease activity index 2000.
J Rheumatol 2002;29:288-91 (descriptors and weights).
Franklyn K et al. Definition and initial validation of a Lupus Low Disease Activity State
(LLDAS). Ann Rheum Dis 2016;75:1615-21 (major organ systems: renal, CNS, cardiopulmonary,
vasculitis, fever).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Largest number of items an ``int64`` bitmask holds without touching the sign bit.
MAX_ITEMS = 62


@dataclass(frozen=True)
class ItemTable:
    """Activity items of a SLEDAI-like instrument.

    Parameters
    ----------
    names : tuple of str
        Item names; item ``k`` is bit ``k`` of an items bitmask.
    weights : tuple of float
        Points each item adds to the total score when present.
    major_organ : tuple of str
        Items that are major-organ activity (LLDAS, major clinical response).
    serology : tuple of str
        Serological items (anti-dsDNA, low complement): excluded from clinical SLEDAI (DORIS) and
        from the new-organ-item check of SRI-4 (BILAG has no serology domain).
    """

    names: tuple[str, ...]
    weights: tuple[float, ...]
    major_organ: tuple[str, ...] = ()
    serology: tuple[str, ...] = ()

    def __post_init__(self):
        if len(self.names) != len(self.weights):
            raise ValueError(f"ItemTable: {len(self.names)} names for {len(self.weights)} weights")
        if not 0 < len(self.names) <= MAX_ITEMS:
            raise ValueError(f"ItemTable: {len(self.names)} items; expected 1 to {MAX_ITEMS}")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"ItemTable: duplicate item names in {self.names}")
        if any(not w > 0 for w in self.weights):
            raise ValueError(f"ItemTable: weights {self.weights} must all be > 0")
        for field in ("major_organ", "serology"):
            unknown = [n for n in getattr(self, field) if n not in self.names]
            if unknown:
                raise ValueError(f"ItemTable.{field}: unknown item(s) {unknown}; "
                                 f"valid items: {', '.join(self.names)}")

    def mask(self, *names: str) -> int:
        """Bitmask with the bits of ``names`` set."""
        m = 0
        for n in names:
            if n not in self.names:
                raise ValueError(f"unknown item {n!r}; valid items: {', '.join(self.names)}")
            m |= 1 << self.names.index(n)
        return m

    @property
    def major_organ_mask(self) -> int:
        return self.mask(*self.major_organ)

    @property
    def serology_mask(self) -> int:
        return self.mask(*self.serology)

    def points(self, items: np.ndarray, mask: int = -1) -> np.ndarray:
        """Sum of the weights of the items set in ``items & mask`` (same shape as ``items``).

        Read a byte of the bitmask at a time through a 256-entry table of its weight sums, so
        the cost grows with the number of bytes, not of items.
        """
        items = np.asarray(items, dtype=np.int64)
        k = len(self.weights)
        w = np.zeros(8 * ((k + 7) // 8))
        w[:k] = [wt if (mask >> i) & 1 else 0.0 for i, wt in enumerate(self.weights)]
        byte_bits = (np.arange(256)[:, None] >> np.arange(8)) & 1  # (256, 8)
        total = np.zeros(items.shape)
        for b in range(w.size // 8):
            total += (byte_bits @ w[8 * b: 8 * b + 8])[(items >> (8 * b)) & 255]
        return total


_RENAL = ("urinary_casts", "hematuria", "proteinuria", "pyuria")
_CNS = ("seizure", "psychosis", "organic_brain_syndrome", "visual_disturbance",
        "cranial_nerve_disorder", "lupus_headache", "cva")

#: The 24 SLEDAI-2K descriptors (Gladman 2002) with their weights. Major-organ items follow the
#: LLDAS definition (Franklyn 2016): renal, CNS, cardiopulmonary (pleurisy, pericarditis),
#: vasculitis and fever.
SLEDAI_2K = ItemTable(
    names=(*_CNS, "vasculitis",
           "arthritis", "myositis", *_RENAL,
           "rash", "alopecia", "mucosal_ulcers", "pleurisy", "pericarditis",
           "low_complement", "anti_dsdna",
           "fever", "thrombocytopenia", "leukopenia"),
    weights=(8.0,) * 8 + (4.0,) * 6 + (2.0,) * 7 + (1.0,) * 3,
    major_organ=(*_CNS, "vasculitis", *_RENAL, "pleurisy", "pericarditis", "fever"),
    serology=("low_complement", "anti_dsdna"),
)
