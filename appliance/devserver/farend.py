"""A built-in far-end participant: publishes a sine tone and, optionally, a stamped pattern."""

from __future__ import annotations

import logging

from livekit.protocol import models

from appliance.devserver.hub import Hub
from appliance.devserver.media import Fanout, PatternTrack, ToneTrack
from appliance.devserver.model import PublishedTrack, new_sid
from appliance.devserver.participant import Participant
from appliance.devserver.stats import TrackStats

log = logging.getLogger(__name__)


class FarEnd:
    """Handle on a far-end participant; `leave()` and `rejoin()` may be called repeatedly."""

    def __init__(self, hub: Hub, room: str, identity: str, tone_hz: float, video: bool,
                 video_size: tuple[int, int], fps: int) -> None:
        self._hub = hub
        self.room = room
        self.identity = identity
        self.tone_hz = tone_hz
        self.video = video
        self._video_size = video_size
        self._fps = fps
        self.participant: Participant | None = None

    @property
    def joined(self) -> bool:
        return self.participant is not None

    @property
    def sid(self) -> str | None:
        return self.participant.sid if self.participant is not None else None

    async def join(self) -> None:
        """Enter the room and start publishing (what `DevServer.add_far_end` calls)."""
        if self.participant is not None:
            return
        room = self._hub.ensure_room(self.room)
        old = room.participants.get(self.identity)
        if old is not None:
            await self._hub.remove(old, models.DUPLICATE_IDENTITY)
        participant = Participant(self._hub, room, self.identity, self.identity, single_pc=False,
                                  can_subscribe=False)
        participant.far_end = True
        participant.state = models.ParticipantInfo.ACTIVE
        self._hub.add_participant(participant)
        self.participant = participant
        sources: list[tuple[str, ToneTrack | PatternTrack]] = [("audio", ToneTrack(self.tone_hz))]
        if self.video:
            width, height = self._video_size
            sources.append(("video", PatternTrack(width, height, self._fps)))
        for kind, _source in sources:
            sid = new_sid("TR_")
            info = models.TrackInfo(
                sid=sid,
                type=models.AUDIO if kind == "audio" else models.VIDEO,
                name=f"far-end-{kind}",
                source=models.MICROPHONE if kind == "audio" else models.CAMERA,
                mime_type="audio/opus" if kind == "audio" else "video/VP8",
                width=self._video_size[0] if kind == "video" else 0,
                height=self._video_size[1] if kind == "video" else 0,
            )
            track = PublishedTrack(sid=sid, cid=sid, kind=kind, owner=participant, info=info,
                                   stats=TrackStats(kind=kind))
            participant.tracks[sid] = track
        self._hub.record("join", participant)
        self._hub.webhooks.emit("participant_joined", room=room.to_proto(),
                                participant=participant.info())
        await self._hub.announce(participant)
        for (_, source), track in zip(sources, list(participant.tracks.values()), strict=True):
            # Generated media is not measured: the figures that matter are the kiosk's.
            track.fanout = Fanout(source, track.stats, measure=False, on_change=self._hub.notify,
                                  name=f"{self.identity}-{track.kind}")
            await self._hub.track_ready(track)

    async def leave(self) -> None:
        """Leave the room (the kiosk sees the participant go)."""
        participant, self.participant = self.participant, None
        if participant is not None:
            await self._hub.remove(participant, models.CLIENT_INITIATED)

    async def rejoin(self) -> None:
        """Leave if present, then join again with fresh tracks."""
        await self.leave()
        await self.join()
