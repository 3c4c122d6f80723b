"""GB/T 2260 six-digit administrative division codes: county → city → province."""

from __future__ import annotations

import re

from hazardwatch.errors import ConfigError

_CODE = re.compile(r"^[1-9]\d{5}$")


def validate_region(code: str) -> str:
    """Return `code` if it is a six-digit GB/T 2260 code, else raise ConfigError."""
    if not _CODE.match(code):
        raise ConfigError(f"region code {code!r} is not six digits (GB/T 2260)")
    return code


def city_of(code: str) -> str:
    """City (prefecture) code of a county code: `410102` → `410100`."""
    return validate_region(code)[:4] + "00"


def province_of(code: str) -> str:
    """Province code of any code: `410102` → `410000`."""
    return validate_region(code)[:2] + "0000"
