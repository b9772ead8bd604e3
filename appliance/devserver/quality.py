"""Connection quality at the double: each participant graded from its measured loss, jitter, RTT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from livekit.protocol import models, rtc

if TYPE_CHECKING:
    from appliance.devserver.hub import Hub
    from appliance.devserver.participant import Participant

log = logging.getLogger(__name__)

# LiveKit maps a MOS-like score (1..5) to a grade; these are its thresholds, roughly.
EXCELLENT_FROM = 4.1
GOOD_FROM = 3.6
MIN_EXPECTED = 20  # packets in a window below which a loss ratio says nothing
CLOCK_RATE = {"audio": 48000, "video": 90000}


@dataclass
class Window:
    """What one participant's streams did since the last grading."""

    expected: int = 0
    lost: int = 0
    jitter_ms: float = 0.0
    rtt_ms: float | None = None
    streams: int = 0  # unmuted published streams the double reads
    silent: int = 0  # ... of which delivered no packet in the window


@dataclass
class Counters:
    """Cumulative per-stream figures at the last grading (to take differences)."""

    seen: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)


def mos(loss_ratio: float, jitter_ms: float, rtt_ms: float | None) -> float:
    """A simplified E-model: R from one-way delay and loss, then R -> MOS (ITU-T G.107)."""
    delay = (rtt_ms or 0.0) / 2 + 2 * jitter_ms + 10.0
    r = 93.2 - (delay / 40 if delay < 160 else (delay - 120) / 10)
    r -= 2.5 * 100 * loss_ratio
    r = max(0.0, min(100.0, r))
    return 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r)


def grade(window: Window) -> tuple[models.ConnectionQuality, float]:
    """(ConnectionQuality, score) for a window; no measured stream means EXCELLENT (as LiveKit)."""
    if window.streams and window.silent == window.streams:
        return models.ConnectionQuality.LOST, 0.0
    loss = window.lost / window.expected if window.expected >= MIN_EXPECTED else 0.0
    score = mos(max(0.0, loss), window.jitter_ms, window.rtt_ms)
    if score >= EXCELLENT_FROM:
        return models.ConnectionQuality.EXCELLENT, score
    if score >= GOOD_FROM:
        return models.ConnectionQuality.GOOD, score
    return models.ConnectionQuality.POOR, score


def _remote_streams(receiver: Any) -> dict[int, Any]:
    # aiortc keeps one statistics object per SSRC but its getStats() reports only one of them
    # per receiver; read them all (the name-mangled attribute is aiortc's own).
    streams = getattr(receiver, "_RTCRtpReceiver__remote_streams", None)
    return dict(streams) if isinstance(streams, dict) else {}


async def measure(participant: Participant, counters: Counters) -> Window:
    """The participant's window: its published streams as received, its RTT as a subscriber."""
    window = Window()
    for track in participant.tracks.values():
        if track.receiver is None or track.muted:
            continue
        window.streams += 1
        got = 0
        for ssrc, stream in _remote_streams(track.receiver).items():
            key = (id(track.receiver), ssrc)
            received, lost = int(stream.packets_received), int(stream.packets_lost)
            before = counters.seen.get(key, (0, 0))
            counters.seen[key] = (received, lost)
            got += received - before[0]
            window.expected += (received - before[0]) + max(0, lost - before[1])
            window.lost += max(0, lost - before[1])
            jitter_ms = stream.jitter / CLOCK_RATE[track.kind] * 1000
            window.jitter_ms = max(window.jitter_ms, jitter_ms)
        if got == 0:
            window.silent += 1
    for out in participant.outgoing.values():
        if out.transceiver is None:
            continue
        with contextlib.suppress(Exception):  # stats of a closing sender: skip this window
            report = await out.transceiver.sender.getStats()
            for stats in report.values():
                rtt = getattr(stats, "roundTripTime", None)
                if stats.type == "remote-inbound-rtp" and rtt is not None:
                    window.rtt_ms = max(window.rtt_ms or 0.0, rtt * 1000)
    return window


async def grade_room(hub: Hub, members: list[Participant], counters: dict[str, Counters]) -> None:
    """Grade everyone in one room and send the room the update, as LiveKit does."""
    updates: list[rtc.ConnectionQualityInfo] = []
    for participant in members:
        if participant.far_end or participant.quality_forced:
            quality, score = participant.quality, participant.quality_score
        else:
            window = await measure(participant, counters.setdefault(participant.sid, Counters()))
            quality, score = grade(window)
            if quality != participant.quality:
                log.info("%s: quality %s (score %.2f, %s)", participant.identity,
                         models.ConnectionQuality.Name(quality), score, window)
            participant.quality, participant.quality_score = quality, score
        updates.append(rtc.ConnectionQualityInfo(participant_sid=participant.sid,
                                                 quality=quality, score=score))
    if not updates:
        return
    message = rtc.SignalResponse(connection_quality=rtc.ConnectionQualityUpdate(updates=updates))
    for participant in members:
        await participant.send(message)
    hub.notify()


async def grade_forever(hub: Hub, interval: float) -> None:
    """Every `interval` seconds, grade and announce every participant of every room."""
    counters: dict[str, Counters] = {}
    while True:
        await asyncio.sleep(interval)  # the grading period, like LiveKit's own ticker
        live = {p.sid for p in hub.all_participants()}
        for sid in [s for s in counters if s not in live]:
            del counters[sid]
        for room in list(hub.rooms.values()):
            try:
                await grade_room(hub, list(room.participants.values()), counters)
            except Exception:  # one room's figures must not stop the grading of the others
                log.exception("grading quality in %s failed", room.name)
