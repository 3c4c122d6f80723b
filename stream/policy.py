"""The engine's view of the risk policy: plain integers in milliseconds, no pydantic.

`EnginePolicy()` carries the DOMAIN.md §4–§5 defaults; `EnginePolicy.from_risk_policy(p)` adapts
the validated `hazardwatch.plant.policy.RiskPolicy` of a policy file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hazardwatch.types import RiskColour, Severity

if TYPE_CHECKING:
    from hazardwatch.plant.policy import RiskPolicy

MINUTE_MS = 60_000

# Colour per unit severity (row S0..S3) and grade column (0: grade 1–2, 1: grade 3–4).
DEFAULT_MATRIX: tuple[tuple[int, int], ...] = (
    (RiskColour.BLUE, RiskColour.BLUE),
    (RiskColour.YELLOW, RiskColour.BLUE),
    (RiskColour.ORANGE, RiskColour.YELLOW),
    (RiskColour.RED, RiskColour.ORANGE),
)


@dataclass(frozen=True, slots=True)
class EnginePolicy:
    """Severity, colour, escalation, flood and chattering settings; times in ms."""

    s3_hold_ms: int = 10 * MINUTE_MS
    two_s2_tags_make_s3: bool = True
    suppress_s1_while_s3: bool = True
    stale_factor: float = 3.0
    escalate_s1_ms: int = 30 * MINUTE_MS
    escalate_s2_ms: int = 10 * MINUTE_MS
    escalate_s3_ms: int = 10 * MINUTE_MS
    escalation_cap: int = int(RiskColour.ORANGE)
    flood_start_above: int = 10
    flood_end_below: int = 5
    flood_window_ms: int = 10 * MINUTE_MS
    chatter_activations: int = 3
    chatter_window_ms: int = MINUTE_MS
    colour_matrix: tuple[tuple[int, int], ...] = DEFAULT_MATRIX

    def escalate_ms(self, severity: int) -> int:
        """Unacknowledged time after which a warning of `severity` (1–3) rises one colour."""
        if severity >= Severity.S3:
            return self.escalate_s3_ms
        return self.escalate_s2_ms if severity == Severity.S2 else self.escalate_s1_ms

    def colour(self, severity: int, grade: int) -> int:
        """Matrix colour of a source of effective `grade` (1–4) at unit `severity` (0–3)."""
        return self.colour_matrix[severity][0 if grade <= 2 else 1]

    @classmethod
    def from_risk_policy(cls, policy: RiskPolicy) -> EnginePolicy:
        """Adapt the policy file's `risk:` section (seconds) to engine milliseconds."""

        def ms(seconds: float) -> int:
            return round(seconds * 1000.0)

        m = policy.colour_matrix
        matrix = tuple((int(row[0]), int(row[1])) for row in (m.none, m.S1, m.S2, m.S3))
        return cls(
            s3_hold_ms=ms(policy.s3_hold_s),
            two_s2_tags_make_s3=policy.two_s2_tags_make_s3,
            suppress_s1_while_s3=policy.suppress_s1_while_s3,
            stale_factor=policy.stale_factor,
            escalate_s1_ms=ms(policy.escalation.s1_after_s),
            escalate_s2_ms=ms(policy.escalation.s2_after_s),
            escalate_s3_ms=ms(policy.escalation.s3_after_s),
            escalation_cap=int(policy.escalation.cap),
            flood_start_above=policy.flood.start_above,
            flood_end_below=policy.flood.end_below,
            flood_window_ms=ms(policy.flood.window_s),
            chatter_activations=policy.chattering.activations,
            chatter_window_ms=ms(policy.chattering.window_s),
            colour_matrix=matrix,
        )
