"""The `routing:` section of a policy file: tiers per colour, deadlines, recipients, the tree.

Everything defaults to DOMAIN.md §6 (policy): blue → enterprise; yellow → + county (acknowledge
1 h, feedback 24 h); orange → + city (30 min, 4 h); red → + province (15 min, 1 h). Orange and
red clearance needs the confirming regulator (default: the tier the colour added, city / province).
Times are seconds. Secrets never live in the file: channels name environment variables
(`secret_env`, `token_env`, `access_key_secret_env`).

`load_routing(path)` validates a policy file's `routing:` section with the plant loader's
machinery, so every error names file, line and field; `check-config` calls it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from alerting.matchers import Matcher, parse_matcher
from hazardwatch.plant.loader import ConfigFileError, ConfigIssue, locate, validate_file
from hazardwatch.plant.policy import Colour
from hazardwatch.types import RiskColour, Tier


def _tier(value: object) -> Tier:
    if isinstance(value, Tier):
        return value
    if isinstance(value, str) and value.strip().upper() in Tier.__members__:
        return Tier[value.strip().upper()]
    raise ValueError("must be one of enterprise, county, city, province")


TierName = Annotated[
    Tier,
    BeforeValidator(_tier),
    PlainSerializer(lambda t: t.label, return_type=str),
    WithJsonSchema({"type": "string", "enum": ["enterprise", "county", "city", "province"]}),
]
Seconds = Annotated[float, Field(gt=0)]
RecipientId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Deadlines(_Frozen):
    """Acknowledge and written-feedback deadlines of one colour; escalation after a reminder."""

    ack_s: Seconds
    feedback_s: Seconds
    escalate_after_s: Seconds | None = None  # after the reminder; default half of ack_s

    @property
    def escalate_after(self) -> float:
        """Seconds between the missed-deadline reminder and the escalation to the next tier."""
        return self.escalate_after_s if self.escalate_after_s is not None else self.ack_s / 2


def _default_tiers() -> dict[RiskColour, tuple[Tier, ...]]:
    ladder = (Tier.ENTERPRISE, Tier.COUNTY, Tier.CITY, Tier.PROVINCE)
    return {colour: ladder[: int(colour)] for colour in RiskColour}


def _default_deadlines() -> dict[RiskColour, Deadlines]:
    return {
        RiskColour.YELLOW: Deadlines(ack_s=3600, feedback_s=86400),
        RiskColour.ORANGE: Deadlines(ack_s=1800, feedback_s=14400),
        RiskColour.RED: Deadlines(ack_s=900, feedback_s=3600),
    }


class WebhookChannel(_Frozen):
    """JSON POST signed with HMAC-SHA256 over `timestamp.body` (see channels/webhook.py)."""

    type: Literal["webhook"]
    url: str = Field(pattern=r"^https?://")
    secret_env: EnvName


class SmsChannel(_Frozen):
    """SMS to `phone` (E.164, +86…) through the named provider of `sms_providers`."""

    type: Literal["sms"]
    phone: str = Field(pattern=r"^\+?[0-9]{6,15}$")
    provider: str


class CommandPlatformChannel(_Frozen):
    """The command platform's JSON API; hazardwatch POSTs to `{url}/warnings/{tier}`."""

    type: Literal["command_platform"]
    url: str = Field(pattern=r"^https?://")
    token_env: EnvName


Channel = Annotated[
    WebhookChannel | SmsChannel | CommandPlatformChannel, Field(discriminator="type")
]
ChannelType = Literal["webhook", "sms", "command_platform"]


class AliyunProvider(_Frozen):
    """Alibaba Cloud SMS, RPC-style `SendSms` (API 2017-05-25) signed with HMAC-SHA1."""

    kind: Literal["aliyun"]
    endpoint: str = "https://dysmsapi.aliyuncs.com/"
    access_key_id: str
    access_key_secret_env: EnvName
    sign_name: str
    template_code: str
    region_id: str = "cn-hangzhou"


