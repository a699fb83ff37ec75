"""Field types shared by the config schema (``config.py``) and the therapy records
(``therapy_config.py``): numbers that refuse true/false and NaN/inf, and the strict base model."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _no_bool(v: Any) -> Any:
    """pydantic turns true/false into 1/0 where a number is expected; refuse that."""
    if isinstance(v, bool):
        raise ValueError(f"{str(v).lower()} is invalid: expected a number, not true/false")
    return v


Float = Annotated[float, BeforeValidator(_no_bool), Field(allow_inf_nan=False)]
Int = Annotated[int, BeforeValidator(_no_bool)]
Pos = Annotated[Float, Field(gt=0)]
NonNeg = Annotated[Float, Field(ge=0)]
Fraction = Annotated[Float, Field(ge=0, le=1)]

#: Most doses one record may give (a dose list is built while validating: 5e16 doses would be
#: a MemoryError naming no key; 1000 is daily dosing for almost three years).
MAX_DOSES = 1000
Count = Annotated[Int, Field(ge=1, le=MAX_DOSES)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)
