"""Label matchers of the routing tree, written like Alertmanager's: `colour=~"orange|red"`.

Operators: `=` equal, `!=` not equal, `=~` full regex match, `!~` no full regex match. A label the
event does not carry matches as the empty string (so `industry!="metallurgy"` matches it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_SYNTAX = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$')


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label condition."""

    label: str
    op: str
    value: str
    pattern: re.Pattern[str] | None = None

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True when the event's labels satisfy this condition."""
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self.pattern is not None
        found = self.pattern.fullmatch(actual) is not None
        return found if self.op == "=~" else not found


def parse_matcher(text: str) -> Matcher:
    """Parse `label=value`, `label!=value`, `label=~regex` or `label!~regex`; ValueError."""
    found = _SYNTAX.match(text)
    if found is None:
        raise ValueError(f"matcher {text!r} is not label=value, !=, =~ or !~")
    label, op, value = found.groups()
    pattern = None
    if op in ("=~", "!~"):
        try:
            pattern = re.compile(value)
        except re.error as exc:
            raise ValueError(f"matcher {text!r}: bad regex: {exc}") from exc
    return Matcher(label, op, value, pattern)
