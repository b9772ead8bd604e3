"""Media test fixtures (the helpers live in media_helpers.py so tests can import them)."""

from media_helpers import alsa_files, loop_lag, posted

__all__ = ["alsa_files", "loop_lag", "posted"]
