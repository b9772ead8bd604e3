"""The daemon's kiosk receives the far end's audio only (no display: never video), and none at
all without a speaker; the double records what it forwards. Real SDK, real ALSA file plugin."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from session_e2e_helpers import (
    IDENTITY,
    ROOM,
    e2e_config,
    kiosk_of,
    on_air,
    running_session,
    wait_state,
    write_alsa,
)

from appliance.config import SpeakerConfig
from appliance.devserver.stats import dominant_frequency
from appliance.media import MediaManager

pytestmark = pytest.mark.e2e


def forwarded(srv: Any) -> list[tuple[str, str]] | None:
    """(publisher, kind) of every track the double sends the kiosk; None while it is absent."""
    p = srv.participant(ROOM, IDENTITY)
    if p is None:
        return None
    return sorted((t.owner.identity, t.kind) for t in p.subscriptions.forwarded())


async def played_tone(speaker: Any, spk: Path, frames: int = 200) -> float | None:
    """Dominant frequency of the last second the speaker wrote, after `frames` more frames."""
    async with asyncio.timeout(15):
        await speaker.played.reached(speaker.played.count + frames)
    played = np.frombuffer(await asyncio.to_thread(spk.read_bytes), dtype="<i2")
    return dominant_frequency(played[-48000:], 48000)


async def test_kiosk_subscribes_to_far_end_audio_only(devserver: Any, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _mic, spk = write_alsa(tmp_path, monkeypatch)
    cfg = dataclasses.replace(e2e_config(devserver),
                              speaker=SpeakerConfig(backend="alsa", device="kiosk_spk"))
    both = [("far-end", "audio")]
    await devserver.add_far_end(ROOM, "far-end", tone_hz=1000, video=True)  # there at join
    async with running_session(cfg) as runner:
        await wait_state(runner, on_air)
        await devserver.wait_for(lambda: forwarded(devserver) == both, timeout=15,
                                 what="the far end's audio forwarded to the kiosk")
        kiosk = devserver.participant(ROOM, IDENTITY)
        assert not kiosk.subscriptions.auto
        media = kiosk_of(runner).media
        assert isinstance(media, MediaManager) and media.speaker is not None
        assert await played_tone(media.speaker, spk) == pytest.approx(1000, abs=5)

        # Published after the join (track_published): its audio is taken, its video is not.
        await devserver.add_far_end(ROOM, "far-2", tone_hz=600, video=True)
        both = [("far-2", "audio"), ("far-end", "audio")]
        await devserver.wait_for(lambda: forwarded(devserver) == both, timeout=15,
                                 what="the second far end's audio forwarded")

        # A resume keeps the session and its subscriptions.
        await devserver.faults.close_sockets(IDENTITY)
        await devserver.wait_for(lambda: kiosk.resumes >= 1, timeout=20, what="a resume")
        assert devserver.participant(ROOM, IDENTITY) is kiosk and forwarded(devserver) == both

        # The resume refused: the SDK rejoins by itself, a new participant at the double, and
        # the kiosk subscribes again (that very participant, not a later rejoin of the kiosk's).
        devserver.faults.set_refuse_resumes(True)
        await devserver.faults.close_sockets(IDENTITY)
        rejoined = await devserver.wait_for(
            lambda: (p := devserver.participant(ROOM, IDENTITY)) not in (None, kiosk) and p,
            timeout=20, what="the SDK's rejoin")
        devserver.faults.set_refuse_resumes(False)
        await devserver.wait_for(
            lambda: sorted((t.owner.identity, t.kind)
                           for t in rejoined.subscriptions.forwarded()) == both,
            timeout=15, what="both far ends' audio forwarded after the SDK's rejoin")
        await wait_state(runner, on_air)
        await devserver.remove_far_end(ROOM, "far-2")
        assert await played_tone(media.speaker, spk) == pytest.approx(1000, abs=5)


async def test_kiosk_without_a_speaker_subscribes_to_nothing(devserver: Any) -> None:
    cfg = e2e_config(devserver)  # speaker backend "none"
    await devserver.add_far_end(ROOM, "far-end", tone_hz=1000, video=True)
    async with running_session(cfg) as runner:
        await wait_state(runner, on_air)
        kiosk = devserver.participant(ROOM, IDENTITY)
        # The link subscribes right after the join, before it publishes; the double handles
        # one socket's messages in order, so the kiosk's published tracks prove any such
        # request was already applied.
        assert len(kiosk.tracks) == 2
        assert not kiosk.subscriptions.auto and not kiosk.subscriptions.wanted
        assert forwarded(devserver) == []
