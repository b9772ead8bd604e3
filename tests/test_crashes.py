"""Crashes since boot: counted from a marker only a clean exit removes, reset by a new boot."""

from __future__ import annotations

from pathlib import Path

from appliance.crashes import CrashLedger


def test_clean_exits_count_nothing_and_unclean_ones_count_once_each(tmp_path: Path) -> None:
    assert CrashLedger(tmp_path, "boot-1").begin() == 0
    CrashLedger(tmp_path, "boot-1").end()  # clean stop
    first = CrashLedger(tmp_path, "boot-1")
    assert first.begin() == 0  # started after a clean exit
    # ...killed without end(): the next start counts it
    assert CrashLedger(tmp_path, "boot-1").begin() == 1
    assert CrashLedger(tmp_path, "boot-1").begin() == 2


def test_a_new_boot_starts_counting_afresh(tmp_path: Path) -> None:
    CrashLedger(tmp_path, "boot-1").begin()
    assert CrashLedger(tmp_path, "boot-1").begin() == 1
    assert CrashLedger(tmp_path, "boot-2").begin() == 0


def test_without_a_state_directory_nothing_is_counted() -> None:
    ledger = CrashLedger(None, "boot-1")
    assert ledger.begin() == 0
    ledger.end()


def test_a_corrupt_ledger_is_started_afresh(tmp_path: Path) -> None:
    (tmp_path / "crashes.json").write_text("{not json")
    assert CrashLedger(tmp_path, "b").begin() == 0
