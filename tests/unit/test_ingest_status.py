"""Gateway status board: LWT and silence, 30 min / 24 h milestones, online rates."""

from __future__ import annotations

import pytest

from hazardwatch.types import RiskColour, Tier
from ingest.decoder import Decoder
from ingest.protocol import encode_batch, encode_status, status_topic, telemetry_topic
from ingest.status import GatewayStatusBoard
from tests.unit.ingest_plants import NOW_MS, PREFIX, directory

MIN = 60_000
HOUR = 60 * MIN


class Site:
    """G1 (interval 10 s, tags T1 T2) publishing through a decoder into a status board."""

    def __init__(self) -> None:
        self.decoder = Decoder(directory(), PREFIX)
        self.board = GatewayStatusBoard(directory())
        self.seq = 0

    def telemetry(self, at_ms: int, tags: tuple[str, ...] = ("T1", "T2")) -> None:
        self.seq += 1
        payload = encode_batch("G1", self.seq, at_ms, [(t, at_ms, 1.0, 0) for t in tags])
        topic = telemetry_topic(PREFIX, "E1", "G1")
        self.board.observe(self.decoder.decode(topic, payload, at_ms), at_ms)

    def status(self, state: str, at_ms: int) -> None:
        payload = encode_status("G1", state, at_ms)  # type: ignore[arg-type]
        decoded = self.decoder.decode(status_topic(PREFIX, "E1", "G1"), payload, at_ms)
        self.board.observe(decoded, at_ms)

    def conditions(self, at_ms: int) -> list[tuple[str, str, int]]:
        return [(e.gateway, e.condition, e.ts_ms) for e in self.board.tick(at_ms)]


def test_silence_for_three_intervals_takes_gateway_offline_then_milestones() -> None:
    site = Site()
    site.telemetry(NOW_MS)
    assert ("G1", "gateway_offline", NOW_MS) not in site.conditions(NOW_MS + 29_999)
    assert site.board.is_online("G1")
    assert ("G1", "gateway_offline", NOW_MS + 30_000) in site.conditions(NOW_MS + 31_000)
    assert not site.board.is_online("G1")
    assert [c for c in site.conditions(NOW_MS + 31 * MIN) if c[0] == "G1"] == [
        ("G1", "gateway_offline_30min", NOW_MS + 30_000 + 30 * MIN)
    ]
    events = [e for e in site.board.tick(NOW_MS + 25 * HOUR) if e.gateway == "G1"]
    assert [(e.condition, e.tier, e.colour) for e in events] == [
        ("gateway_offline_24h", Tier.COUNTY, RiskColour.YELLOW)
    ]
    assert events[0].to_json()["type"] == "data_quality"
    # milestones fire once per outage
    assert [c for c in site.conditions(NOW_MS + 26 * HOUR) if c[0] == "G1"] == []
    site.telemetry(NOW_MS + 27 * HOUR)
    assert ("G1", "gateway_online", NOW_MS + 27 * HOUR) in site.conditions(NOW_MS + 27 * HOUR)


def test_last_will_takes_gateway_offline_at_once() -> None:
    site = Site()
    site.telemetry(NOW_MS)
    site.status("offline", NOW_MS + 1000)
    assert ("G1", "gateway_offline", NOW_MS + 1000) in site.conditions(NOW_MS + 1500)
    site.status("online", NOW_MS + 5000)
    assert ("G1", "gateway_online", NOW_MS + 5000) in site.conditions(NOW_MS + 5500)


