"""Fixtures for session tests (helpers live in session_helpers.py)."""

from session_helpers import harness_factory

__all__ = ["harness_factory"]
