"""Kafka records of the bridge (pure): telemetry keyed by hazard source, dead-letter by gateway.

Telemetry record v1 (topic `hazardwatch.v1.telemetry`), one per (MQTT message, hazard source):

    key     hazard source id (UTF-8): all tags of a source land in one partition, in order
    value   {"v": 1, "gw", "seq", "sent", "enterprise", "source",
             "tags": [tag id…], "ts": [epoch ms…], "vals": [number…], "q": [int…]}
    headers gw, seq (ASCII decimal) — consumers dedup by (gw, seq) without parsing the value

A gateway message whose tags span two sources becomes two records with the same (gw, seq);
each (gw, seq, source) occurs once unless the bridge resent it after a crash, and then every copy
is identical and in the same partition.

Dead-letter record (topic `hazardwatch.v1.deadletter`): key = gateway id from the topic (`_` if
the topic could not be parsed), value = `ingest.deadletter.deadletter_record`.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from ingest.deadletter import deadletter_record
from ingest.directory import GatewayDirectory
from ingest.protocol import PROTOCOL_VERSION
from ingest.results import Decoded

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    """One record to produce: key, value and headers (the topic is the producer's choice)."""

    key: bytes
    value: bytes
    headers: Headers
    readings: int


def telemetry_records(decoded: Decoded, directory: GatewayDirectory) -> list[KafkaRecord]:
    """The accepted readings of one message, one record per hazard source, in arrival order."""
    if not decoded.accepted:
        return []
    by_source: dict[str, list[int]] = {}
    sources = directory.tag_sources
    for position, index in enumerate(decoded.tag_index):
        by_source.setdefault(sources[index], []).append(position)
    headers: Headers = [("gw", decoded.gateway.encode()), ("seq", str(decoded.seq).encode())]
    ids = directory.tag_ids
    records = []
    for source, positions in by_source.items():
        value = orjson.dumps(
            {
                "v": PROTOCOL_VERSION,
                "gw": decoded.gateway,
                "seq": decoded.seq,
                "sent": decoded.sent_ms,
                "enterprise": decoded.enterprise,
                "source": source,
                "tags": [ids[decoded.tag_index[p]] for p in positions],
                "ts": [decoded.ts_ms[p] for p in positions],
                "vals": [decoded.values[p] for p in positions],
                "q": [decoded.quality[p] for p in positions],
            }
        )
        records.append(KafkaRecord(source.encode(), value, headers, len(positions)))
    return records


def deadletter_kafka_record(decoded: Decoded, payload: bytes, received_ms: int) -> KafkaRecord:
    """The dead-letter record of a refused message, keyed by its gateway."""
    value = deadletter_record(decoded, payload, received_ms)
    headers: Headers = [("gw", decoded.gateway.encode())]
    return KafkaRecord((decoded.gateway or "_").encode(), value, headers, 0)
