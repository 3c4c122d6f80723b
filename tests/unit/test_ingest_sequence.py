"""Sequence dedup per gateway: duplicates and replays dropped, late messages and restarts kept."""

from __future__ import annotations

from ingest.decoder import Decoder
from ingest.protocol import encode_batch, encode_status, status_topic, telemetry_topic
from ingest.reasons import Reason
from ingest.sequence import WINDOW, SequenceTracker, SeqVerdict
from tests.unit.ingest_plants import NOW_MS, PREFIX, directory

G1 = telemetry_topic(PREFIX, "E1", "G1")


def send(dec: Decoder, seq: int, sent_ms: int, value: float = 1.0, gw: str = "G1") -> list[Reason]:
    """Decode a one-point message; the reasons it was refused for (empty = accepted)."""
    topic = telemetry_topic(PREFIX, "E1", gw)
    tag = "T1" if gw == "G1" else "T3"
    result = dec.decode(topic, encode_batch(gw, seq, sent_ms, [(tag, sent_ms, value, 0)]), NOW_MS)
    return [r.reason for r in result.rejections]


def test_redelivered_message_is_dropped_once_counted() -> None:
    dec = Decoder(directory(), PREFIX)
    assert send(dec, 1, NOW_MS) == []
    assert send(dec, 1, NOW_MS) == [Reason.DUPLICATE_SEQUENCE]
    assert dec.counters.readings_accepted == 1
    assert dec.counters[Reason.DUPLICATE_SEQUENCE] == 1


def test_late_out_of_order_message_inside_window_is_delivered() -> None:
    dec = Decoder(directory(), PREFIX)
    for seq in (1, 2, 4, 5):
        assert send(dec, seq, NOW_MS - 10_000 + seq) == []
    assert send(dec, 3, NOW_MS - 10_000 + 3) == []  # sent before 5: late, not a restart
    assert send(dec, 3, NOW_MS - 10_000 + 3) == [Reason.DUPLICATE_SEQUENCE]


def test_sequences_are_per_gateway() -> None:
    dec = Decoder(directory(), PREFIX)
    assert send(dec, 1, NOW_MS, gw="G1") == []
    assert send(dec, 1, NOW_MS, gw="G2") == []


def test_replay_below_window_is_refused() -> None:
    dec = Decoder(directory(), PREFIX)
    assert send(dec, 1, NOW_MS - 60_000) == []
    assert send(dec, WINDOW + 10, NOW_MS - 1000) == []
    assert send(dec, 1, NOW_MS - 60_000) == [Reason.REPLAYED_SEQUENCE]


def test_gateway_restart_resetting_seq_is_accepted_by_later_sent_time() -> None:
    dec = Decoder(directory(), PREFIX)
    for seq in range(100, 110):
        assert send(dec, seq, NOW_MS - 60_000 + seq) == []
    # reboot without persisted seq: numbering restarts at 1, sent later than seq 109
    assert send(dec, 1, NOW_MS - 1000) == []
    assert send(dec, 2, NOW_MS - 900) == []
    # an old-session message re-published after the restart is still a duplicate ...
    assert send(dec, 105, NOW_MS - 60_000 + 105) == [Reason.DUPLICATE_SEQUENCE]
    # ... an old-session message never seen (late) is delivered, once
    assert send(dec, 110, NOW_MS - 60_000 + 110) == []
    assert send(dec, 110, NOW_MS - 60_000 + 110) == [Reason.DUPLICATE_SEQUENCE]
    # and the new session is unaffected
    assert send(dec, 2, NOW_MS - 900) == [Reason.DUPLICATE_SEQUENCE]
    assert send(dec, 3, NOW_MS - 800) == []


def test_online_status_of_new_session_resets_window_even_with_clock_gone_back() -> None:
    dec = Decoder(directory(), PREFIX)
    status = status_topic(PREFIX, "E1", "G1")
    dec.decode(status, encode_status("G1", "online", NOW_MS - 100_000), NOW_MS)
    for seq in range(1, 50):
        assert send(dec, seq, NOW_MS - 10_000) == []
    # rebooted gateway with its clock set back: same seq, older sent → a duplicate ...
    assert send(dec, 1, NOW_MS - 20_000) == [Reason.DUPLICATE_SEQUENCE]
    # ... until its new online status arrives (retained re-read of the old one changes nothing)
    dec.decode(status, encode_status("G1", "online", NOW_MS - 100_000), NOW_MS)
    assert send(dec, 1, NOW_MS - 20_000) == [Reason.DUPLICATE_SEQUENCE]
    dec.decode(status, encode_status("G1", "online", NOW_MS - 25_000), NOW_MS)
    assert send(dec, 1, NOW_MS - 20_000) == []


def test_tracker_window_slides_with_large_jumps() -> None:
    tracker = SequenceTracker()
    tracker.commit("g", 10, 0, tracker.check("g", 10, 0))
    tracker.commit("g", 10 + 3 * WINDOW, 0, tracker.check("g", 10 + 3 * WINDOW, 0))
    assert tracker.check("g", 10 + 3 * WINDOW - 1, 0) is SeqVerdict.NEW
    assert tracker.check("g", 10 + 3 * WINDOW, 0) is SeqVerdict.DUPLICATE
    assert tracker.check("g", 10, 0) is SeqVerdict.REPLAY
