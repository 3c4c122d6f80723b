"""Hypothesis fuzzing of the decoder: never an exception, always a verdict that adds up."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.decoder import Decoder
from ingest.protocol import encode_batch, telemetry_topic
from ingest.reasons import Reason
from ingest.results import Decoded
from tests.unit.ingest_plants import NOW_MS, PREFIX, directory

G1 = telemetry_topic(PREFIX, "E1", "G1")
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["T1", "T2", "T3", "U1", "G1", "2024-05-01T08:00:00Z", NOW_MS]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


def check_verdict(result: Decoded, payload_points: int | None = None) -> None:
    """A verdict is consistent: counted, no internal error, columns aligned."""
    assert all(r.reason is not Reason.DECODER_ERROR for r in result.rejections), result
    assert len(result.tag_index) == len(result.ts_ms) == len(result.values) == len(result.quality)
    assert result.accepted > 0 or result.rejections or payload_points in (0, None)
    if payload_points is not None and result.seq is not None:
        # every point is either accepted or refused with a reason: nothing lost silently
        assert result.accepted + len(result.rejections) == payload_points
    result.to_json()  # printable, as `hazardwatch decode` shows it
    orjson.dumps(result.to_json())


@FUZZ
@given(
    payload=st.binary(max_size=300), topic=st.sampled_from([G1, "hw/v1/x", "hw/v1/E1/G1/status"])
)
def test_random_bytes_get_a_verdict(payload: bytes, topic: str) -> None:
    check_verdict(Decoder(directory(), PREFIX).decode(topic, payload, NOW_MS))


def valid_message() -> dict[str, Any]:
    return orjson.loads(
        encode_batch("G1", 5, NOW_MS, [("T1", NOW_MS, 1.0, 0), ("T2", NOW_MS - 5, 2.0, 1)])
    )


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A valid message with some header fields or point fields replaced, added or removed."""
    message = valid_message()
    for _ in range(draw(st.integers(1, 4))):
        target = draw(st.sampled_from(["header", "point", "points"]))
        if target == "header":
            key = draw(st.sampled_from(["v", "gw", "seq", "sent", "points", "tags", "extra"]))
            if draw(st.booleans()):
                message.pop(key, None)
            else:
                message[key] = draw(json_values)
        elif target == "points":
            message["points"] = draw(st.lists(json_values, max_size=5))
        elif isinstance(message.get("points"), list) and message["points"]:
            points = message["points"]
            index = draw(st.integers(0, len(points) - 1))
            if isinstance(points[index], dict):
                key = draw(st.sampled_from(["tag", "v", "ts", "q"]))
                points[index][key] = draw(json_values)
    return message


@FUZZ
@given(message=mutated())
def test_structured_mutations_of_valid_payloads_get_a_verdict(message: dict[str, Any]) -> None:
    try:
        payload = orjson.dumps(message)
    except TypeError:  # integers beyond 64 bits: write them with the standard library
        payload = json.dumps(message).encode()
    points = message.get("points")
    n = len(points) if isinstance(points, list) and "points" in message else None
    check_verdict(Decoder(directory(), PREFIX).decode(G1, payload, NOW_MS), n)


@FUZZ
@given(
    values=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=8),
    compact=st.booleans(),
)
def test_non_finite_values_never_sink_finite_ones(values: list[float], compact: bool) -> None:
    if compact:
        body: dict[str, Any] = {"tags": ["T1"] * len(values), "vals": values, "ts": NOW_MS}
    else:
        body = {"points": [{"tag": "T1", "v": v, "ts": NOW_MS} for v in values]}
    payload = json.dumps({"v": 1, "gw": "G1", "seq": 1, "sent": NOW_MS, **body}).encode()
    result = Decoder(directory(), PREFIX).decode(G1, payload, NOW_MS)
    finite = [v for v in values if v == v and abs(v) != float("inf")]
    assert list(result.values) == finite
    assert [r.reason for r in result.rejections] == [Reason.NOT_FINITE] * (
        len(values) - len(finite)
    )