class TencentProvider(_Frozen):
    """Tencent Cloud SMS `SendSms` (API 2021-01-11) signed with TC3-HMAC-SHA256."""

    kind: Literal["tencent"]
    endpoint: str = "https://sms.tencentcloudapi.com/"
    secret_id: str
    secret_key_env: EnvName
    sdk_app_id: str
    sign_name: str
    template_id: str
    region: str = "ap-guangzhou"


class GatewayProvider(_Frozen):
    """A generic HTTP SMS gateway: one JSON POST with the text's segments, bearer token."""

    kind: Literal["gateway"]
    endpoint: str = Field(pattern=r"^https?://")
    token_env: EnvName


SmsProvider = Annotated[
    AliyunProvider | TencentProvider | GatewayProvider, Field(discriminator="kind")
]


class RateLimit(_Frozen):
    """At most `count` notifications per recipient in any `per_s` seconds (token bucket)."""

    count: Annotated[int, Field(ge=1)] = 30
    per_s: Seconds = 3600.0


class Recipient(_Frozen):
    """A person or desk at one tier; `area`: enterprise id (enterprise tier) or region code."""

    id: RecipientId
    name: str = ""
    tier: TierName
    area: str
    channels: tuple[Channel, ...] = Field(min_length=1)
    rate_limit: RateLimit | None = None

    @model_validator(mode="after")
    def _area_fits_tier(self) -> Recipient:
        if self.tier is Tier.ENTERPRISE:
            return self
        if not re.fullmatch(r"[1-9]\d{5}", self.area):
            raise ValueError(f"area of a {self.tier.label} recipient is a 6-digit region code")
        if self.tier is Tier.CITY and not self.area.endswith("00"):
            raise ValueError("area of a city recipient ends in 00 (e.g. 410100)")
        if self.tier is Tier.PROVINCE and not self.area.endswith("0000"):
            raise ValueError("area of a province recipient ends in 0000 (e.g. 410000)")
        return self


