"""What the demo shows: the kiosk's status and the double's figures folded into one flat view."""

from __future__ import annotations

import contextlib
import datetime
import math
import os
import re
import select
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from appliance.indicators import STATUS_PATTERNS, StatusKind

LED_ORDER = ("status", "mute", "camera", "quality")
HEALTH_FIELDS = ("state", "mic", "camera")  # of the kiosk.* attributes: the `health.*` fields
_STATUS_BY_PATTERN = {
    tuple(sorted(p.as_dict().items())): kind for kind, p in STATUS_PATTERNS.items()
}


def status_name(pattern: dict[str, Any]) -> str:
    """Name the status LED's pattern (`alone`, `left`, ...): patterns are distinct by design."""
    kind = _STATUS_BY_PATTERN.get(tuple(sorted(pattern.items())))
    return kind.name.lower() if isinstance(kind, StatusKind) else "unknown"


def level_dbfs(samples: np.ndarray[Any, np.dtype[np.int16]]) -> float:
    if samples.size == 0:
        return -math.inf
    rms = float(np.sqrt(np.mean(np.square(samples.astype(np.float64)))))
    return 20 * math.log10(rms / 32768.0) if rms > 0 else -math.inf


_ROOM_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) \w+ "
                        r"appliance\.session\.runner: (room: \S+ -> \S+)$")


def _room_transition(line: str) -> tuple[float, str] | None:
    """(wall-clock time, "room: a -> b") from a line of the kiosk's log, else None."""
    match = _ROOM_LINE.match(line)
    if match is None:
        return None
    stamp = datetime.datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S").timestamp()
    return stamp + int(match[2]) / 1000, match[3]


def _next_attempt(state: dict[str, Any]) -> str:
    """When the kiosk tries the room again, as the control socket tells it (its own clock)."""
    due = state.get("next_retry_in")
    if due is None:
        return ""
    return f"in {float(due):.0f} s (attempt {int(state.get('attempt', 0)) + 1})"


class LevelMeter:
    """The level of the last 100 ms played; silent once nothing has been played for a while.

    The kiosk stops writing to its speaker when it leaves the room or loses the server, so the
    last samples heard would otherwise be shown forever.
    """

    WINDOW = 4800  # samples: the last 100 ms
    QUIET_AFTER = 0.5  # seconds without samples after which the speaker counts as silent

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._tail = np.zeros(0, dtype=np.int16)
        self._heard_at = -math.inf

    def feed(self, samples: np.ndarray[Any, np.dtype[np.int16]]) -> None:
        with self._lock:
            now = self._clock()
            # After a quiet spell the old tail is history, not part of the last 100 ms.
            before = self._tail if now - self._heard_at <= self.QUIET_AFTER else self._tail[:0]
            self._tail = np.concatenate([before, samples])[-self.WINDOW:]
            self._heard_at = now

    def read(self) -> float:
        """dBFS of the last 100 ms played, -inf when silent or when nothing arrives any more."""
        with self._lock:
            if self._clock() - self._heard_at > self.QUIET_AFTER:
                return -math.inf
            return level_dbfs(self._tail)


