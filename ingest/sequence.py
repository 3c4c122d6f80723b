"""Per-gateway sequence dedup: idempotent drop of duplicates and replays, gateway restarts.

Each gateway numbers its telemetry messages with `seq`, increasing. The tracker remembers the
highest `seq` seen, its `sent` time and which of the `WINDOW` sequence numbers below it have
been seen (a bitmask). A message is

- **new** when `seq` is above the highest, or inside the window and not seen yet (a late,
  out-of-order message is still delivered);
- a **duplicate** when inside the window and already seen (an MQTT redelivery) — dropped;
- a **replay** when below the window and not sent later than the highest — dropped;
- a **restart** when `seq` is at or below the highest but `sent` is *later* than the highest
  message's `sent`: only a gateway that reset its counter (reboot without persisted `seq`) sends
  a lower number later. A new session starts at this message; the previous session is kept, and
  a message sent before the new session started is judged against it (so an old message
  re-published after the reboot is still a duplicate, not a "new" high number).

A gateway whose clock also went back on reboot is caught by its status: an `online` status
newer than the last one seen starts a new session (`new_session`), forgetting the window.
State is in memory: after an ingest restart every gateway starts fresh, so messages redelivered
by the broker are accepted again — downstream dedups by (gateway, seq).
"""

from __future__ import annotations

from enum import Enum

WINDOW = 4096
"""Sequence numbers below the highest that are still told apart as new or duplicate."""
_MASK = (1 << WINDOW) - 1


class SeqVerdict(Enum):
    """What a message's (seq, sent) means for its gateway."""

    NEW = "new"
    DUPLICATE = "duplicate"
    REPLAY = "replay"
    RESTART = "restart"


class _Session:
    """One run of a gateway's counter: highest seq, its sent time, and the seen-bitmask."""

    __slots__ = ("highest", "highest_sent_ms", "seen", "start_sent_ms")

    def __init__(self, seq: int, sent_ms: int) -> None:
        self.start_sent_ms = sent_ms
        self.highest = seq
        self.highest_sent_ms = sent_ms
        self.seen = 1  # bit i set: seq `highest - i` was seen

    def classify(self, seq: int) -> SeqVerdict:
        if seq > self.highest:
            return SeqVerdict.NEW
        behind = self.highest - seq
        if behind >= WINDOW:
            return SeqVerdict.REPLAY
        return SeqVerdict.DUPLICATE if (self.seen >> behind) & 1 else SeqVerdict.NEW

    def mark(self, seq: int, sent_ms: int) -> None:
        if seq > self.highest:
            shift = seq - self.highest
            self.seen = ((self.seen << shift) | 1) & _MASK if shift < WINDOW else 1
            self.highest = seq
            self.highest_sent_ms = max(sent_ms, self.highest_sent_ms)
        else:
            self.seen |= 1 << (self.highest - seq)


class _Gateway:
    __slots__ = ("current", "previous")

    def __init__(self, seq: int, sent_ms: int) -> None:
        self.current = _Session(seq, sent_ms)
        self.previous: _Session | None = None

    def session_of(self, sent_ms: int) -> _Session:
        """The previous session for a message sent before the current one started."""
        if self.previous is not None and sent_ms < self.current.start_sent_ms:
            return self.previous
        return self.current


class SequenceTracker:
    """Sequence state of every gateway; `check` classifies, `commit` records."""

    __slots__ = ("_gateways", "_online_ts")

    def __init__(self) -> None:
        self._gateways: dict[str, _Gateway] = {}
        self._online_ts: dict[str, int] = {}

    def check(self, gateway: str, seq: int, sent_ms: int) -> SeqVerdict:
        """Classify a message without changing state."""
        state = self._gateways.get(gateway)
        if state is None:
            return SeqVerdict.NEW
        session = state.session_of(sent_ms)
        current = session is state.current
        if current and seq <= session.highest and sent_ms > session.highest_sent_ms:
            return SeqVerdict.RESTART
        return session.classify(seq)

    def commit(self, gateway: str, seq: int, sent_ms: int, verdict: SeqVerdict) -> None:
        """Record a message classified NEW or RESTART by `check` (others change nothing)."""
        state = self._gateways.get(gateway)
        if state is None:
            self._gateways[gateway] = _Gateway(seq, sent_ms)
        elif verdict is SeqVerdict.RESTART:
            state.previous = state.current
            state.current = _Session(seq, sent_ms)
        elif verdict is SeqVerdict.NEW:
            state.session_of(sent_ms).mark(seq, sent_ms)

    def new_session(self, gateway: str, online_ts_ms: int) -> bool:
        """An `online` status at `online_ts_ms`: forget the window if it is a newer session.

        Returns True when the window was reset. A retained status re-read on reconnect carries
        the same timestamp and changes nothing.
        """
        last = self._online_ts.get(gateway)
        if last is not None and online_ts_ms <= last:
            return False
        self._online_ts[gateway] = online_ts_ms
        if last is None:
            return False  # first status seen by this process: nothing to forget
        # the gateway's clock may have gone back with the reboot, so `sent` cannot tell the old
        # session's messages from the new one's: forget both
        self._gateways.pop(gateway, None)
        return True

    def highest(self, gateway: str) -> int | None:
        """Highest seq accepted from the gateway in its current session, None if none."""
        state = self._gateways.get(gateway)
        return None if state is None else state.current.highest
