"""One module per `hazardwatch` sub-command, each with `add_arguments(parser)` and `run(args)`."""

from __future__ import annotations

import sys

from hazardwatch.plant.loader import ConfigFileError


def config_failure(command: str, exc: Exception) -> int:
    """Print a configuration error the one way every command does; returns exit code 1.

    A file error prints one `file:line: field: message` per line, unprefixed, so editors can jump
    to it; any other error is prefixed with the command's name.
    """
    if isinstance(exc, ConfigFileError):
        print(exc, file=sys.stderr)
    else:
        print(f"{command}: {exc}", file=sys.stderr)
    return 1
