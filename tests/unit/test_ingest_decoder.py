"""The pure decoder: every rejection reason, partial acceptance, identity and columnar output."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from ingest.decoder import Decoder, DecoderLimits
from ingest.protocol import encode_batch, encode_compact, encode_status, status_topic
from ingest.protocol import telemetry_topic as topic_of
from ingest.reasons import Reason
from ingest.results import MessageKind, columns_of
from tests.unit.ingest_plants import NOW_MS, PREFIX, directory

G1 = topic_of(PREFIX, "E1", "G1")


def decoder(**limits: int) -> Decoder:
    return Decoder(directory(), PREFIX, DecoderLimits(**limits))


def body(**overrides: object) -> bytes:
    """A valid G1 message (T1 = 1.5 at NOW) with fields replaced or removed (value None)."""
    data: dict[str, object] = {
        "v": 1,
        "gw": "G1",
        "seq": 7,
        "sent": NOW_MS,
        "points": [{"tag": "T1", "v": 1.5, "ts": NOW_MS}],
    }
    for key, value in overrides.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    return orjson.dumps(data)


def point(**fields: object) -> bytes:
    """A G1 message with one good T2 point and one T1 point with the given fields."""
    bad = {"tag": "T1", "v": 1.0, "ts": NOW_MS, **fields}
    return body(points=[{k: v for k, v in bad.items() if v is not None}, {"tag": "T2", "v": 2}])


MESSAGE_CASES = [
    ("oversize", G1, b"{" + b" " * 300 + b"}", Reason.OVERSIZE, "payload"),
    ("topic without kind", f"{PREFIX}/E1/G1", body(), Reason.BAD_TOPIC, "topic"),
    ("topic other prefix", "other/E1/G1/telemetry", body(), Reason.BAD_TOPIC, "topic"),
    ("topic bad kind", f"{PREFIX}/E1/G1/config", body(), Reason.BAD_TOPIC, "topic"),
    ("not utf-8", G1, b'{"v": "\xff\xfe"}', Reason.INVALID_UTF8, "payload"),
    ("not json", G1, b'{"v": 1,', Reason.INVALID_JSON, "payload"),
    ("array payload", G1, b"[1, 2]", Reason.WRONG_TYPE, "payload"),
    ("no version", G1, body(v=None), Reason.MISSING_FIELD, "v"),
    ("version 2", G1, body(v=2), Reason.UNSUPPORTED_VERSION, "v"),
    ("gw number", G1, body(gw=5), Reason.WRONG_TYPE, "gw"),
    ("gw differs from topic", G1, body(gw="G2"), Reason.GATEWAY_MISMATCH, "gw"),
    ("seq missing", G1, body(seq=None), Reason.MISSING_FIELD, "seq"),
    ("seq string", G1, body(seq="7"), Reason.WRONG_TYPE, "seq"),
    ("seq negative", G1, body(seq=-1), Reason.WRONG_TYPE, "seq"),
    ("seq boolean", G1, body(seq=True), Reason.WRONG_TYPE, "seq"),
    ("sent local time", G1, body(sent="2024-05-01T08:00:00"), Reason.BAD_TIME, "sent"),
    ("no points", G1, body(points=None), Reason.MISSING_FIELD, "points"),
    ("points object", G1, body(points={"tag": "T1"}), Reason.WRONG_TYPE, "points"),
    ("compact lengths", G1, body(points=None, tags=["T1", "T2"], vals=[1], ts=NOW_MS),
     Reason.ARRAY_LENGTH_MISMATCH, "tags"),
    ("compact no vals", G1, body(points=None, tags=["T1"], ts=NOW_MS), Reason.MISSING_FIELD,
     "vals"),
    ("compact shared ts bad", G1, body(points=None, tags=["T1"], vals=[1], ts="soon"),
     Reason.BAD_TIME, "ts"),
    ("too many points", G1, body(points=[{"tag": "T1", "v": 1, "ts": NOW_MS}] * 3),
     Reason.TOO_MANY_POINTS, "points"),
    ("unknown gateway", topic_of(PREFIX, "E1", "GX"), body(gw="GX"), Reason.UNKNOWN_GATEWAY,
     "gw"),
    ("gateway of another enterprise", topic_of(PREFIX, "E2", "G1"), body(),
     Reason.ENTERPRISE_MISMATCH, "topic"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "topic", "payload", "reason", "part"), MESSAGE_CASES)
def test_message_level_rejection_refuses_whole_message_with_reason(
    case: str, topic: str, payload: bytes, reason: Reason, part: str
) -> None:
    dec = decoder(max_payload_bytes=200, max_points=2)
    result = dec.decode(topic, payload, NOW_MS)
    assert result.accepted == 0
    assert [(r.reason, r.part) for r in result.rejections] == [(reason, part)], case
    assert result.dead_letter
    assert dec.counters[reason] == 1
    assert dec.counters.messages_with_rejections == 1


POINT_CASES = [
    ("unknown tag", point(tag="NOPE"), Reason.UNKNOWN_TAG, "points[0].tag"),
    ("tag of sibling gateway", point(tag="T3"), Reason.TAG_NOT_ON_GATEWAY, "points[0].tag"),
    ("tag of other enterprise", point(tag="U1"), Reason.CROSS_ENTERPRISE_TAG, "points[0].tag"),
    ("tag missing", point(tag=None), Reason.MISSING_FIELD, "points[0].tag"),
    ("tag number", point(tag=3), Reason.WRONG_TYPE, "points[0].tag"),
    ("NaN literal", body(points=[]).replace(b"[]", b'[{"tag":"T1","v":NaN,"ts":1714550400000},'
                                                   b'{"tag":"T2","v":2}]'),
     Reason.NOT_FINITE, "points[0].v"),
    ("overflow to inf", body(points=[]).replace(b"[]", b'[{"tag":"T1","v":-1e999,"ts":1},'
                                                       b'{"tag":"T2","v":2}]'),
     Reason.NOT_FINITE, "points[0].v"),
    ("null value", point(v=[]).replace(b"[]", b"null"), Reason.NOT_FINITE, "points[0].v"),
    ("string value", point(v="1.5"), Reason.WRONG_TYPE, "points[0].v"),
    ("boolean value", point(v=True), Reason.WRONG_TYPE, "points[0].v"),
    ("value missing", point(v=None), Reason.MISSING_FIELD, "points[0].v"),
    ("ts without offset", point(ts="2024-05-01 08:00:00"), Reason.BAD_TIME, "points[0].ts"),
    ("ts in future", point(ts=NOW_MS + 5 * 60_000 + 1), Reason.TIME_IN_FUTURE, "points[0].ts"),
    ("ts too old", point(ts=NOW_MS - 7 * 86_400_000 - 1), Reason.TIME_TOO_OLD, "points[0].ts"),
    ("ts in seconds", point(ts=NOW_MS // 1000), Reason.TIME_TOO_OLD, "points[0].ts"),
    ("quality string", point(q="good"), Reason.BAD_QUALITY, "points[0].q"),
    ("quality beyond int8", point(q=128), Reason.BAD_QUALITY, "points[0].q"),
    ("point not object", body(points=["T1", {"tag": "T2", "v": 2}]), Reason.WRONG_TYPE,
     "points[0]"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "payload", "reason", "part"), POINT_CASES)
def test_bad_point_is_refused_alone_and_good_point_kept(
    case: str, payload: bytes, reason: Reason, part: str
) -> None:
    # the good point has no `ts`: patch it in so only the bad point can fail
    payload = payload.replace(b'{"tag":"T2","v":2}', b'{"tag":"T2","v":2,"ts":1714550400000}')
    dec = decoder()
    result = dec.decode(G1, payload, NOW_MS)
    assert [(r.reason, r.part) for r in result.rejections] == [(reason, part)], case
    assert [(r.tag, r.v) for r in result.readings()] == [("T2", 2.0)]
    assert dec.counters[reason] == 1
    assert dec.counters.readings_accepted == 1


def test_every_reason_has_a_case() -> None:
    covered = {c[3] for c in MESSAGE_CASES} | {c[2] for c in POINT_CASES}
    sequence = {Reason.DUPLICATE_SEQUENCE, Reason.REPLAYED_SEQUENCE}  # test_ingest_sequence
    assert set(Reason) - covered - sequence == {Reason.DECODER_ERROR}


def test_rfc3339_with_offset_equals_epoch_ms() -> None:
    dec = decoder()
    payload = body(points=[{"tag": "T1", "v": 4, "ts": "2024-05-01T16:00:00.250+08:00"}])
    (reading,) = dec.decode(G1, payload, NOW_MS).readings()
    assert reading.ts_ms == NOW_MS + 250
    assert reading.gw == "G1"


def test_encode_batch_round_trips_through_decoder_to_columns() -> None:
    dec = decoder()
    points = [("T1", NOW_MS - 1000, 3.25, 0), ("T2", NOW_MS, -1.0, 5)]
    first = dec.decode(G1, encode_batch("G1", 1, NOW_MS, points), NOW_MS)
    second = dec.decode(G1, encode_compact("G1", 2, NOW_MS, points), NOW_MS)
    assert first.rejections == second.rejections == ()
    cols = columns_of([first, second])
    assert cols.tag_index.dtype == np.int32 and cols.ts_ms.dtype == np.int64
    assert cols.value.dtype == np.float64 and cols.quality.dtype == np.int8
    # tag index follows plant.resolved_tags(): T1 = 0, T2 = 1
    assert cols.tag_index.tolist() == [0, 1, 0, 1]
    assert cols.ts_ms.tolist() == [NOW_MS - 1000, NOW_MS] * 2
    assert cols.value.tolist() == [3.25, -1.0] * 2
    assert cols.quality.tolist() == [0, 5] * 2
    assert len(first.columns()) == 2


def test_compact_form_with_shared_time_and_quality() -> None:
    payload = body(points=None, tags=["T1", "T2"], vals=[1, 2.5], ts=NOW_MS, q=[0, 1])
    result = decoder().decode(G1, payload, NOW_MS)
    assert [(r.tag, r.ts_ms, r.v, r.q) for r in result.readings()] == [
        ("T1", NOW_MS, 1.0, 0),
        ("T2", NOW_MS, 2.5, 1),
    ]


def test_compact_form_bad_value_names_its_array_index() -> None:
    payload = body(points=None, tags=["T1", "T2"], vals=[1, "x"], ts=[NOW_MS, NOW_MS])
    result = decoder().decode(G1, payload, NOW_MS)
    assert [(r.reason, r.part) for r in result.rejections] == [(Reason.WRONG_TYPE, "vals[1]")]
    assert result.accepted == 1


def test_status_message_decodes_state() -> None:
    topic = status_topic(PREFIX, "E1", "G2")
    result = decoder().decode(topic, encode_status("G2", "offline", NOW_MS), NOW_MS)
    assert result.kind is MessageKind.STATUS and result.rejections == ()
    assert result.status is not None
    assert (result.status.gateway, result.status.state, result.status.ts_ms) == (
        "G2",
        "offline",
        NOW_MS,
    )


def test_status_with_unknown_state_is_refused() -> None:
    topic = status_topic(PREFIX, "E1", "G2")
    payload = orjson.dumps({"v": 1, "gw": "G2", "state": "sleeping", "ts": NOW_MS})
    result = decoder().decode(topic, payload, NOW_MS)
    assert [(r.reason, r.part) for r in result.rejections] == [(Reason.WRONG_TYPE, "state")]


def test_cross_enterprise_publishing_is_refused_both_ways() -> None:
    dec = decoder()
    # E2's gateway claiming to be in E1's topic tree
    spoof = dec.decode(topic_of(PREFIX, "E1", "H1"), body(gw="H1"), NOW_MS)
    assert [r.reason for r in spoof.rejections] == [Reason.ENTERPRISE_MISMATCH]
    # E2's gateway, in its own tree, publishing E1's tag
    points = [{"tag": "T1", "v": 1, "ts": NOW_MS}, {"tag": "U1", "v": 2, "ts": NOW_MS}]
    foreign = dec.decode(topic_of(PREFIX, "E2", "H1"), body(gw="H1", points=points), NOW_MS)
    assert [(r.reason, r.part) for r in foreign.rejections] == [
        (Reason.CROSS_ENTERPRISE_TAG, "points[0].tag")
    ]
    assert [r.tag for r in foreign.readings()] == ["U1"]


def test_a_flood_of_topic_names_does_not_change_verdicts_on_real_ones() -> None:
    # Topic splits are cached (bounded); thousands of made-up gateways must neither grow it
    # without bound nor disturb the verdict on a real gateway's topic, before or after eviction.
    dec = decoder()
    first = dec.decode(G1, body(seq=1), NOW_MS)
    refused = [
        dec.decode(topic_of(PREFIX, "E1", f"X{i}"), body(seq=1), NOW_MS) for i in range(5000)
    ]
    again = dec.decode(G1, body(seq=2), NOW_MS)
    assert first.accepted == again.accepted == 1
    assert {r.rejections[0].reason for r in refused} == {Reason.GATEWAY_MISMATCH}
    assert dec.decode(f"{PREFIX}/E1/G1/config", body(seq=3), NOW_MS).rejections[0].reason is (
        Reason.BAD_TOPIC
    )
    assert len(dec._topics) <= 4096
