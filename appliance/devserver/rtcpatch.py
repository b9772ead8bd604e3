"""aiortc adjustments the double needs, applied once and only inside the devserver process."""

from __future__ import annotations

import logging
import re
import weakref
from typing import Any

import aioice.ice
from aiortc.rtcdtlstransport import RTCDtlsTransport, RtpRouter
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtpPacket, is_rtcp, pack_remb_fci

from appliance.devserver import simulcast

log = logging.getLogger(__name__)

_applied = False
# RTP packets and payload bytes routed to each receiver, read by the per-track stats.
packet_counts: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
byte_counts: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


def _loopback_only(use_ipv4: bool = True, use_ipv6: bool = False) -> list[str]:
    # libwebrtc (the SDK) ignores loopback *interfaces* but happily connects to a 127.0.0.1
    # candidate the remote offers. Offering only 127.0.0.1 keeps every packet on this host (or
    # inside the test's network namespace) whatever interfaces the machine has.
    return ["127.0.0.1"] if use_ipv4 else []


def _route_rtp(self: RtpRouter, packet: RtpPacket) -> Any:
    # Simulcast-capable offers carry no a=ssrc lines and bundle several sections with the same
    # payload types, so aiortc's SSRC / payload-type routing drops the packets. The MID header
    # extension names the section: use it first, and learn the SSRC from it.
    mid = packet.extensions.mid
    receiver = self.mid_table.get(mid) if mid is not None else None
    if receiver is not None:
        self.ssrc_table[packet.ssrc] = receiver
    else:
        receiver = _original_route_rtp(self, packet)
    if receiver is not None:
        packet_counts[receiver] = packet_counts.get(receiver, 0) + 1
        byte_counts[receiver] = byte_counts.get(receiver, 0) + len(packet.payload)
    return receiver


async def _handle_rtp_data(self: RTCDtlsTransport, data: bytes, arrival_time_ms: int) -> None:
    if getattr(self, "_devserver_drop", False):
        return
    await _original_handle_rtp(self, data, arrival_time_ms)


async def _handle_rtcp_data(self: RTCDtlsTransport, data: bytes) -> None:
    if getattr(self, "_devserver_drop", False):
        return
    await _original_handle_rtcp(self, data)


async def _send_rtp(self: RTCDtlsTransport, data: bytes) -> None:
    # The black-hole fault: RTP and RTCP vanish both ways while ICE, DTLS, data channels and
    # signalling stay up, as when a middlebox drops media but not the rest.
    if getattr(self, "_devserver_drop", False) and (is_rtcp(data) or len(data) >= 12):
        return
    await _original_send_rtp(self, data)


async def _receive_rtp(self: RTCRtpReceiver, packet: RtpPacket, arrival_time_ms: int) -> None:
    picker = simulcast.pickers.get(self)
    if picker is not None:
        # One simulcast section carries a stream per layer; aiortc decodes one: the best. The
        # others still count towards the bandwidth estimate, or the REMB we send would cover
        # only the decoded layer and libwebrtc would switch the better ones off for good.
        rid = packet.extensions.rtp_stream_id or packet.extensions.repaired_rtp_stream_id
        if not picker.accept(packet.ssrc, rid):
            await _estimate_only(self, packet, arrival_time_ms)
            return
    await _original_receive_rtp(self, packet, arrival_time_ms)


async def _estimate_only(receiver: RTCRtpReceiver, packet: RtpPacket,
                         arrival_time_ms: int) -> None:
    # What aiortc's receiver does first with every packet (its private state, by design here).
    estimator = getattr(receiver, "_RTCRtpReceiver__remote_bitrate_estimator", None)
    rtcp_ssrc = getattr(receiver, "_RTCRtpReceiver__rtcp_ssrc", None)
    if estimator is None or packet.extensions.abs_send_time is None:
        return
    remb = estimator.add(abs_send_time=packet.extensions.abs_send_time,
                         arrival_time_ms=arrival_time_ms,
                         payload_size=len(packet.payload) + packet.padding_size,
                         ssrc=packet.ssrc)
    if rtcp_ssrc is not None and remb is not None:
        await receiver._send_rtcp(RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc,
                                                 media_ssrc=0, fci=pack_remb_fci(*remb)))


_original_route_rtp = RtpRouter.route_rtp
_original_receive_rtp = RTCRtpReceiver._handle_rtp_packet
_original_handle_rtp = RTCDtlsTransport._handle_rtp_data
_original_handle_rtcp = RTCDtlsTransport._handle_rtcp_data
_original_send_rtp = RTCDtlsTransport._send_rtp


def apply() -> None:
    """Patch aiortc/aioice for the double (idempotent). See each function for why."""
    global _applied
    if _applied:
        return
    aioice.ice.get_host_addresses = _loopback_only
    RtpRouter.route_rtp = _route_rtp  # type: ignore[method-assign]
    RTCDtlsTransport._handle_rtp_data = _handle_rtp_data  # type: ignore[method-assign]
    RTCDtlsTransport._handle_rtcp_data = _handle_rtcp_data  # type: ignore[method-assign]
    RTCDtlsTransport._send_rtp = _send_rtp  # type: ignore[method-assign]
    RTCRtpReceiver._handle_rtp_packet = _receive_rtp  # type: ignore[method-assign]
    _applied = True
    log.debug("aiortc patched: loopback candidates, MID routing, black-hole hooks, simulcast")


def set_black_hole(transport: RTCDtlsTransport, drop: bool) -> None:
    """Drop (or stop dropping) RTP/RTCP on one DTLS transport."""
    transport._devserver_drop = drop  # type: ignore[attr-defined]


_EXTMAP_RID = re.compile(r"^a=extmap:\d+ urn:ietf:params:rtp-hdrext:sdes:(repaired-)?rtp-stream-id")


def _sections(sdp: str) -> list[list[str]]:
    lines = sdp.replace("\r\n", "\n").strip("\n").split("\n")
    sections: list[list[str]] = [[]]
    for line in lines:
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line)
    return sections


def copy_rid_extensions(offer_sdp: str, answer_sdp: str) -> str:
    """Copy the offer's RID header-extension lines into the matching answer sections.

    aiortc leaves them out; the SDK then fails to apply the answer to a simulcast video section.
    The answer then also accepts every offered simulcast layer (`simulcast.accept_in_answer`).
    """
    offer, answer = _sections(offer_sdp), _sections(answer_sdp)
    for index in range(1, min(len(offer), len(answer))):
        extra = [line for line in offer[index] if _EXTMAP_RID.match(line)]
        if extra and not any(_EXTMAP_RID.match(line) for line in answer[index]):
            answer[index].extend(extra)
    text = "\r\n".join(line for section in answer for line in section) + "\r\n"
    return simulcast.accept_in_answer(offer_sdp, text)
