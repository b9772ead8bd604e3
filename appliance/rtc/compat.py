"""Every use of the `livekit` SDK's private attributes, checked against its version at import."""

from __future__ import annotations

from typing import Any

from livekit import rtc
from livekit.rtc.version import __version__ as SDK_VERSION

from appliance.errors import ApplianceError

# Versions whose private attributes below were read in the source (room.py, participant.py,
# track.py, _ffi_client.py). Widen only after reading the new version's source.
CHECKED_VERSIONS = ("1.2.",)


class UnsupportedSdk(ApplianceError, ImportError):
    """The installed `livekit` SDK is a version this module was not checked against."""


def _check(version: str) -> None:
    if not version.startswith(CHECKED_VERSIONS):
        raise UnsupportedSdk(
            f"livekit {version} is installed, but appliance.rtc.compat was checked against "
            f"livekit {', '.join(v + 'x' for v in CHECKED_VERSIONS)}: install that version "
            "(pip install 'livekit>=1.2.1,<1.3') or re-check the private attributes it uses")


_check(SDK_VERSION)


def _dispose(owner: Any) -> None:
    handle = getattr(owner, "_ffi_handle", None)
    if handle is not None:
        handle.dispose()


def release_handles(room: rtc.Room) -> None:
    """Drop a finished Room's native handles children first.

    Left to the garbage collector, a cycle may drop the room's handle before its local
    participant's, and the livekit 1.2.1 FFI then crashes the process (SIGSEGV, reproduced in
    the 503-for-70-s e2e test). Disposing twice is a no-op in FfiHandle.
    """
    local = getattr(room, "_local_participant", None)  # room.local_participant raises if unset
    if local is not None:
        for publication in list(local.track_publications.values()):
            _dispose(publication)
        _dispose(local)
    for remote in list(room.remote_participants.values()):
        for publication in list(remote.track_publications.values()):
            _dispose(publication)
        _dispose(remote)
    _dispose(room)


def refreshed_token(room: rtc.Room) -> str | None:
    """The token the server last refreshed (room.py stores it on `token_refreshed`)."""
    token = getattr(room, "_token", None)
    return token if isinstance(token, str) and token else None
