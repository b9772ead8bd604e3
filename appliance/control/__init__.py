"""Local control socket: protocol limits, its error, the server and the CLI client."""

from __future__ import annotations

from appliance.errors import ApplianceError

MAX_REQUEST = 4096  # bytes in one request line; longer lines get an error and a hang-up
MAX_HOLD = 30.0  # seconds a mock button may be held through the socket


class ControlError(ApplianceError, OSError):
    """The control socket could not be served or reached, or a request was refused."""
