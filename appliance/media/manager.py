"""MediaManager: the session's MediaLayer: camera, microphone and speaker, as the session asks."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from livekit import rtc

from appliance.config import Config
from appliance.errors import DeviceError
from appliance.media.audio import AudioCapture, AudioPlayback
from appliance.media.backends import (
    CameraChoice,
    microphone_factory,
    resolve_camera,
    speaker_factory,
)
from appliance.media.camera import CameraPipeline
from appliance.media.microphone import MicrophonePipeline
from appliance.media.speaker import Speaker
from appliance.media.supervisor import RetryPolicy, TrackSupervisor
from appliance.media.video import VideoMode
from appliance.session.media import Post
from appliance.session.model import Event, TrackKind

log = logging.getLogger(__name__)

_MAINTAIN_RESOLUTION = cast(Any, int(rtc.DegradationPreference.MAINTAIN_RESOLUTION))
# Estimated capture + playback buffering the echo canceller must allow for (see audio.PERIODS).
ECHO_DELAY_MS = 50


@dataclass(frozen=True)
class MediaOverrides:
    """Injection points for tests and the demo; None means: from the configuration."""

    camera: CameraChoice | None = None
    microphone: Callable[[], AudioCapture] | None = None
    speaker: Callable[[], AudioPlayback] | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    use_config_devices: bool = True  # False: only the overrides above exist


class MediaManager:
    """Implements `appliance.session.media.MediaLayer`.

    Besides the protocol, the room link calls `publish_options(kind)` when publishing and
    `remote_track_subscribed/unsubscribed(identity, track)` (its RemoteTrackSink) for the
    speaker. It keeps only what it must to execute: the session's last mute wishes and video
    mode, applied to devices opened later.
    """

    def __init__(self, cfg: Config, overrides: MediaOverrides | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self._over = overrides or MediaOverrides()
        self._clock = clock
        self._post: Post = _drop
        self._camera_choice: CameraChoice | None = None
        self.camera: TrackSupervisor[CameraPipeline] | None = None
        self.microphone: TrackSupervisor[MicrophonePipeline] | None = None
        self.speaker: Speaker | None = None
        self.apm: rtc.AudioProcessingModule | None = None
        self._echo_cancelling = False  # the APM cancels echo only when a speaker plays
        self._muted = {TrackKind.CAMERA: False, TrackKind.MICROPHONE: False}
        self._video_size: tuple[int, int] | None = (cfg.camera.width, cfg.camera.height)
        self._started = False
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()

    # -- MediaLayer -------------------------------------------------------------------------

    async def start(self, post: Post) -> None:
        """Resolve backends (blocking probes in a thread) and start acquiring; returns at once."""
        if self._started:
            return
        self._started = True
        self._post = post
        over, cfg = self._over, self.cfg
        choice = over.camera
        if choice is None and over.use_config_devices:
            choice = await asyncio.to_thread(resolve_camera, cfg)
        mic = over.microphone or (microphone_factory(cfg) if over.use_config_devices else None)
        spk = over.speaker or (speaker_factory(cfg) if over.use_config_devices else None)
        audio = cfg.audio
        self._echo_cancelling = audio.echo_cancellation and spk is not None
        if mic is not None and (audio.echo_cancellation or audio.noise_suppression
                                or audio.auto_gain_control or audio.high_pass_filter):
            self.apm = rtc.AudioProcessingModule(
                echo_cancellation=self._echo_cancelling,
                noise_suppression=audio.noise_suppression,
                high_pass_filter=audio.high_pass_filter,
                auto_gain_control=audio.auto_gain_control)
        if choice is not None:
            self._camera_choice = choice
            log.info("camera: %s", choice.why)
            self.camera = TrackSupervisor(TrackKind.CAMERA, self._open_camera, post,
                                          retry=over.retry, clock=self._clock)
            self.camera.start()
        else:
            log.info("camera: none")
        if mic is not None:
            factory = mic
            self.microphone = TrackSupervisor(
                TrackKind.MICROPHONE, lambda: self._open_microphone(factory), post,
                retry=over.retry, clock=self._clock)
            self.microphone.start()
        else:
            log.info("microphone: none")
        self.speaker = Speaker(spk, self.apm if cfg.audio.echo_cancellation else None)
        self.speaker.start()

    def local_tracks(self) -> Mapping[TrackKind, rtc.LocalTrack]:
        tracks: dict[TrackKind, rtc.LocalTrack] = {}
        for sup in (self.camera, self.microphone):
            if sup is not None and sup.pipeline is not None:
                tracks[sup.kind] = sup.pipeline.track
        return tracks

    async def set_track_muted(self, kind: TrackKind, muted: bool) -> bool:
        self._muted[kind] = muted
        sup = self.camera if kind is TrackKind.CAMERA else self.microphone
        pipeline = sup.pipeline if sup is not None else None
        flipped = pipeline.set_muted(muted) if pipeline is not None else False
        log.info("%s %s", kind.value, "muted" if muted else "unmuted")
        return flipped

    async def set_video_mode(self, size: tuple[int, int] | None) -> None:
        self._video_size = size
        pipeline = self.camera.pipeline if self.camera else None
        if pipeline is not None:
            pipeline.set_mode(self._mode())

    async def set_camera_enabled(self, enabled: bool) -> None:
        if self.camera is not None:
            await self.camera.set_enabled(enabled)

    def simulate_camera(self, present: bool) -> None:
        """Unplug (False) or replug (True) the test camera, as the demo's `c` key does."""
        faults = self._camera_choice.faults if self._camera_choice is not None else None
        if faults is None:
            raise DeviceError("only the test camera (camera.backend = \"test\") can be "
                              "unplugged on request; unplug the real one")
        if present:
            faults.replug()
        else:
            faults.lose()
        log.info("test camera %s on request", "replugged" if present else "unplugged")

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for part in (self.speaker, self.camera, self.microphone):
            if part is None:
                continue
            try:
                await part.aclose()
            except (OSError, RuntimeError) as exc:  # keep releasing the others
                log.error("closing %s failed: %s", type(part).__name__, exc)

    # -- what the session adapter also calls ------------------------------------------------

    def publish_options(self, kind: TrackKind) -> rtc.TrackPublishOptions:
        """How to publish the track `local_tracks()` gave for `kind`."""
        if kind is TrackKind.MICROPHONE:
            return rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        # One layer, resolution kept: the degradation ladder owns the capture size (libwebrtc
        # would otherwise downscale on its own and hide the rung from the LEDs and the log);
        # in between rungs the encoder drops frame rate. The pre-encoded path cannot simulcast.
        options = rtc.TrackPublishOptions(
            source=rtc.TrackSource.SOURCE_CAMERA, simulcast=False,
            degradation_preference=_MAINTAIN_RESOLUTION)
        if self._camera_choice is not None and self._camera_choice.encoded:
            options.video_codec = rtc.VideoCodec.H264
            options.video_encoder = rtc.VideoEncoderBackend.ENCODER_BACKEND_PRE_ENCODED
        return options

    def add_remote_audio(self, track: rtc.Track) -> None:
        """A remote audio track was subscribed: play it (call on the event loop)."""
        if self.speaker is not None and track.kind == rtc.TrackKind.KIND_AUDIO:
            self.speaker.add_track(track)

    async def remove_remote_audio(self, sid: str, track: rtc.Track | None = None) -> None:
        if self.speaker is not None:
            await self.speaker.remove_track(sid, track)

    # appliance.rtc.livekit.RemoteTrackSink (called on the event loop by the link)

    def plays_remote_audio(self) -> bool:
        # A configured speaker that is missing now (USB plugged in later) still counts: the
        # Speaker keeps trying to open it.
        return self._over.speaker is not None or (
            self._over.use_config_devices and self.cfg.speaker.backend != "none")

    def remote_track_subscribed(self, identity: str, track: rtc.RemoteTrack) -> None:
        self.add_remote_audio(track)

    def remote_track_unsubscribed(self, identity: str, track: rtc.RemoteTrack) -> None:
        if self.speaker is not None and track.sid:
            task = asyncio.get_running_loop().create_task(
                self.remove_remote_audio(track.sid, track))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # -- internals --------------------------------------------------------------------------

    def _mode(self) -> VideoMode | None:
        size = self._video_size
        return None if size is None else VideoMode(size[0], size[1], self.cfg.camera.fps)

    async def _open_camera(self) -> CameraPipeline:
        choice = self._camera_choice
        assert choice is not None
        base = VideoMode(self.cfg.camera.width, self.cfg.camera.height, self.cfg.camera.fps)
        mode = self._mode()
        pipeline = await CameraPipeline.open(choice.factory(), mode or base,
                                             encoded=choice.encoded)
        if mode is None:
            pipeline.set_mode(None)  # acquired while degraded to audio only
        if self._muted[TrackKind.CAMERA]:
            pipeline.set_muted(True)  # before it is ever published
        return pipeline

    async def _open_microphone(self, factory: Callable[[], AudioCapture]) -> MicrophonePipeline:
        return await MicrophonePipeline.open(factory(), self.apm,
                                             muted=self._muted[TrackKind.MICROPHONE],
                                             echo_delay_ms=(ECHO_DELAY_MS if self._echo_cancelling
                                                            else None))


def _drop(event: Event) -> None:
    log.debug("media event before start: %s", event)
