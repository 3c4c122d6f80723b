"""What a notification says: the `Notice` record, Chinese texts and SMS segmenting.

A Notice is channel-independent and JSON-serialisable (it is stored in the outbox); channels
render it: the webhook sends it as JSON, SMS providers fill their template variables or send
`sms_text(notice)` split into segments by `segment_sms`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hazardwatch.types import RiskColour, Tier

BEIJING = timezone(timedelta(hours=8), "CST")

KIND_TITLES = {
    "raise": "预警",
    "update": "预警变更",
    "reminder": "催办：预警未确认",
    "escalation": "升级：预警超时未确认",
    "normal": "恢复正常",
    "cleared": "已消警",
    "alarm": "报警",
    "flood": "报警泛滥",
    "flood_end": "报警泛滥结束",
    "data_quality": "数据质量",
    "delivery_failure": "推送失败",
    "feedback_overdue": "催办：未按时反馈",
}

_ACTIONS = {
    RiskColour.BLUE: "请现场核查并处置",
    RiskColour.YELLOW: "请立即核查处置，落实管控措施",
    RiskColour.ORANGE: "请立即组织处置，加强监测并报告",
    RiskColour.RED: "请立即启动应急预案，撤离无关人员",
}


@dataclass(frozen=True, slots=True)
class TagValue:
    """A monitoring point in alarm: condition (HH, LEL2, stale …), value in `unit`."""

    tag: str
    condition: str = ""
    value: float | None = None
    unit: str = ""
    name: str = ""


@dataclass(frozen=True, slots=True)
class Notice:
    """The content of one notification; times are epoch ms UTC, None when not applicable."""

    kind: str
    alert_id: str
    enterprise: str
    enterprise_name: str
    ts_ms: int
    source: str | None = None
    source_name: str | None = None
    colour: RiskColour | None = None
    tags: tuple[TagValue, ...] = ()
    ack_due_ms: int | None = None
    feedback_due_ms: int | None = None
    detail: str = ""
    tier: Tier | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: colours and tiers as their lower-case names."""
        data = asdict(self)
        data["colour"] = self.colour.label if self.colour is not None else None
        data["tier"] = self.tier.label if self.tier is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Notice:
        """Inverse of `to_dict`."""
        values = dict(data)
        values["colour"] = RiskColour.parse(data["colour"]) if data.get("colour") else None
        values["tier"] = Tier[data["tier"].upper()] if data.get("tier") else None
        values["tags"] = tuple(TagValue(**t) for t in data.get("tags", ()))
        return cls(**values)


def beijing_time(ts_ms: int) -> str:
    """`MM-DD HH:MM` in Beijing time (UTC+8), the form users read in SMS."""
    moment = datetime.fromtimestamp(ts_ms / 1000, UTC).astimezone(BEIJING)
    return moment.strftime("%m-%d %H:%M")


def format_value(value: float | None, unit: str) -> str:
    """`17.62 m`, `35 %LEL`; `—` when the value is unknown."""
    if value is None:
        return "—"
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{text}{unit}" if unit.startswith("°") else f"{text} {unit}".rstrip()


def action_text(notice: Notice) -> str:
    """What the recipient must do, with the deadlines."""
    if notice.kind == "cleared":
        return "预警已解除，无需操作"
    if notice.kind == "normal":
        return "监测值已恢复，请填报原因和措施后申请消警"
    if notice.kind == "data_quality":
        return "请核查网关通信和供电，尽快恢复数据上传"
    if notice.kind == "delivery_failure":
        return "请通过其他方式联系责任人确认预警"
    text = _ACTIONS.get(notice.colour or RiskColour.BLUE, _ACTIONS[RiskColour.BLUE])
    if notice.ack_due_ms is not None:
        text += f"，{beijing_time(notice.ack_due_ms)}前确认"
    if notice.feedback_due_ms is not None:
        text += f"，{beijing_time(notice.feedback_due_ms)}前反馈原因和措施"
    return text


def template_params(notice: Notice) -> dict[str, str]:
    """Variables of the registered SMS template: enterprise, source, colour, value, time, action."""
    first = notice.tags[0] if notice.tags else None
    value = ""
    if first is not None:
        reading = format_value(first.value, first.unit)
        value = f"{first.name or first.tag} {first.condition} {reading}"
    colour = f"{notice.colour.chinese}色" if notice.colour is not None else ""
    return {
        "enterprise": notice.enterprise_name,
        "source": notice.source_name or notice.source or "",
        "colour": colour,
        "value": value.strip(),
        "time": beijing_time(notice.ts_ms),
        "action": action_text(notice),
    }


def sms_text(notice: Notice) -> str:
    """The whole Chinese SMS text, e.g. `【橙色预警】某公司 一号储罐区：T101-LT HH 17.6 m …`."""
    params = template_params(notice)
    title = KIND_TITLES.get(notice.kind, notice.kind)
    head = f"【{params['colour']}{title}】" if params["colour"] else f"【{title}】"
    where = " ".join(p for p in (params["enterprise"], params["source"]) if p)
    body = f"{head}{where}"
    if params["value"]:
        body += f"：{params['value']}"
    if notice.detail:
        body += f"；{notice.detail}"
    body += f"（{params['time']}）。{params['action']}。"
    return body


_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)


def _utf16_units(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1


def segment_sms(text: str) -> list[str]:
    """Split into SMS parts: GSM-7 160 single / 153 per part; UCS-2 70 single / 67 per part.

    Lengths count UTF-16 code units (a character outside the BMP takes two), and a part never
    splits such a character. An empty text is one empty part.
    """
    if all(c in _GSM7 for c in text):
        single, part = 160, 153
    else:
        single, part = 70, 67
    if sum(_utf16_units(c) for c in text) <= single:
        return [text]
    parts: list[str] = []
    current, used = "", 0
    for char in text:
        units = _utf16_units(char)
        if used + units > part:
            parts.append(current)
            current, used = "", 0
        current += char
        used += units
    parts.append(current)
    return parts
