"""The fleet service with the real kiosk against the test double (inside scripts/netns-run):
revocation end to end, and the console in Debian's Chromium through Playwright."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from fleet_support import Running, start_service

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from session_e2e_helpers import e2e_config, running_session, wait_state

from appliance.fleet.store import Device, Store
from appliance.session.model import Fault, RoomState

pytestmark = [pytest.mark.e2e]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]


@dataclasses.dataclass
class Stack:
    fleet: Running
    srv: Any
    key_file: Path

    def kiosk_config(self) -> Any:
        cfg = e2e_config(self.srv, api_key=None, api_secret=None,
                         token_url=self.fleet.token_url, device_key_file=self.key_file)
        return dataclasses.replace(cfg, reconnect=dataclasses.replace(
            cfg.reconnect, removed_stay_out=1.0))


@pytest.fixture
async def stack(tmp_path: Path, devserver_factory: Callable[..., Any]) -> AsyncIterator[Stack]:
    from appliance.devserver import DEV_API_KEY, DEV_API_SECRET

    store = Store(f"sqlite:///{tmp_path / 'fleet.db'}")
    await store.migrate()
    fleet = await start_service(store, api_key=DEV_API_KEY, api_secret=DEV_API_SECRET,
                                poll_interval=1.0)
    srv = await devserver_factory(webhook_urls=[f"{fleet.url}/webhook"])
    fleet.service.settings.livekit_url = srv.url  # known once the double is bound
    fleet.service.lk.url = srv.url
    key = await store.enrol("kiosk-1", "lobby", display_name="Front desk")
    key_file = tmp_path / "device_key"
    key_file.write_text(key + "\n")
    os.chmod(key_file, 0o600)
    yield Stack(fleet, srv, key_file)
    await fleet.runner.cleanup()
    await store.aclose()


async def wait_device(store: Store, predicate: Callable[[Device], bool],
                      within: float = 20.0) -> Device:
    """The registry row once `predicate` holds, woken by each change the service commits."""
    async with asyncio.timeout(within):
        while True:
            changed = asyncio.ensure_future(store.wait_changed())  # armed before the read
            try:
                d = await store.device("kiosk-1")
                if d is not None and predicate(d):
                    return d
                await changed
            finally:
                changed.cancel()


async def test_revocation_end_to_end(stack: Stack) -> None:
    store = stack.fleet.store
    async with running_session(stack.kiosk_config()) as runner:
        await wait_state(runner, lambda s: s.room is RoomState.CONNECTED)
        d = await wait_device(store, lambda d: d.presence == "in-room" and d.mic != "")
        assert d.tokens_issued >= 1 and d.version
        status, result = await stack.fleet.service.perform(d, "revoke", "alice")
        assert status == 200 and result == {"revoked": True, "removed": True}
        s = await wait_state(runner, lambda s: s.fault is Fault.AUTH_REJECTED, within=20)
        assert s.room is not RoomState.CONNECTED
        # ... and it keeps trying, in the slow lane: a second refusal comes
        # (woken by the kiosk's own failed attempts, not by polling the database)
        await wait_state(runner, lambda t: t.attempt >= s.attempt + 1, within=20)
        rows = list(await store.audit_rows(identity="kiosk-1"))
        assert sum(1 for a in rows if a.status == 403) >= 2, [(a.action, a.status) for a in rows]
        assert runner.state.fault is Fault.AUTH_REJECTED
        assert stack.srv.participant("lobby", "kiosk-1") is None
        d = await wait_device(store, lambda d: d.presence == "out")
        assert d.revoked


@pytest.mark.skipif(not Path(CHROMIUM).exists() or shutil.which("chromium") is None,
                    reason="Debian's chromium is not installed (apt-get install chromium)")
async def test_console_in_a_browser(stack: Stack, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright, expect

    await stack.fleet.store.set_operator("alice", "correct horse")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_FLAGS, viewport={"width": 390, "height": 844})  # a phone
        try:
            page = browser.pages[0] if browser.pages else await browser.new_page()
            await page.goto(f"{stack.fleet.url}/")
            await expect(page.locator("form.card")).to_be_visible()  # redirected to log in
            await page.fill("input[name=name]", "alice")
            await page.fill("input[name=password]", "correct horse")
            await page.click("button[type=submit]")
            await expect(page.locator("#live")).to_have_text("live", timeout=10_000)
            card = page.locator('article[data-identity="kiosk-1"]')
            await expect(card).to_be_visible()  # enrolled, not in its room yet
            async with running_session(stack.kiosk_config()) as runner:
                await expect(card).to_have_attribute("data-presence", "in-room",
                                                     timeout=30_000)
                await expect(card.locator(".state")).to_have_text("in room", timeout=10_000)
                await card.locator('button[data-action="identify"]').click()
                await wait_state(runner, lambda s: s.identify_until is not None, within=20)
                await expect(page.locator("#message")).to_contain_text("identify kiosk-1: done",
                                                                       timeout=15_000)
                # a fault: the server drops the kiosk and refuses its credentials
                stack.srv.faults.reject(401, 60.0)
                await stack.srv.faults.leave("DISCONNECT", "kiosk-1")
                await expect(card).to_have_attribute("data-presence", "out", timeout=15_000)
                await page.check("#f-offline")
                await page.fill("#f-minutes", "0")
                await expect(card).to_be_visible()
                await page.uncheck("#f-offline")
                await wait_state(runner, lambda s: s.fault is Fault.AUTH_REJECTED, within=20)
        finally:
            await browser.close()
