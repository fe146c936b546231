"""One base for every error a user can fix (bad data, config, model, output folder, a diverging run).

Each layer raises its own subclass (``DataError``, ``ConfigError``, ``ModelError``, ``RunDirectoryError``,
``DecoderUnavailableError``, ``NonFiniteLossError``, ``ExportError``) with a message that names what is wrong and
how to fix it; the CLI catches :class:`PhasefitError` alone, so choosing a subcommand imports no layer (and no
torch) just to know what to catch.
"""

from __future__ import annotations


class PhasefitError(Exception):
    """A problem the user can fix; the message says what and how."""


class ConfigError(PhasefitError, ValueError):
    """A configuration problem a user can fix; the message names the key and the fix."""
