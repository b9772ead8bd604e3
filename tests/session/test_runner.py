"""The runner with fake link, media and tokens: effects executed, retries forever, clean stop."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from typing import Any

from session_helpers import fast_config
from state_waits import wait_state

from appliance.errors import AuthRejected, TokenError
from appliance.session.model import (
    ButtonName,
    ButtonPressed,
    Fault,
    Intent,
    ProbeVerdict,
    RoomConnected,
    RoomDisconnected,
    RoomState,
    StopRequested,
    TrackKind,
    TrackState,
)

OK = RoomState.CONNECTED


def published(s: Any) -> bool:
    return (s.room is OK and s.camera is TrackState.PUBLISHED
            and s.microphone is TrackState.PUBLISHED)


async def test_joins_and_publishes_media(harness_factory: Any) -> None:
    h = await harness_factory()
    s = await wait_state(h.runner, lambda s: published(s) and s.video_live and s.mic_live)
    assert s.alone
    assert h.link.calls[0] == ("connect", "ws://fake", "token-1")


async def test_failed_joins_retry_forever_one_at_a_time(harness_factory: Any) -> None:
    h = await harness_factory(link_setup=lambda link: link.fail_next(times=4))
    await wait_state(h.runner, published)
    connects = [c for c in h.link.calls if c[0] == "connect"]
    assert len(connects) == 5 and h.link.max_in_flight == 1
    assert h.runner.state.attempt == 4  # reset only after a stable minute


async def test_token_failures_follow_the_backoff_and_auth_is_a_fault(harness_factory: Any) -> None:
    h = await harness_factory()
    h.tokens.fail_next(AuthRejected("401 from endpoint"))
    h.tokens.fail_next(TokenError("endpoint down"))
    seen: list[Fault] = []
    h.runner.add_listener(lambda s: seen.append(s.fault))
    await wait_state(h.runner, published)
    assert Fault.AUTH_REJECTED in seen and Fault.SERVER_UNREACHABLE in seen
    assert h.tokens.fetches[:3] == [False, True, False]  # after an auth failure: a fresh token


async def test_sdk_giving_up_rejoins_with_a_fresh_room_and_republishes(
        harness_factory: Any) -> None:
    h = await harness_factory()
    await wait_state(h.runner, published)
    rooms: list[RoomState] = []
    h.runner.add_listener(lambda s: rooms.append(s.room) if rooms[-1:] != [s.room] else None)
    h.link.published.clear()
    h.runner.post(RoomDisconnected(h.runner.clock(), "SIGNAL_CLOSE"))
    await wait_state(h.runner, lambda s: published(s) and RoomState.DISCONNECTED in rooms)
    assert [c[0] for c in h.link.calls].count("connect") == 2
    assert rooms[:3] == [RoomState.DISCONNECTED, RoomState.CONNECTING, OK]


async def test_leave_button_stays_out_until_pressed_again(harness_factory: Any) -> None:
    h = await harness_factory()
    await wait_state(h.runner, published)
    h.runner.post(ButtonPressed(h.runner.clock(), ButtonName.LEAVE))
    s = await wait_state(h.runner, lambda s: s.room is RoomState.DISCONNECTED)
    assert s.intent is Intent.LEFT and not s.retry_pending and ("disconnect",) in h.link.calls
    h.runner.post(ButtonPressed(h.runner.clock(), ButtonName.LEAVE))
    await wait_state(h.runner, published)


async def test_mute_from_a_gpio_thread_reaches_livekit(harness_factory: Any) -> None:
    h = await harness_factory()
    await wait_state(h.runner, published)
    clock = h.runner.clock
    thread = threading.Thread(
        target=lambda: h.runner.post(ButtonPressed(clock(), ButtonName.MUTE)))
    thread.start()
    thread.join()
    s = await wait_state(h.runner, lambda s: s.mic_muted)
    assert s.mic_mute_wanted and not s.mic_live and ("microphone_muted", True) in h.media.calls


async def test_camera_privacy_unpublishes_before_stopping(harness_factory: Any) -> None:
    h = await harness_factory()
    await wait_state(h.runner, lambda s: published(s) and s.mic_live)
    h.runner.post(ButtonPressed(h.runner.clock(), ButtonName.MUTE, long=True))
    s = await wait_state(h.runner, lambda s: s.camera is TrackState.STOPPED)
    assert s.camera_privacy and not s.video_live and s.mic_live
    assert h.link.calls.index(("unpublish", "camera")) >= 0
    assert h.media.calls[-1] == ("camera_enabled", False)
    h.runner.post(ButtonPressed(h.runner.clock(), ButtonName.MUTE, long=True))
    await wait_state(h.runner, lambda s: s.video_live)


async def test_stalled_media_forces_a_rejoin(harness_factory: Any) -> None:
    h = await harness_factory()
    await wait_state(h.runner, published)
    h.link.stuck = {TrackKind.MICROPHONE}  # its counters stop growing; the camera's do not
    s = await wait_state(h.runner, lambda s: s.room is RoomState.DISCONNECTING, within=5)
    assert s.last_disconnect_reason == "microphone media stalled"
    h.link.stuck = set()
    await wait_state(h.runner, published)


async def test_stop_while_connecting_exits_promptly(harness_factory: Any) -> None:
    gate = asyncio.Event()  # never set: the join hangs

    def hang(link: Any) -> None:
        link.gate = gate

    h = await harness_factory(link_setup=hang)
    await wait_state(h.runner, lambda s: s.room is RoomState.CONNECTING)
    h.runner.post(StopRequested(h.runner.clock(), "SIGTERM"))
    async with asyncio.timeout(5):
        assert await h.task == 0
    assert h.media.closed == 1 and h.tokens.closed == 1 and h.link.closed == 1


async def test_unexpected_events_are_logged_and_ignored(harness_factory: Any, caplog: Any) -> None:
    h = await harness_factory()
    await wait_state(h.runner, published)
    before = h.runner.state
    h.runner.post(RoomConnected(h.runner.clock()))
    h.runner.post(StopRequested(h.runner.clock()))
    async with asyncio.timeout(5):
        await h.task
    assert h.runner.unexpected == 1 and before.room is OK
    assert "unexpected RoomConnected while connected" in caplog.text


async def test_config_for_tests_is_fast() -> None:
    assert fast_config().reconnect.backoff_max < 1


async def test_a_probe_brings_the_kiosk_back_long_before_the_backoff(harness_factory: Any) -> None:
    # a retry ceiling of an hour: the retry timer (uniform in 0..3600 s) cannot be what rejoins
    cfg = fast_config(backoff_initial=3600.0, backoff_max=3600.0, auth_backoff_max=3600.0)
    cfg = dataclasses.replace(cfg, reconnect=dataclasses.replace(cfg.reconnect,
                                                                 probe_interval=0.2))

    def down(link: Any) -> None:
        link.fail_next()  # the first join fails: the server is down
        link.probe_verdict = ProbeVerdict.UNREACHABLE

    h = await harness_factory(cfg, link_setup=down)
    s = await wait_state(h.runner, lambda s: s.retry_pending and s.probe_pending)
    assert s.next_retry_at is not None
    probes = [c for c in h.link.calls if c[0] == "probe"]
    h.link.probe_verdict = ProbeVerdict.OK  # the server is back
    returned = h.runner.clock()
    await wait_state(h.runner, published, within=5)
    assert h.runner.clock() < s.next_retry_at  # the probe, not the backoff, did it
    assert h.runner.clock() - returned < 1.0
    assert len([c for c in h.link.calls if c[0] == "probe"]) > len(probes)
