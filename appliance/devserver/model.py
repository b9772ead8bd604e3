"""Rooms, participants and published tracks as the double keeps them, and their protobuf forms."""

from __future__ import annotations

import asyncio
import enum
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from livekit.protocol import models, rtc

from appliance.devserver.stats import TrackStats

if TYPE_CHECKING:
    from appliance.devserver.media import Fanout
    from appliance.devserver.participant import Participant

PROTOCOL_VERSION = 16
SERVER_VERSION = "1.9.0-appliance-devserver"


def new_sid(prefix: str) -> str:
    """A LiveKit-style id: `RM_`, `PA_` or `TR_` plus 12 random characters."""
    return prefix + secrets.token_hex(6)


class Quality(enum.Enum):
    """Connection quality values the control endpoint accepts (names as in the protocol)."""

    POOR = models.ConnectionQuality.POOR
    GOOD = models.ConnectionQuality.GOOD
    EXCELLENT = models.ConnectionQuality.EXCELLENT
    LOST = models.ConnectionQuality.LOST


@dataclass
class PublishedTrack:
    """One track a participant published: its info, media reader and measured figures."""

    sid: str
    cid: str
    kind: str  # "audio" | "video"
    owner: Participant
    info: models.TrackInfo
    stats: TrackStats
    fanout: Fanout | None = None
    mid: str | None = None
    receiver: Any = None  # aiortc's RTCRtpReceiver of a client's track (its loss and jitter)

    @property
    def muted(self) -> bool:
        return self.info.muted

    @property
    def ready(self) -> bool:
        """Media is arriving (or being generated), so it can be forwarded."""
        return self.fanout is not None


@dataclass
class Room:
    """A room: created by its first join, forgotten with the 'forget' fault or server stop."""

    name: str
    sid: str = field(default_factory=lambda: new_sid("RM_"))
    created_at: float = field(default_factory=time.time)
    participants: dict[str, Participant] = field(default_factory=dict)  # by identity
    metadata: str = ""
    empty_timeout: int = 300  # s: a room nobody joined closes after this (LiveKit's default)
    departure_timeout: int = 20  # s: a room closes this long after its last participant left
    max_participants: int = 0  # 0: no limit
    closing: asyncio.TimerHandle | None = field(default=None, repr=False)

    def to_proto(self) -> models.Room:
        return models.Room(
            sid=self.sid,
            name=self.name,
            metadata=self.metadata,
            empty_timeout=self.empty_timeout,
            departure_timeout=self.departure_timeout,
            max_participants=self.max_participants,
            creation_time=int(self.created_at),
            creation_time_ms=int(self.created_at * 1000),
            num_participants=len(self.participants),
            num_publishers=sum(1 for p in self.participants.values() if p.tracks),
            enabled_codecs=[
                models.Codec(mime="audio/opus"),
                models.Codec(mime="video/VP8"),
                models.Codec(mime="video/H264"),
            ],
        )

    def others(self, participant: Participant) -> list[Participant]:
        """Everyone in the room but `participant`."""
        return [p for p in self.participants.values() if p is not participant]


def server_info() -> models.ServerInfo:
    return models.ServerInfo(
        edition=models.ServerInfo.Standard,
        version=SERVER_VERSION,
        protocol=PROTOCOL_VERSION,
        region="loopback",
        node_id="devserver",
    )


def track_info_from_request(sid: str, kind: str, req: rtc.AddTrackRequest) -> models.TrackInfo:
    """TrackInfo for the track an AddTrackRequest announces."""
    return models.TrackInfo(
        sid=sid,
        type=models.AUDIO if kind == "audio" else models.VIDEO,
        name=req.name,
        muted=req.muted,
        width=req.width,
        height=req.height,
        source=req.source,
        disable_dtx=req.disable_dtx,
        stereo=req.stereo,
        disable_red=req.disable_red,
        mime_type="audio/opus" if kind == "audio" else "video/VP8",
        stream=req.stream,
    )
