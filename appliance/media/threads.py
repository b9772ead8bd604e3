"""Device threads named in the kernel too, so `top -H` and /proc show where the CPU goes."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

_PR_SET_NAME = 15  # prctl(2): the calling thread's name, 15 bytes at most
_libc: ctypes.CDLL | None = None


def _set_kernel_name(name: str) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if _libc.prctl(_PR_SET_NAME, name.encode("ascii", "replace")[:15], 0, 0, 0) != 0:
        log.debug("prctl(PR_SET_NAME, %r) failed: errno %d", name, ctypes.get_errno())


def device_thread(target: Callable[[], None], name: str) -> threading.Thread:
    """A daemon thread running `target` whose kernel name is `name` (Python 3.11 sets none)."""

    def run() -> None:
        try:
            _set_kernel_name(name)
        except OSError as exc:  # no libc to ask: the name is a convenience, never a failure
            log.debug("cannot name thread %s: %s", name, exc)
        target()

    return threading.Thread(target=run, name=name, daemon=True)
