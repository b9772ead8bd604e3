"""Fixtures for remote-operation tests: the session tests' runner harness of fakes."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "session"))

from session_helpers import harness_factory

__all__ = ["harness_factory"]
