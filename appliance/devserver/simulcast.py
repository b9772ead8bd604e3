"""Simulcast at the double: accept every layer a publisher offers, decode and forward the best."""

from __future__ import annotations

import logging
import re
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters

log = logging.getLogger(__name__)

# LiveKit's layer names, lowest first; a name it does not use ranks below them all.
RANKS = {"q": 1, "h": 2, "f": 3}
STALE_AFTER = 1.0  # s without packets before a layer counts as gone (the encoder dropped it)
RID_URIS = ("urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
            "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id")
_EXTMAP = re.compile(r"^a=extmap:(\d+)(?:/\S+)? (\S+)")
_SIMULCAST = re.compile(r"^a=simulcast:send (\S+)")


@dataclass
class LayerPicker:
    """Which simulcast layer (RID) of one received video section is decoded and forwarded.

    The best layer arriving wins: a better one is taken as soon as it arrives, and the choice
    falls back when the chosen one stops (libwebrtc pauses top layers when bandwidth or CPU is
    short). The others are dropped before aiortc sees them, which handles one stream per section.
    """

    rids: tuple[str, ...]
    selected: str | None = None
    seen: dict[str, float] = field(default_factory=dict)  # rid -> last packet (monotonic)
    switches: int = 0
    _ssrc_rid: dict[int, str] = field(default_factory=dict)

    def accept(self, ssrc: int, rid: str | None, now: float | None = None) -> bool:
        """Whether a packet of `ssrc` (with the RID it carries, if any) should be decoded."""
        if rid:
            self._ssrc_rid[ssrc] = rid
        else:
            rid = self._ssrc_rid.get(ssrc)
        if rid is None:
            return False  # a stream not yet tied to a layer: drop until it says which
        now = time.monotonic() if now is None else now
        self.seen[rid] = now
        current = self.selected
        stale = current is None or now - self.seen.get(current, 0.0) > STALE_AFTER
        if stale or RANKS.get(rid, 0) > RANKS.get(current or "", 0):
            best = max((r for r, at in self.seen.items() if now - at <= STALE_AFTER),
                       key=lambda r: RANKS.get(r, 0))
            if best != current:
                log.info("simulcast: forwarding layer %s (was %s)", best, current)
                self.selected = best
                self.switches += 1
        return rid == self.selected


# The picker of each receiver (read by rtcpatch's RTP routing).
pickers: weakref.WeakKeyDictionary[Any, LayerPicker] = weakref.WeakKeyDictionary()


def sections(sdp: str) -> list[list[str]]:
    """The SDP's lines grouped per media section (index 0: the session part)."""
    lines = sdp.replace("\r\n", "\n").strip("\n").split("\n")
    grouped: list[list[str]] = [[]]
    for line in lines:
        if line.startswith("m="):
            grouped.append([])
        grouped[-1].append(line)
    return grouped


def offered_layers(offer_sdp: str) -> dict[str, tuple[str, ...]]:
    """mid -> the RIDs of each offered simulcast section (`a=simulcast:send h;q`)."""
    found: dict[str, tuple[str, ...]] = {}
    for section in sections(offer_sdp)[1:]:
        mid = next((line[len("a=mid:"):] for line in section if line.startswith("a=mid:")), None)
        sim = next((m.group(1) for line in section if (m := _SIMULCAST.match(line))), None)
        if mid is not None and sim is not None:
            rids = tuple(r.lstrip("~") for alt in sim.split(";") for r in alt.split(","))
            found[mid] = rids
    return found


def accept_in_answer(offer_sdp: str, answer_sdp: str) -> str:
    """Answer each simulcast send section with `a=rid:X recv` and `a=simulcast:recv`.

    Without them libwebrtc sends only the first layer it lists, which for the JavaScript SDK
    is the lowest (320x180 of a 640x360 camera).
    """
    offer, answer = sections(offer_sdp), sections(answer_sdp)
    for index in range(1, min(len(offer), len(answer))):
        sim = next((m.group(1) for line in offer[index] if (m := _SIMULCAST.match(line))), None)
        if sim is None or any(line.startswith("a=simulcast:") for line in answer[index]):
            continue
        rids = [r.lstrip("~") for alt in sim.split(";") for r in alt.split(",")]
        answer[index].extend(f"a=rid:{rid} recv" for rid in rids)
        answer[index].append(f"a=simulcast:recv {sim}")
    return "\r\n".join(line for section in answer for line in section) + "\r\n"


def rid_extensions(offer_sdp: str) -> RTCRtpParameters:
    """The offer's RID header-extension ids, for aiortc's packet parser (it negotiates none)."""
    found: dict[str, int] = {}
    for line in offer_sdp.replace("\r\n", "\n").split("\n"):
        m = _EXTMAP.match(line)
        if m is not None and m.group(2) in RID_URIS:
            found.setdefault(m.group(2), int(m.group(1)))
    return RTCRtpParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=ext_id, uri=uri) for uri, ext_id in found.items()])
