"""The alert record: one warning followed from raise to clearance (消警), JSON-persistable.

An alert belongs to one group key (by default enterprise + hazard source). Its `kind` says where
it came from: `risk` (a colour of yellow or above), `alarm` (a blue alarm notice to the
enterprise), `data_quality` (a gateway offline). Times are epoch ms UTC.

An alert can hold thousands of tags (every stale tag behind an offline gateway), so it is
persisted in parts: a small header, one row per tag and one per history step. Tags change only
through `set_tag`, which records which ones changed (`dirty_tags`) and keeps the count of active
tags, so saving and checking an alert cost what changed, not the alert's size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from hazardwatch.types import RiskColour, Tier


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts through the API: user id, tier and area (enterprise id or region code)."""

    user: str
    tier: Tier
    area: str


@dataclass(slots=True)
class TagState:
    """A tag attached to an alert: its latest condition, severity, state and value."""

    tag: str
    condition: str = ""
    severity: int = 0
    state: str = ""
    value: float | None = None
    unit: str = ""
    active: bool = True


@dataclass(slots=True)
class Feedback:
    """Written feedback: cause and measures (原因和措施)."""

    cause: str
    measures: str
    user: str
    ts_ms: int


@dataclass(slots=True)
class Alert:
    """One alert's whole life-cycle state."""

    id: str
    key: str
    kind: str
    enterprise: str
    source: str | None
    colour: RiskColour
    raised_ms: int
    max_colour: RiskColour = RiskColour.BLUE
    updated_ms: int = 0
    tags: dict[str, TagState] = field(default_factory=dict)
    normal: bool = False
    acked_by: str | None = None
    acked_ms: int | None = None
    feedback: Feedback | None = None
    cleared_by: str | None = None
    cleared_ms: int | None = None
    shelved_until_ms: int | None = None
    shelved_by: str | None = None
    ack_due_ms: int | None = None
    feedback_due_ms: int | None = None
    reminded_ms: int | None = None
    feedback_reminded: bool = False
    notified: set[Tier] = field(default_factory=set)
    escalations: int = 0
    gateway: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    # Not persisted: tags changed since the last save, and how many tags are active.
    dirty_tags: set[str] = field(default_factory=set, repr=False, compare=False)
    active_count: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.active_count = sum(t.active for t in self.tags.values())

    @property
    def active(self) -> bool:
        """True until cleared."""
        return self.cleared_ms is None

    @property
    def acknowledged(self) -> bool:
        """True once someone acknowledged the current colour."""
        return self.acked_ms is not None

    def shelved(self, now_ms: int) -> bool:
        """True while a shelve/silence is in force."""
        return self.shelved_until_ms is not None and now_ms < self.shelved_until_ms

    def active_tags(self) -> list[str]:
        """Tags still in alarm, sorted."""
        return sorted(t.tag for t in self.tags.values() if t.active)

    def set_tag(self, tag: str, create: TagState | None = None, **changes: Any) -> TagState:
        """Change fields of `tag` (added as `create`, or blank, when missing); marks it dirty."""
        entry = self.tags.get(tag)
        if entry is None:
            entry = self.tags[tag] = create if create is not None else TagState(tag)
            self.dirty_tags.add(tag)
            self.active_count += entry.active
        was_active = entry.active
        for name, value in changes.items():
            if getattr(entry, name) != value:
                setattr(entry, name, value)
                self.dirty_tags.add(tag)
        self.active_count += entry.active - was_active
        return entry

    def adopt_tags(self, tags: dict[str, TagState]) -> None:
        """Take over another alert's tags (a blue alarm notice grown into a colour warning)."""
        self.tags = tags
        self.dirty_tags = set(tags)
        self.active_count = sum(t.active for t in tags.values())

    def record(self, ts_ms: int, action: str, user: str = "system", **detail: Any) -> None:
        """Append one entry to the audit history."""
        self.history.append({"ts_ms": ts_ms, "action": action, "user": user, **detail})

    def header(self) -> dict[str, Any]:
        """JSON-able state without tags and history (colours and tiers by name)."""
        data = {name: getattr(self, name) for name in _HEADER}
        data["colour"] = self.colour.label
        data["max_colour"] = self.max_colour.label
        data["notified"] = sorted(t.label for t in self.notified)
        data["feedback"] = asdict(self.feedback) if self.feedback is not None else None
        return data

    def to_dict(self) -> dict[str, Any]:
        """The whole JSON-able state: header, tags and history."""
        data = self.header()
        data["tags"] = {k: asdict(v) for k, v in self.tags.items()}
        data["history"] = [dict(step) for step in self.history]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        """Inverse of `to_dict` (tags and history may be absent: a bare header)."""
        values = {name: data[name] for name in _HEADER if name in data}
        values["colour"] = RiskColour.parse(data["colour"])
        values["max_colour"] = RiskColour.parse(data["max_colour"])
        values["notified"] = {Tier[name.upper()] for name in data["notified"]}
        values["tags"] = {k: TagState(**v) for k, v in data.get("tags", {}).items()}
        values["history"] = list(data.get("history", ()))
        values["feedback"] = Feedback(**data["feedback"]) if data.get("feedback") else None
        return cls(**values)

    def summary(self) -> dict[str, Any]:
        """The API view: identity, colour, deadlines and progress, without the history."""
        data = self.header()
        data["tags"] = {k: asdict(v) for k, v in self.tags.items()}
        data["active_tags"] = self.active_tags()
        return data


_HEADER = tuple(
    f.name for f in fields(Alert) if f.name not in ("tags", "history", "dirty_tags", "active_count")
)
