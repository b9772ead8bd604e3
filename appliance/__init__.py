"""Room-kiosk appliance: binds a Pi's camera, audio, buttons and LEDs to a LiveKit room."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("room-kiosk-appliance")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
