"""The one base class of the errors a user can fix (a bad config key, a mismatched resume, a file
that is not a result, ...). Each carries a one-line message; the CLI prints it and exits 2 without
a traceback. Kept in its own tiny module so that the CLI can catch them all without importing the
modules that raise them."""

from __future__ import annotations


class ImmunosimError(Exception):
    """A problem with the user's input or files, described in one line."""
