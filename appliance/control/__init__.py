"""Local control socket: protocol limits, its error, the server and the CLI client."""

from __future__ import annotations

from appliance.errors import ApplianceError

MAX_REQUEST = 4096  # bytes in one request line; longer lines get an error and a hang-up


class ControlError(ApplianceError, OSError):
    """The control socket could not be served or reached, or a request was refused."""
