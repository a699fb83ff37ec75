"""The biology: the ``sle_msc`` model, its steady states, activity score and interventions."""

from __future__ import annotations

import hashlib
from pathlib import Path

_MODEL_FILES = ("sle_msc.py", "sle_msc_parameters.py", "steady_states.py", "activity.py",
                "interventions.py", "regimens.py")


def model_digest() -> str:
    """Short digest of the model's source files, stored in results so that a result can be
    matched to the model that produced it (the package version does not change on every edit)."""
    h = hashlib.sha256()
    here = Path(__file__).parent
    for name in _MODEL_FILES:
        h.update((here / name).read_bytes())
    return h.hexdigest()[:16]
