"""Hypothesis mutations of the example configs (issue 17): each ``configs/*.toml`` with one
mutation (a key deleted, a value of another type, a number out of range, NaN or infinity, a
wrong string, a value nested in a list or table, an unknown key) either validates or is refused
with a :class:`ConfigError` of one line that starts with a key path: never another exception,
never a message without its key.

Validation is in-process, through the functions ``immunosim validate`` calls for each kind of
file: :func:`~immunosim.experiments.config.parse_config` for experiments (with the config's
directory, so the calibrated cohort is included), ``calibrate.parse_problem`` for the
calibration config, and the cohort file's ``[cohort]`` table as an experiment's cohort.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import os
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from immunosim.experiments.calibrate import parse_problem
from immunosim.experiments.config import ConfigError, parse_config, tomllib
from immunosim.experiments.targets import TargetError
from tests.conftest import ROOT

CONFIGS = ROOT / "configs"
#: Examples per file (about 0.05 s each); raise it for a deeper search, e.g.
#: ``IMMUNOSIM_FUZZ_EXAMPLES=2000 python -m pytest tests/test_config_mutations.py``.
EXAMPLES = int(os.environ.get("IMMUNOSIM_FUZZ_EXAMPLES", "25"))
FILES = sorted(CONFIGS.glob("*.toml"))

#: ``key.path: ...``, ``cohort.posterior.median[3][1]: ...``, ``scenarios.a.therapy.0.dose: ...``
KEY_PATH = re.compile(r"^[A-Za-z_][\w-]*(?:\.[\w-]+|\[\d+\])*(?=: )")


def _validate(name: str, data: dict):
    """What ``immunosim validate`` runs on this kind of file, in-process."""
    if name == "calibrate.toml":
        return parse_problem(data, path=CONFIGS / name)
    if name == "cohort_calibrated.toml":  # included by the experiments: checked as their cohort
        return parse_config({"scenarios": {"untreated": {}}, "cohort": data.get("cohort")})
    return parse_config(data, base_dir=CONFIGS)


def _paths(node, prefix=()) -> list[tuple]:
    """Every key path of a TOML tree (list items by index), tables and leaves alike."""
    out = []
    items = node.items() if isinstance(node, dict) else (
        enumerate(node) if isinstance(node, list) else ())
    for k, v in items:
        out.append(prefix + (k,))
        out += _paths(v, prefix + (k,))
    return out


def _dotted(path: tuple) -> str:
    return ".".join(str(p) for p in path)


# --- mutations -------------------------------------------------------------------------------

identifiers = st.from_regex(r"[a-z_][a-z0-9_]{0,11}", fullmatch=True)
scalars = st.one_of(
    st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.dates(), st.datetimes(), st.times(),
    st.sampled_from([0, -1, 1e-300, 1e300, -0.0, 2**63, "", "1e6", "lognormal", "msc.amount",
                     "dopri5", "abm", "nih", "x" * 300]))
values = st.recursive(scalars, lambda c: st.one_of(st.lists(c, max_size=3),
                                                   st.dictionaries(identifiers, c, max_size=3)),
                      max_leaves=8)


def _out_of_range(v) -> st.SearchStrategy:
    """Numbers that break ranges: negative, zero, tiny, huge, non-finite, scaled originals."""
    base = [0, -1, -0.0, 1e-300, 1e300, 1e308, 2**63, -2**63, 10**30, math.nan, math.inf,
            -math.inf]
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        base += [-v, v * 1e6, v * 1e-6, v + 0.5, v - 1, int(v) if math.isfinite(v) else 0]
    return st.sampled_from(base)


def _wrong_string(v) -> st.SearchStrategy:
    if isinstance(v, str) and v:
        typos = [v[:-1], v + "x", v.upper(), " " + v, v.replace("_", "-"), v[::-1]]
        return st.sampled_from(typos + ["", "nan", "inf", "1e6", "true"]) | st.text(max_size=10)
    return st.text(max_size=10) | st.sampled_from(["", "nan", "inf", "1e6", "true"])


def _nested(v) -> st.SearchStrategy:
    deep = v
    for _ in range(30):
        deep = [deep]
    return st.sampled_from([[v], [[v]], {"value": v}, {"x": [v]}, [v, v], deep])


def _retyped(v) -> st.SearchStrategy:
    others = {bool: st.booleans(), int: st.integers(-10, 10**6), float: st.floats(),
              str: st.text(max_size=8), list: st.lists(scalars, max_size=3),
              dict: st.dictionaries(identifiers, scalars, max_size=3),
              dt.date: st.dates(), dt.datetime: st.datetimes(), dt.time: st.times()}
    return st.one_of([s for t, s in others.items() if type(v) is not t])


MUTATIONS = ("delete", "retype", "out_of_range", "wrong_string", "nest", "unknown_key",
             "anything")


@st.composite
def mutated(draw, name: str):
    """(mutated config dict, mutated key path, what was done)."""
    data = tomllib.loads((CONFIGS / name).read_text())
    path = draw(st.sampled_from(_paths(data)))
    kind = draw(st.sampled_from(MUTATIONS))
    data = copy.deepcopy(data)
    parent = data
    for k in path[:-1]:
        parent = parent[k]
    key = path[-1]
    old = parent[key]
    if kind == "delete":
        del parent[key]
        return data, path, kind
    if kind == "unknown_key":
        target = old if isinstance(old, dict) else parent
        if not isinstance(target, dict):
            target = data
            path = ()
        new = draw(identifiers)
        target[new] = draw(values)
        return data, (path if target is old else path[:-1]) + (new,), kind
    new = draw({"retype": _retyped, "out_of_range": _out_of_range,
                "wrong_string": _wrong_string, "nest": _nested,
                "anything": lambda _: values}[kind](old))
    parent[key] = new
    return data, path, kind


def _check(name: str, data: dict, path: tuple):
    """Validates, or one ConfigError line starting with a key path; nothing else."""
    try:
        _validate(name, data)
    except (ConfigError, TargetError) as e:
        text = str(e)
        assert "\n" not in text and "Traceback" not in text, text
        where = KEY_PATH.match(text)
        assert where, f"no key path at the start of {text!r} (mutated {_dotted(path)})"
        assert not text.startswith("invalid config"), text


@pytest.mark.filterwarnings("ignore::immunosim.experiments.config.ConfigWarning")
@pytest.mark.parametrize("name", [p.name for p in FILES])
def test_examples_validate_unmutated(name):
    _validate(name, tomllib.loads((CONFIGS / name).read_text()))


@pytest.mark.filterwarnings("ignore::immunosim.experiments.config.ConfigWarning")
@pytest.mark.parametrize("name", [p.name for p in FILES])
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(data=st.data())
def test_mutated_examples_validate_or_name_a_key(name, data):
    cfg, path, _ = data.draw(mutated(name))
    _check(name, cfg, path)


# --- what the search found (each failed before its fix) --------------------------------------


def _set(name: str, path: tuple, value) -> dict:
    data = tomllib.loads((CONFIGS / name).read_text())
    node = data
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return data


@pytest.mark.filterwarnings("ignore::immunosim.experiments.config.ConfigWarning")
@pytest.mark.parametrize("name, path, value, message", [
    # a NUL byte in the include name: a bare ValueError from pathlib ("embedded null byte")
    ("msc_vs_hsct.toml", ("cohort", "include"), "cohort\x00.toml",
     "cohort.include: cannot read 'cohort"),
    # numpy allocating a logspace of 2**63 values: IndexError; of 1e30: "maximum allowed size"
    ("abm_relapse.toml", ("sweep", "axes", "amount", "logspace", "num"), 2**63,
     "sweep.axes.amount.logspace.num: 9223372036854775808 is invalid: input should be less "
     "than or equal to 100000"),
    ("dose_timing.toml", ("sweep", "axes", "amount", "logspace", "num"), 10**30,
     "sweep.axes.amount.logspace.num: "),
    # cv**2 overflowed in the domain check: "invalid config: (34, 'Numerical result out of range')"
    ("cohort_calibrated.toml", ("cohort", "posterior", "cv", 0, 0), 1e300, None),
    ("cohort_calibrated.toml", ("cohort", "parameters", "activation_rate", "cv"), 1e300, None),
    # a [calibration] that is not a table: "calibration.: Input should be ..."
    ("calibrate.toml", ("calibration",), "x", "calibration: Input should be a valid dictionary"),
], ids=["include_nul", "logspace_2e63", "logspace_1e30", "posterior_cv_huge", "cv_huge",
        "calibration_string"])
def test_found_by_the_search(name, path, value, message):
    data = _set(name, path, value)
    _check(name, data, path)
    if message is not None:
        with pytest.raises(ConfigError) as e:
            _validate(name, data)
        assert str(e.value).startswith(message), str(e.value)
