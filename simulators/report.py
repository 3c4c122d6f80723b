"""The self-contained HTML report: per hazard source, its tags over time with limits, the risk
colour as a band, alarm and alert markers, and a summary table. Inline SVG only: no scripts, no
CDN, opens from a mail attachment or an air-gapped control-room PC.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from hazardwatch.plant.model import Plant
from hazardwatch.types import Reading
from simulators.recording import parse_ts

COLOURS = {"blue": "#2f6fd6", "yellow": "#f2c200", "orange": "#f07f13", "red": "#d62f2f"}
WIDTH, PLOT_H, BAND_H, MARGIN = 960, 120, 14, 60
MAX_POINTS = 600  # per tag; min/max per pixel bucket keeps spikes visible


@dataclass
class SourceReport:
    """What one hazard source's section shows."""

    source: str
    name: str
    tags: list[str] = field(default_factory=list)
    risk: list[tuple[int, str]] = field(default_factory=list)  # (ts, colour) changes
    alarms: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)


def _fmt(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _minutes(ms: int) -> str:
    return f"{ms / 60000:.1f} min"


def _downsample(ts: np.ndarray, v: np.ndarray, t0: int, t1: int) -> tuple[np.ndarray, np.ndarray]:
    if ts.shape[0] <= MAX_POINTS:
        return ts, v
    bucket = ((ts - t0) * (MAX_POINTS // 2) // max(t1 - t0, 1)).astype(np.int64)
    edges = np.flatnonzero(np.diff(bucket)) + 1
    keep: list[int] = []
    for a, b in zip([0, *edges.tolist()], [*edges.tolist(), ts.shape[0]], strict=True):
        seg = v[a:b]
        lo, hi = a + int(np.argmin(seg)), a + int(np.argmax(seg))
        keep += sorted({lo, hi})
    idx = np.array(keep)
    return ts[idx], v[idx]


def _tag_svg(
    tag: str,
    ts: np.ndarray,
    v: np.ndarray,
    t0: int,
    t1: int,
    limits: Sequence[tuple[str, float]],
    markers: Sequence[tuple[int, str, str]],
) -> str:
    span_t = max(t1 - t0, 1)
    values = list(v) + [value for _, value in limits]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    pad = (hi - lo) * 0.08
    lo, hi = lo - pad, hi + pad

    def x(t: float) -> float:
        return MARGIN + (t - t0) / span_t * (WIDTH - MARGIN - 10)

    def y(value: float) -> float:
        return 6 + (hi - value) / (hi - lo) * (PLOT_H - 12)

    ds_t, ds_v = _downsample(ts, v, t0, t1)
    path = " ".join(f"{x(t):.1f},{y(val):.1f}" for t, val in zip(ds_t, ds_v, strict=True))
    parts = [f'<svg width="{WIDTH}" height="{PLOT_H}" role="img" aria-label="{html.escape(tag)}">',
             f'<rect x="{MARGIN}" y="0" width="{WIDTH - MARGIN - 10}" height="{PLOT_H}" '
             'fill="#fafafa" stroke="#ddd"/>',
             f'<text x="4" y="14" font-size="11">{html.escape(tag)}</text>',
             f'<text x="4" y="{PLOT_H - 4}" font-size="9" fill="#666">'
             f"{lo:.4g}…{hi:.4g}</text>"]  # fmt: skip
    for key, value in limits:
        colour = "#d62f2f" if key in ("HH", "LL") else "#f07f13"
        level = f"{y(value):.1f}"
        parts.append(f'<line x1="{MARGIN}" x2="{WIDTH - 10}" y1="{level}" y2="{level}" '
                     f'stroke="{colour}" stroke-dasharray="4 3">'
                     f"<title>{key} {value:g}</title></line>")  # fmt: skip
    if path:
        parts.append(f'<polyline fill="none" stroke="#222" stroke-width="1" points="{path}"/>')
    for at, label, colour in markers:
        at_x = f"{x(at):.1f}"
        parts.append(f'<line x1="{at_x}" x2="{at_x}" y1="0" y2="{PLOT_H}" stroke="{colour}" '
                     f'stroke-width="1.5"><title>{html.escape(label)}</title></line>')  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def _band_svg(risk: Sequence[tuple[int, str]], t0: int, t1: int) -> str:
    span_t = max(t1 - t0, 1)
    scale = (WIDTH - MARGIN - 10) / span_t
    parts = [f'<svg width="{WIDTH}" height="{BAND_H}" role="img" aria-label="risk colour">']
    changes = [(t0, "blue"), *risk]
    for (start, colour), (end, _) in zip(changes, [*changes[1:], (t1, "")], strict=True):
        x0 = MARGIN + max(start - t0, 0) * scale
        w = max((min(end, t1) - max(start, t0)) * scale, 0)
        parts.append(f'<rect x="{x0:.1f}" y="0" width="{w:.1f}" height="{BAND_H}" '
                     f'fill="{COLOURS.get(colour, "#999")}"><title>{colour} from {_fmt(start)}'
                     "</title></rect>")  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def _summary_rows(section: SourceReport, t0: int) -> list[str]:
    first_alarm = next((a for a in section.alarms if a.get("state") == "unacknowledged"), None)
    reached: dict[str, int] = {}
    for at, colour in section.risk:
        reached.setdefault(colour, at)
    tiers: dict[str, int] = defaultdict(int)
    acks = []
    for alert in section.alerts:
        for tier in alert.get("tiers", []) or []:
            tiers[str(tier)] += 1
        if alert.get("state") == "acknowledged" and "raised_ms" in alert:
            acks.append(alert["_ts"] - alert["raised_ms"])
    cells = [
        html.escape(section.source),
        html.escape(
            f"{first_alarm['tag']} {first_alarm['condition']} at {_fmt(first_alarm['_ts'])}"
        )
        if first_alarm
        else "—",
    ]
    for colour in ("yellow", "orange", "red"):
        cells.append(_minutes(reached[colour] - t0) if colour in reached else "—")
    cells.append(", ".join(f"{k}: {n}" for k, n in sorted(tiers.items())) or "—")
    cells.append(", ".join(_minutes(a) for a in acks) or "—")
    return cells


def render(
    events: Iterable[Mapping[str, Any]],
    readings: Iterable[Reading],
    plant: Plant | None = None,
    title: str = "hazardwatch report",
) -> str:
    """The whole HTML page as a string."""
    by_tag: dict[str, tuple[list[int], list[float]]] = defaultdict(lambda: ([], []))
    for r in readings:
        series = by_tag[r.tag]
        series[0].append(r.ts_ms)
        series[1].append(r.v)
    sections: dict[str, SourceReport] = {}
    tag_source: dict[str, str] = {}
    limits: dict[str, list[tuple[str, float]]] = {}
    if plant is not None:
        for hs in plant.hazard_sources:
            sections[hs.id] = SourceReport(hs.id, hs.name)
        for rt in plant.resolved_tags():
            tag_source[rt.id] = rt.source
            sections[rt.source].tags.append(rt.id)
            limits[rt.id] = [(spec.key, spec.value) for spec in rt.limits]
    all_events = []
    for event in events:
        item = dict(event)
        item["_ts"] = parse_ts(item["ts"])
        all_events.append(item)
        source = item.get("source")
        if not source:
            continue
        section = sections.setdefault(source, SourceReport(source, source))
        if item["type"] == "alarm":
            section.alarms.append(item)
            if item.get("tag") and item["tag"] not in section.tags:
                section.tags.append(item["tag"])
        elif item["type"] == "risk" and item.get("level", "source") == "source":
            section.risk.append((item["_ts"], item["colour"]))
        elif item["type"] == "alert":
            section.alerts.append(item)
    stamps = [t for ts, _ in by_tag.values() for t in (ts[0], ts[-1]) if ts]
    stamps += [e["_ts"] for e in all_events]
    t0, t1 = (min(stamps), max(stamps)) if stamps else (0, 1)
    body = [f"<h1>{html.escape(title)}</h1>",
            f"<p>{_fmt(t0)} → {_fmt(t1)} UTC · {len(all_events)} events · "
            f"{sum(len(s[0]) for s in by_tag.values())} readings</p>",
            "<h2>Summary</h2><table><tr><th>hazard source</th><th>first alarm</th>"
            "<th>to yellow</th><th>to orange</th><th>to red</th><th>alerts per tier</th>"
            "<th>acknowledged after</th></tr>"]  # fmt: skip
    for section in sections.values():
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in _summary_rows(section, t0)) + "</tr>")
    body.append("</table>")
    for section in sections.values():
        if not section.tags and not section.risk:
            continue
        body.append(f"<h2>{html.escape(section.source)} — {html.escape(section.name)}</h2>")
        body.append(_band_svg(section.risk, t0, t1))
        for tag in section.tags:
            ts_list, v_list = by_tag.get(tag, ([], []))
            markers = [
                (a["_ts"], f"{a['condition']} {a['state']} {_fmt(a['_ts'])}",
                 "#d62f2f" if a.get("severity") in ("S2", "S3") else "#f07f13")
                for a in section.alarms
                if a.get("tag") == tag and a.get("state") == "unacknowledged"
            ] + [(a["_ts"], f"alert {a.get('colour')} {_fmt(a['_ts'])}", "#6a1b9a")
                 for a in section.alerts]  # fmt: skip
            body.append(_tag_svg(tag, np.asarray(ts_list, dtype=np.int64),
                                 np.asarray(v_list, dtype=np.float64), t0, t1,
                                 limits.get(tag, []), markers))  # fmt: skip
    style = ("body{font-family:sans-serif;margin:16px;color:#222}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}svg{display:block;"
             "margin:2px 0}")  # fmt: skip
    head = f"<meta charset='utf-8'><title>{html.escape(title)}</title><style>{style}</style>"
    return f"<!doctype html><html><head>{head}</head><body>{''.join(body)}</body></html>"