class SpeakerMeter:
    """Drains the FIFO the kiosk's ALSA speaker writes (48 kHz mono S16) into a LevelMeter.

    Opened before the kiosk starts: a FIFO's writer blocks until a reader exists, and the
    draining thread keeps the writer from ever blocking on a full pipe.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self.meter = LevelMeter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, name="demo-speaker-meter",
                                        daemon=True)
        self._thread.start()

    @classmethod
    def open(cls, path: Path) -> SpeakerMeter:
        os.mkfifo(path, 0o600)
        return cls(os.open(path, os.O_RDONLY | os.O_NONBLOCK))

    def _drain(self) -> None:
        pending = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self._fd], [], [], 0.2)
            if not ready:
                continue
            try:
                chunk = os.read(self._fd, 65536)
            except BlockingIOError:
                continue
            except OSError:
                return
            if not chunk:  # no writer yet (or it closed): wait for the next one
                self._stop.wait(0.1)
                continue
            data = pending + chunk
            whole = len(data) & ~1
            pending = data[whole:]
            self.meter.feed(np.frombuffer(data[:whole], dtype=np.int16))

    def read(self) -> float:
        return self.meter.read()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        with contextlib.suppress(OSError):
            os.close(self._fd)


RATE_WINDOW = 2.0  # seconds of history behind each rate: steadier than one poll interval


@dataclass(frozen=True)
class Sample:
    at: float
    frames: int
    payload_bytes: int


@dataclass
class View:
    fields: dict[str, str]
    leds: dict[str, dict[str, Any]]
    remotes: list[str]
    tracks: list[tuple[str, str, str, str]]  # (name, kiosk state, at the double, rate)
    speaker_dbfs: float
    transitions: list[tuple[float, str]]
    status_line: str
    next_attempt: str = ""  # "in 12 s (attempt 4)" while a retry is scheduled
    processes: dict[str, int | None] = field(default_factory=dict)
    # The kiosk's `kiosk.*` participant attributes as the double holds them: what every other
    # participant of the room (and `appliance ops ls`) sees, not what the kiosk thinks it sent.
    health: dict[str, str] = field(default_factory=dict)
    console: str = ""  # where the fleet console is, and the demo operator's login


class Observer:
    """Folds successive snapshots into Views and remembers the last state transitions."""

    def __init__(self, kiosk_identity: str, speaker_level: Callable[[], float],
                 keep: int = 200, kiosk_log: Callable[[], list[str]] | None = None) -> None:
        self.identity = kiosk_identity
        self.speaker_level = speaker_level
        # New lines of the kiosk's log: its room transitions come from there, so one shorter
        # than a poll (the first join takes ~0.1 s on loopback) is still listed.
        self.kiosk_log = kiosk_log
        self.started = time.monotonic()
        self._started_wall = time.time()
        self.transitions: deque[tuple[float, str]] = deque(maxlen=keep)
        self._last: dict[str, str] = {}
        self._samples: dict[str, deque[Sample]] = {}

    def fold(self, status: dict[str, Any] | None, server: dict[str, Any] | None,
             fleet: dict[str, Any] | None = None) -> View:
        """One View; `fleet` is the kiosk's registry row (None: no fleet service, or no answer)."""
        now = time.monotonic()
        state: dict[str, Any] = (status or {}).get("state", {})
        leds: dict[str, dict[str, Any]] = (status or {}).get("leds", {})
        fields: dict[str, str] = {
            "room": str(state.get("room", "unreachable" if status is None else "?")),
            "intent": str(state.get("intent", "?")),
            "fault": str(state.get("fault", "?")),
            "quality": str(state.get("quality", "?")),
            "status": status_name(leds["status"]) if "status" in leds else "unknown",
            "remotes": str(len(state.get("remotes", []))),
            "mic": str(state.get("tracks", {}).get("microphone", "?")),
            "camera": str(state.get("tracks", {}).get("camera", "?")),
            # No step taken yet: the camera runs as configured.
            "rung": str(state.get("degradation", {}).get("label") or "configured"),
            "privacy": ("?" if "camera_privacy" not in state
                        else "on" if state["camera_privacy"] else "off"),
            # The fleet service's view of the kiosk: tokens it issued, presence from webhooks.
            "fleet.tokens": "?" if fleet is None else str(fleet.get("tokens_issued", 0)),
            "fleet.presence": "?" if fleet is None else str(fleet.get("presence") or "?"),
        }
        for name in LED_ORDER:
            fields[f"led.{name}"] = str(leds.get(name, {}).get("shape", "?"))
        me = self._me(server)
        health = {k: str(v) for k, v in me.get("attributes", {}).items()
                  if k.startswith("kiosk.")}
        for name in HEALTH_FIELDS:
            fields[f"health.{name}"] = health.get(f"kiosk.{name}", "-")
        tracks = self._tracks(state, me, now)
        for name, _, _, rate in tracks:
            fields[f"rate.{name}"] = rate
        self._note_changes(fields, now)
        return View(
            fields=fields,
            leds=leds,
            remotes=list(state.get("remotes", [])),
            tracks=tracks,
            speaker_dbfs=self.speaker_level(),
            transitions=list(self.transitions),
            status_line=str(state.get("status", "kiosk not answering yet")),
            next_attempt=_next_attempt(state),
            health=health,
        )

    def _note_changes(self, fields: dict[str, str], now: float) -> None:
        at = now - self.started
        polled: tuple[str, ...] = ("room",)
        if self.kiosk_log is not None:
            polled = ()  # the log has every room transition, the polls only some
            for line in self.kiosk_log():
                logged = _room_transition(line)
                if logged is not None:
                    self.transitions.append((logged[0] - self._started_wall, logged[1]))
        answering, was_answering = fields["intent"] != "?", self._last.get("intent", "?") != "?"
        if answering != was_answering:
            # Coming up (or going away) changes every field at once: one line says it all.
            text = (f"kiosk answers: room {fields['room']}, status {fields['status']}"
                    if answering else "kiosk stopped answering")
            self.transitions.append((at, text))
        elif answering:
            for key in (*polled, "intent", "fault", "status", "quality", "mic", "camera",
                        "privacy", "led.mute", "led.camera", "rung", "fleet.presence"):
                old, new = self._last.get(key), fields[key]
                if old is not None and old != new:
                    self.transitions.append((at, f"{key}: {old} -> {new}"))
        self._last = dict(fields)

    def _me(self, server: dict[str, Any] | None) -> dict[str, Any]:
        """The kiosk's participant record at the double (empty while it is not in the room)."""
        room: dict[str, Any] = next(iter((server or {}).get("rooms", {}).values()), {})
        me: dict[str, Any] = room.get("participants", {}).get(self.identity, {})
        return me

    def _tracks(self, state: dict[str, Any], me: dict[str, Any],
                now: float) -> list[tuple[str, str, str, str]]:
        at_double: dict[str, dict[str, Any]] = {}
        for track in me.get("tracks", []):
            at_double["microphone" if track.get("kind") == "audio" else "camera"] = track
        rows = []
        for name in ("microphone", "camera"):
            local = str(state.get("tracks", {}).get(name, "?"))
            track = at_double.get(name)
            if track is None:
                rows.append((name, local, "not published", ""))
                continue
            rate = self._rate(name, Sample(now, int(track.get("frames", 0)),
                                           int(track.get("bytes", 0))))
            frames = int(track.get("frames", 0))
            extra = " muted" if track.get("muted") else ""
            if name == "microphone" and track.get("dominant_hz"):
                extra += f" tone {track['dominant_hz']:.0f} Hz"
            if name == "camera" and track.get("width"):
                extra += f" {track['width']}x{track['height']}"
            rows.append((name, local, f"{frames} frames{extra}", rate))
        return rows

    def _rate(self, name: str, sample: Sample) -> str:
        """Frames and kbit/s at the double over the last RATE_WINDOW seconds."""
        history = self._samples.setdefault(name, deque())
        if history and sample.frames < history[-1].frames:
            history.clear()  # a new track (republished): its counters start again
        history.append(sample)
        while len(history) > 2 and sample.at - history[1].at >= RATE_WINDOW:
            history.popleft()
        first = history[0]
        dt = sample.at - first.at
        if dt <= 0:
            return ""
        fps = (sample.frames - first.frames) / dt
        kbps = (sample.payload_bytes - first.payload_bytes) * 8 / dt / 1000
        return f"{fps:.0f} frames/s, {kbps:.0f} kbit/s"

    def text_line(self, view: View) -> str:
        """One line of `key=value` pairs: what script mode prints and what `expect` matches."""
        elapsed = time.monotonic() - self.started
        return f"t={elapsed:6.1f} " + " ".join(f"{k}={v}" for k, v in view.fields.items()
                                                 if not k.startswith("rate."))