def test_online_rates_over_window() -> None:
    site = Site()
    site.board.tick(NOW_MS)
    # G1 reports T1 and T2 every 10 s for 1 h, then only T1 for 1 h, then nothing for 2 h
    for k in range(360):
        site.telemetry(NOW_MS + k * 10_000)
        site.board.tick(NOW_MS + k * 10_000)
    for k in range(360, 720):
        site.telemetry(NOW_MS + k * 10_000, ("T1",))
        site.board.tick(NOW_MS + k * 10_000)
    end = NOW_MS + 4 * HOUR
    site.board.tick(end)
    last = NOW_MS + 719 * 10_000
    gateway_offline = end - (last + 30_000)
    assert site.board.gateway_online_rate("G1", 4 * HOUR, end) == pytest.approx(
        1 - gateway_offline / (4 * HOUR)
    )
    t2_offline = end - (NOW_MS + 359 * 10_000 + 30_000)
    assert site.board.tag_online_rate("T2", 4 * HOUR, end) == pytest.approx(
        1 - t2_offline / (4 * HOUR)
    )
    # T3 (gateway G2) never reported: offline the whole window since the board started
    assert site.board.tag_online_rate("T3", 4 * HOUR, end) == 0.0
    assert site.board.gateway_online_rate("G2", 4 * HOUR, end) == 0.0


def test_gateway_not_heard_since_start_waits_its_own_silence_period() -> None:
    """A restart does not report every gateway offline before its first message: G1 (10 s)
    gets 30 s, G2 (60 s) 3 min, each counted from the board's start."""
    site = Site()
    assert site.conditions(NOW_MS) == []
    site.telemetry(NOW_MS + 5_000)  # G1 reports; G2 and H1 stay silent
    assert site.conditions(NOW_MS + 29_000) == []
    offline = site.conditions(NOW_MS + 31_000)
    assert ("G1", "gateway_offline", NOW_MS) not in offline  # G1 was heard
    assert ("H1", "gateway_offline", NOW_MS) in offline  # 10 s interval, never heard
    assert ("G2", "gateway_offline", NOW_MS) not in offline  # 60 s interval: not yet
    assert ("G2", "gateway_offline", NOW_MS) in site.conditions(NOW_MS + 180_000)


def test_a_batch_observed_at_once_leaves_the_board_as_one_by_one() -> None:
    """`observe_all` (one numpy call per batch) against `observe` per message: a last will,
    then telemetry clearing it, tag times out of order and a tag reported twice."""
    decoder = Decoder(directory(), PREFIX)
    topic, status = telemetry_topic(PREFIX, "E1", "G1"), status_topic(PREFIX, "E1", "G1")
    messages = [
        (decoder.decode(status, encode_status("G1", "offline", NOW_MS), NOW_MS), NOW_MS),
        (decoder.decode(topic, encode_batch("G1", 1, NOW_MS + 5_000, [
            ("T1", NOW_MS + 5_000, 1.0, 0), ("T1", NOW_MS + 1_000, 2.0, 0)]), NOW_MS + 5_000),
         NOW_MS + 5_000),
        (decoder.decode(topic, encode_batch("G1", 2, NOW_MS + 2_000, [
            ("T2", NOW_MS + 2_000, 1.0, 0)]), NOW_MS + 6_000), NOW_MS + 6_000),
    ]  # fmt: skip
    at_once, one_by_one = GatewayStatusBoard(directory()), GatewayStatusBoard(directory())
    for board in (at_once, one_by_one):
        board.tick(NOW_MS - 1_000)
    at_once.observe_all(messages)
    for decoded, received_ms in messages:
        one_by_one.observe(decoded, received_ms)

    def timeline(board: GatewayStatusBoard) -> list[tuple[int, list[tuple[str, str]], tuple]]:
        out = []
        for at in range(NOW_MS, NOW_MS + 60_000, 1_000):
            events = [(e.gateway, e.condition) for e in board.tick(at)]
            rates = tuple(board.tag_online_rate(t, 60_000, at) for t in ("T1", "T2"))
            out.append((at, events, rates))
        return out

    expected = timeline(one_by_one)
    assert timeline(at_once) == expected
    # The last will was cleared by the telemetry after it in the same batch: G1 goes offline
    # only after three silent intervals from its last message (received at +6 s).
    g1 = [(at - NOW_MS, c) for at, events, _ in expected for g, c in events if g == "G1"]
    assert g1 == [(36_000, "gateway_offline")]
