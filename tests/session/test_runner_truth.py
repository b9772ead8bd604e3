"""Hypothesis drives the whole runner (fake link + fake media) and checks LED truth every step.

Each rule changes the world the way the SDK, the server, a device or a person would; then the
runner is run until idle and the LEDs `indicators()` renders are compared with what the fake
room really receives. Camera privacy may change only by a person holding the mute button.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from session_helpers import fast_config

from appliance.config import CameraConfig
from appliance.indicators import CAMERA_ON, MUTE_ON, QUALITY_PATTERNS, LedName, indicators
from appliance.rtc.fake import FakeLink, FakeMedia, FakeTokens
from appliance.session.model import (
    ButtonName,
    ButtonPressed,
    ConnectionQualityChanged,
    Quality,
    StopRequested,
    TrackKind,
)
from appliance.session.runner import Runner
from appliance.session.truth import on_air, sending

MIC, CAM = TrackKind.MICROPHONE, TrackKind.CAMERA
SETTLE_TURNS = 5000  # loop turns (no sleeping): fakes complete within a few
GREEN = {QUALITY_PATTERNS[Quality.EXCELLENT], QUALITY_PATTERNS[Quality.GOOD]}


class RunnerWorld(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        cfg = fast_config()
        # A ladder fast enough that a few steps of POOR reach the audio-only rung.
        cfg = dataclasses.replace(cfg, camera=CameraConfig(backend="test", width=640, height=360,
                                                           degrade_after=0.03,
                                                           restore_after=0.06))
        self.media = FakeMedia()
        self.links: list[FakeLink] = []

        def factory(post: Any) -> FakeLink:
            link = FakeLink(post)
            self.links.append(link)
            return link

        self.runner = Runner(cfg, link_factory=factory, media=self.media, tokens=FakeTokens(),
                             netwatch=False, tick=0.01, stats_interval=0.05)
        self.task = self.loop.create_task(self.runner.run())
        self.settle()

    @property
    def link(self) -> FakeLink:
        return self.links[0]

    # --- plumbing -----------------------------------------------------------------------------

    def settle(self, seconds: float = 0.0, *, act: Any = None, held: bool = False) -> None:
        """Do `act()` on the loop, let `seconds` of real time pass (timers), run until idle.

        Camera privacy must come out as it went in unless a person held the mute button.
        """
        privacy = self.runner.state.camera_privacy

        async def run() -> None:
            if act is not None:
                act()
            if seconds:
                await asyncio.sleep(seconds)  # time passing in the world, not a settle wait
            idle = 0
            for _ in range(SETTLE_TURNS):
                await asyncio.sleep(0)
                idle = idle + 1 if self.runner.idle else 0
                if idle >= 30:
                    return
            raise AssertionError("the runner never became idle")
        self.loop.run_until_complete(run())
        assert not self.task.done(), self.task
        if not held:
            assert self.runner.state.camera_privacy == privacy, "privacy changed without a hold"

    def now(self) -> float:
        return self.runner.clock()

    # --- a person -----------------------------------------------------------------------------

    @rule(button=st.sampled_from(ButtonName), long=st.booleans())
    def press(self, button: ButtonName, long: bool) -> None:
        self.settle(act=lambda: self.runner.post(ButtonPressed(self.now(), button, long)),
                    held=button is ButtonName.MUTE and long)

    # --- the server and the SDK ---------------------------------------------------------------

    @rule(quality=st.sampled_from(Quality), dwell=st.floats(0, 0.1))
    def quality(self, quality: Quality, dwell: float) -> None:
        def act() -> None:
            if self.link.connected:
                self.runner.post(ConnectionQualityChanged(self.now(), quality))
        self.settle(dwell, act=act)

    @rule(kind=st.sampled_from(TrackKind), muted=st.booleans())
    def server_mutes(self, kind: TrackKind, muted: bool) -> None:
        self.settle(act=lambda: self.link.server_mute(kind, muted))

    @rule(what=st.sampled_from(["resuming", "resumed", "gave up", "fail next join"]))
    def sdk(self, what: str) -> None:
        acts = {"resuming": self.link.sdk_resuming, "resumed": self.link.sdk_resumed,
                "gave up": self.link.sdk_gave_up, "fail next join": self.link.fail_next}
        self.settle(act=acts[what])

    # --- devices and time ---------------------------------------------------------------------

    @rule(kind=st.sampled_from(TrackKind), present=st.booleans())
    def device(self, kind: TrackKind, present: bool) -> None:
        self.settle(act=lambda: self.media.replug(kind) if present else self.media.lose(kind))

    @rule(seconds=st.floats(0, 0.15))
    def time_passes(self, seconds: float) -> None:
        self.settle(seconds)

    # --- invariants ---------------------------------------------------------------------------

    @invariant()
    def leds_tell_what_the_room_receives(self) -> None:
        state = self.runner.state
        leds = indicators(state)
        mic_shown_live = leds[LedName.MUTE] != MUTE_ON
        camera_shown_on = leds[LedName.CAMERA] == CAMERA_ON
        mic_really = self.link.on_air(MIC)
        cam_really = self.link.on_air(CAM) and not self.media.video_paused
        # The promise: an LED never claims the room receives what it does not. (The other way
        # round the LED may lag by a stats sample: live is claimed only once seen flowing.)
        assert mic_really or not mic_shown_live, (state.as_dict(), self.link.published)
        assert cam_really or not camera_shown_on, (state.as_dict(), self.link.published,
                                                   self.media.video_paused)
        assert mic_shown_live == on_air(state, MIC)
        # A green quality LED claims a link that carries what we send.
        if leds[LedName.QUALITY] in GREEN:
            assert self.link.connected and not self.link.resuming, state.as_dict()
            assert mic_really or cam_really or not (sending(state, MIC) or sending(state, CAM)), (
                state.as_dict(), self.link.published)

    def teardown(self) -> None:
        async def stop() -> int:
            self.runner.post(StopRequested(self.now(), "test"))
            async with asyncio.timeout(5):
                return await self.task
        try:
            assert self.loop.run_until_complete(stop()) == 0
        finally:
            self.loop.close()


TestRunnerTruth = RunnerWorld.TestCase
TestRunnerTruth.settings = settings(max_examples=25, stateful_step_count=30, deadline=None,
                                    suppress_health_check=[HealthCheck.too_slow])
