"""Crashes since boot: a marker in the state directory that only a clean exit removes.

A kiosk killed by a signal (SIGABRT from a panicking SDK or the watchdog, SIGSEGV, SIGKILL)
never removes its marker, so the next start finds it and counts one more crash. The count
starts again at each boot (it is stored with the kernel's boot id).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
CRASH_LOOP_AFTER = 3  # this many crashes since boot, and not yet back in the room: crash loop


def current_boot_id() -> str:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return "unknown-boot"


class CrashLedger:
    """`begin()` at start returns the crashes since boot; `end()` on a clean exit."""

    def __init__(self, directory: Path | None, boot_id: str | None = None) -> None:
        self.directory = directory
        self.boot_id = boot_id or current_boot_id()

    @classmethod
    def from_environment(cls) -> CrashLedger:
        """systemd's StateDirectory= ($STATE_DIRECTORY); without it, crashes are not counted."""
        state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
        return cls(Path(state) if state else None)

    def _paths(self) -> tuple[Path, Path] | None:
        if self.directory is None:
            return None
        return self.directory / "crashes.json", self.directory / "running"

    def begin(self) -> int:
        paths = self._paths()
        if paths is None:
            return 0
        ledger, marker = paths
        count = 0
        try:
            data = json.loads(ledger.read_text())
            if isinstance(data, dict) and data.get("boot_id") == self.boot_id:
                count = int(data.get("count", 0))
        except (OSError, ValueError, TypeError):
            count = 0  # no ledger yet, or unreadable: start counting afresh
        try:
            if marker.read_text().strip() == self.boot_id:
                count += 1
                log.error("the previous run ended without a clean exit: %d crash(es) since boot",
                          count)
        except OSError:
            pass
        try:
            ledger.write_text(json.dumps({"boot_id": self.boot_id, "count": count}))
            marker.write_text(self.boot_id)
        except OSError as exc:
            log.warning("cannot record crashes in %s: %s", self.directory, exc.strerror)
        return count

    def end(self) -> None:
        paths = self._paths()
        if paths is not None:
            try:
                paths[1].unlink(missing_ok=True)
            except OSError as exc:
                log.warning("cannot clear the running marker: %s", exc.strerror)
