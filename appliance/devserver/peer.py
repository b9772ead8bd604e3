"""aiortc peer connections for the double: creation, candidates, and offers the SDK accepts."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.sdp import candidate_from_sdp

from appliance.devserver import rtcpatch

log = logging.getLogger(__name__)


def new_peer_connection() -> RTCPeerConnection:
    """A peer connection that bundles everything and contacts no STUN server."""
    rtcpatch.apply()
    # iceServers=[] matters: aiortc's default is a public STUN server, and the double must never
    # send a packet off this host.
    config = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    pc = RTCPeerConnection(configuration=config)

    @pc.on("connectionstatechange")
    def _log_state() -> None:
        log.debug("peer connection %s: %s", id(pc), pc.connectionState)

    return pc


def parse_candidate(candidate_init: str) -> Any | None:
    """An aiortc RTCIceCandidate from the SDK's trickle JSON; None for end-of-candidates."""
    data = json.loads(candidate_init)
    text = str(data.get("candidate", ""))
    if not text:
        return None
    if text.startswith("candidate:"):
        text = text[len("candidate:") :]
    candidate = candidate_from_sdp(text)
    candidate.sdpMid = data.get("sdpMid")
    candidate.sdpMLineIndex = data.get("sdpMLineIndex")
    return candidate


def dtls_transports(pc: RTCPeerConnection) -> list[RTCDtlsTransport]:
    """Every DTLS transport of a peer connection (one when bundled)."""
    found: list[RTCDtlsTransport] = []
    for transceiver in pc.getTransceivers():
        transport = transceiver.receiver.transport
        if transport is not None and transport not in found:
            found.append(transport)
    sctp = pc.sctp
    if sctp is not None and sctp.transport not in found:
        found.append(sctp.transport)
    return found


def offer_direction(transceiver: RTCRtpTransceiver) -> str | None:
    """The direction the remote's last offer asks of us ('recvonly' = they send to us)."""
    direction: str | None = transceiver._offerDirection
    return direction


def has_sender(transceiver: RTCRtpTransceiver) -> bool:
    """Whether a transceiver already sends a track (aiortc types `track` as never None)."""
    track: object = transceiver.sender.track
    return track is not None


def adopt_remote_ice_credentials(pc: RTCPeerConnection, offer_sdp: str) -> None:
    """Follow an ICE restart: take the offer's new ufrag/pwd for our ongoing ICE session.

    aiortc cannot restart ICE; it keeps its session and answers with its old credentials. The
    SDK's new check generation still reaches us, and with these credentials our checks and
    replies match it, so the connection survives a resume.
    """
    ufrag = pwd = None
    for line in offer_sdp.splitlines():
        if line.startswith("a=ice-ufrag:") and ufrag is None:
            ufrag = line.split(":", 1)[1].strip()
        elif line.startswith("a=ice-pwd:") and pwd is None:
            pwd = line.split(":", 1)[1].strip()
    if not ufrag or not pwd:
        return
    for transport in dtls_transports(pc):
        connection = transport.transport._connection
        if connection.remote_username and connection.remote_username != ufrag:
            log.debug("ICE restart: remote ufrag %s -> %s", connection.remote_username, ufrag)
            connection.remote_username = ufrag
            connection.remote_password = pwd


async def answer(pc: RTCPeerConnection, offer_sdp: str) -> str:
    """Create and set our answer to an offer already applied; returns SDP the SDK accepts."""
    local = await pc.createAnswer()
    await pc.setLocalDescription(local)
    return rtcpatch.copy_rid_extensions(offer_sdp, pc.localDescription.sdp)


async def apply_offer(pc: RTCPeerConnection, sdp: str) -> None:
    """Apply a remote offer (following an ICE restart if it is one)."""
    restart = pc.remoteDescription is not None
    await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
    if restart:
        adopt_remote_ice_credentials(pc, sdp)
