"""``[cohort] include = "FILE"``: take the ``[cohort]`` table of another TOML file.

The included file's ``[cohort]`` table is the base; the including config's own ``[cohort]`` keys
override it key by key, and a ``cohort.parameters`` entry given locally replaces that parameter's
whole distribution. Only the ``[cohort]`` table of the included file is read (so a calibrated
cohort file or another experiment's config both work); includes do not nest. Every problem is
one line naming ``cohort.include`` and the file.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: An included cohort may carry many posterior draws, so it may be larger than a config.
INCLUDE_MAX_BYTES = 20_000_000

KEY = "cohort.include"


class IncludeError(ValueError):
    """An include that cannot be resolved; the message is one line starting ``cohort.include``."""


@dataclass(frozen=True)
class Included:
    """The resolved include: the name as written, its path and its text."""

    name: str
    path: Path
    text: str


def resolve_cohort(data: dict, base_dir: str | Path | None) -> tuple[dict, Included | None]:
    """``data`` with ``cohort.include`` replaced by the merged cohort table.

    Parameters
    ----------
    data : dict
        A config as read from TOML (not modified).
    base_dir : path or None
        Directory relative include paths start from (the including file's directory).

    Returns
    -------
    The config dict to validate, and the :class:`Included` file (None without an include).
    """
    cohort = data.get("cohort")
    if not isinstance(cohort, dict) or "include" not in cohort:
        return data, None
    name = cohort["include"]
    if not isinstance(name, str) or not name:
        raise IncludeError(f"{KEY}: {name!r} is invalid: expected a file name (a string)")
    if base_dir is None:
        raise IncludeError(f"{KEY}: '{name}' needs a base directory for the file; use "
                           "load_config(path) or parse_config(data, base_dir=...)")
    path = Path(base_dir) / name
    included, text = _read(name, path)
    return {**data, "cohort": merge(included, cohort)}, Included(name, path, text)


def merge(included: dict, local: dict) -> dict:
    """The included cohort table overridden by the local one (``include`` dropped); parameter
    entries are merged by name, each local entry replacing the included one whole."""
    out = {**included, **{k: v for k, v in local.items() if k != "include"}}
    inc, loc = included.get("parameters"), local.get("parameters")
    if isinstance(inc, dict) and isinstance(loc, dict):
        out["parameters"] = {**inc, **loc}
    return out


def _read(name: str, path: Path) -> tuple[dict, str]:
    """The ``[cohort]`` table and the text of an included file."""
    try:
        raw = path.read_bytes()
    except (OSError, ValueError) as e:  # ValueError: a NUL byte in the name
        why = getattr(e, "strerror", None) or str(e)
        raise IncludeError(f"{KEY}: cannot read '{name}' ({path}: {why})") from None
    if len(raw) > INCLUDE_MAX_BYTES:
        raise IncludeError(f"{KEY}: '{name}' has {len(raw)} bytes; expected under "
                           f"{INCLUDE_MAX_BYTES}")
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
        data = tomllib.loads(text)
    except UnicodeDecodeError as e:
        raise IncludeError(f"{KEY}: '{name}' is not UTF-8 text (byte {raw[e.start]:#04x} at "
                           f"offset {e.start})") from None
    except tomllib.TOMLDecodeError as e:
        raise IncludeError(" ".join(f"{KEY}: '{name}' is not valid TOML ({e})".split())) from None
    except RecursionError:
        raise IncludeError(f"{KEY}: '{name}' nests arrays or tables too deeply") from None
    cohort: Any = data.get("cohort")
    if not isinstance(cohort, dict):
        raise IncludeError(f"{KEY}: '{name}' has no [cohort] table")
    if "include" in cohort:
        raise IncludeError(f"{KEY}: '{name}' has its own cohort.include; includes do not nest "
                           "(include that file directly)")
    return cohort, text
