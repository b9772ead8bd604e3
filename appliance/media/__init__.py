"""Media layer: camera, microphone and speaker bound to LiveKit sources, with device loss."""

from appliance.media.backends import describe_media
from appliance.media.manager import MediaManager, MediaOverrides

__all__ = ["MediaManager", "MediaOverrides", "describe_media"]
