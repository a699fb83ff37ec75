"""The plotting error type (its own module so that every plotting module can raise it)."""

from __future__ import annotations

from ..errors import ImmunosimError


class PlotError(ImmunosimError, ValueError):
    """A figure cannot be drawn from a result (missing file or variables, bad option); the
    message is one line naming what is missing and how to get it."""
