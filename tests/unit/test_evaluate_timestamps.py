"""Bulk RFC 3339 parsing agrees with `datetime.fromisoformat` wherever it claims a string, and
declines (so the caller parses one by one) whatever it cannot vouch for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from hazardwatch.commands.evaluate_timestamps import Timestamps, rfc3339_ms

# naive on purpose: wall-clock fields, the offset is drawn separately
moments = st.datetimes(datetime(1899, 12, 30), datetime(2200, 1, 2))  # noqa: DTZ001
offsets = st.sampled_from([None, 0, 8 * 60, -(3 * 60 + 30), 23 * 60 + 59, -(23 * 60 + 59)])
fractions = st.sampled_from(["", ".5", ".05", ".050", ".999", ".123456", ".1234"])
JUNK = ["2024-02-30T00:00:00Z", "2023-02-29T00:00:00Z", "2024-02-29T00:00:00Z",
        "2024-13-01T00:00:00Z", "2024-05-01T24:00:00Z", "2024-05-01T08:60:00Z",
        "2024-05-01T08:00:60Z", "2024-05-01T08:00:00+24:00", "2024-05-01T08:00:00+08:60",
        "2024-05-01T08:00:00", "2024-05-01 08:00:00Z", "2024-05-01t08:00:00z",
        "2024-05-01T08:00:00.+08:00", "2024-05-01T08:00:0x+08:00", "２024-05-01T08:00:00Z",
        "2024-05-01T08:00:00Z\x00", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59+00:00",
        "2024-05-01T08:00:00.05-00:00", "1900-01-01T00:00:00+01:00", "2100-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z", "2000-02-29T12:00:00Z", "2024-04-31T00:00:00Z", ""]  # fmt: skip


def _text(moment: datetime, frac: str, offset: int | None) -> str:
    zone = "Z"
    if offset is not None:
        sign = "-" if offset < 0 else "+"
        zone = f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + frac + zone


def _reference(text: str) -> int | None:
    try:
        return Timestamps.parse(text)
    except (ValueError, OverflowError):
        return None


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(moments, fractions, offsets), min_size=1, max_size=40),
       st.lists(st.sampled_from(JUNK), max_size=10))  # fmt: skip
def test_bulk_parse_matches_fromisoformat(rows: list[tuple[datetime, str, int | None]],
                                          junk: list[str]) -> None:  # fmt: skip
    texts = [_text(*row) for row in rows] + junk
    ms, ok = rfc3339_ms(texts)
    for text, value, claimed in zip(texts, ms.tolist(), ok.tolist(), strict=True):
        if claimed:
            assert value == _reference(text), text


def test_common_layouts_are_taken_in_bulk() -> None:
    moment = datetime(2024, 5, 1, 8, 0, 7, 50_000, tzinfo=timezone(timedelta(hours=8)))
    texts = [moment.isoformat(timespec="milliseconds"), "2024-05-01T00:00:07Z",
             "2024-02-29T23:59:59.5-03:30", "2024-05-01T00:00:07.123456Z",
             "2024-02-30T00:00:00Z"]  # fmt: skip
    ms, ok = rfc3339_ms(texts)
    assert ok.tolist() == [True, True, True, False, False]
    assert ms[0] == round(moment.astimezone(UTC).timestamp() * 1000)
    assert ms[2] == round(datetime.fromisoformat(texts[2]).timestamp() * 1000)


def test_every_tricky_string_is_declined_or_parsed_exactly() -> None:
    ms, ok = rfc3339_ms(JUNK)
    for text, value, claimed in zip(JUNK, ms.tolist(), ok.tolist(), strict=True):
        if claimed:
            assert value == _reference(text), text
        else:
            assert text != "2000-02-29T12:00:00Z"  # a valid leap day must be taken in bulk