class Route(_Frozen):
    """A node of the routing tree (Alertmanager-style): matchers, recipients, children.

    `recipients` None inherits the parent's; `["*"]` means every recipient of the tier and area.
    `channels` None inherits; a list restricts delivery to those channel types.
    """

    matchers: tuple[str, ...] = ()
    recipients: tuple[str, ...] | None = None
    channels: tuple[ChannelType, ...] | None = None
    group_by: tuple[str, ...] | None = None
    continue_: bool = Field(default=False, alias="continue")
    routes: tuple[Route, ...] = ()

    @field_validator("matchers")
    @classmethod
    def _parse(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for text in value:
            parse_matcher(text)  # raises ValueError with the reason
        return value

    def parsed_matchers(self) -> tuple[Matcher, ...]:
        """The node's matchers, parsed."""
        return tuple(parse_matcher(text) for text in self.matchers)


class Clearance(_Frozen):
    """消警: which regulator tier confirms the clearance of a colour (orange/red by default)."""

    confirm_tier: dict[Colour, TierName] = Field(
        default_factory=lambda: {RiskColour.ORANGE: Tier.CITY, RiskColour.RED: Tier.PROVINCE}
    )


class DataQuality(_Frozen):
    """Data quality is its own channel: offline > 30 min → county; > 24 h → yellow notice."""

    notify_after_s: Seconds = 1800.0
    notify_tiers: tuple[TierName, ...] = (Tier.COUNTY,)
    yellow_after_s: Seconds = 86400.0


class Flood(_Frozen):
    """More than `start_above` new alarms in `window_s` at one enterprise → one incident."""

    start_above: Annotated[int, Field(ge=1)] = 10
    end_below: Annotated[int, Field(ge=1)] = 5
    window_s: Seconds = 600.0


class Delivery(_Frozen):
    """Outbox retries: exponential backoff with jitter, dead-letter after `max_attempts`."""

    max_attempts: Annotated[int, Field(ge=1)] = 10
    backoff_initial_s: Seconds = 2.0
    backoff_max_s: Seconds = 300.0
    jitter: Annotated[float, Field(ge=0, le=1)] = 0.5
    timeout_s: Seconds = 10.0


class RoutingPolicy(_Frozen):
    """The whole `routing:` section; an empty section routes nowhere but is valid."""

    tiers: dict[Colour, tuple[TierName, ...]] = Field(default_factory=_default_tiers)
    deadlines: dict[Colour, Deadlines] = Field(default_factory=_default_deadlines)
    clearance: Clearance = Clearance()
    data_quality: DataQuality = DataQuality()
    flood: Flood = Flood()
    delivery: Delivery = Delivery()
    rate_limit: RateLimit = RateLimit()
    sms_providers: dict[str, SmsProvider] = Field(default_factory=dict)
    recipients: tuple[Recipient, ...] = ()
    route: Route = Route(recipients=("*",))

    @field_validator("tiers")
    @classmethod
    def _every_colour(cls, value: dict[RiskColour, tuple[Tier, ...]]) -> dict[Any, Any]:
        return {**_default_tiers(), **value}

    def recipient(self, recipient_id: str) -> Recipient:
        """The recipient with this id; KeyError if absent."""
        for recipient in self.recipients:
            if recipient.id == recipient_id:
                return recipient
        raise KeyError(recipient_id)

    def deadlines_for(self, colour: RiskColour) -> Deadlines | None:
        """Deadlines of a colour; None for blue (no acknowledgement required)."""
        return self.deadlines.get(colour)


def routing_problems(policy: RoutingPolicy) -> list[tuple[tuple[str | int, ...], str]]:
    """Cross-reference problems: duplicate ids, unknown recipients or SMS providers."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    seen: set[str] = set()
    for i, recipient in enumerate(policy.recipients):
        if recipient.id in seen:
            problems.append((("recipients", i, "id"), f"duplicate recipient id {recipient.id!r}"))
        seen.add(recipient.id)
        for j, channel in enumerate(recipient.channels):
            if isinstance(channel, SmsChannel) and channel.provider not in policy.sms_providers:
                problems.append(
                    (
                        ("recipients", i, "channels", j, "provider"),
                        f"unknown SMS provider {channel.provider!r}",
                    )
                )

    def walk(route: Route, loc: tuple[str | int, ...]) -> None:
        for k, name in enumerate(route.recipients or ()):
            if name != "*" and name not in seen:
                problems.append(((*loc, "recipients", k), f"unknown recipient {name!r}"))
        for k, child in enumerate(route.routes):
            walk(child, (*loc, "routes", k))

    walk(policy.route, ("route",))
    return problems


class _PolicyFileRouting(_Frozen):
    """A policy file seen from alerting: `routing` typed, `risk` left to the plant package."""

    risk: Any = None
    routing: RoutingPolicy = RoutingPolicy()


def load_routing(path: str | Path) -> RoutingPolicy:
    """Load and check a policy file's `routing:` section; raises ConfigFileError (file:line)."""
    loaded, root, file = validate_file(Path(path), _PolicyFileRouting)
    problems = routing_problems(loaded.routing)
    if problems:
        issues = []
        for loc, message in problems:
            line, field = locate(root, ("routing", *loc))
            issues.append(ConfigIssue(file, line, field, message))
        raise ConfigFileError(issues)
    return loaded.routing


def routing_from_mapping(data: dict[str, Any]) -> RoutingPolicy:
    """Validate an in-memory `routing:` mapping (e.g. PolicyFile.routing); ValueError on error."""
    policy = RoutingPolicy.model_validate(data)
    problems = routing_problems(policy)
    if problems:
        raise ValueError("; ".join(f"{'.'.join(map(str, p))}: {m}" for p, m in problems))
    return policy
