"""Drives the demo: keys and script steps become button presses and faults; views get drawn."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from appliance.demo import panel
from appliance.demo.panel import fit
from appliance.demo.script import Step
from appliance.demo.view import Observer, View
from appliance.demo.world import FAR_END, KIOSK, ROOM, DemoError, DemoWorld

POLL = 0.25
HEARTBEAT = 5.0

# key -> (verb, args): the same vocabulary as script steps, so both paths share `perform`.
KEYS: dict[str, tuple[str, tuple[str, ...]]] = {
    "m": ("press", ("mute",)),
    "M": ("hold", ("mute",)),  # no duration: just past the kiosk's gpio.mute_hold
    "l": ("press", ("leave",)),
    "L": ("hold", ("leave",)),  # ... and gpio.leave_hold
    "d": ("fault", ("drop-signalling",)),
    "s": ("fault", ("server-down", "70")),
    "a": ("fault", ("unauthorized", "30")),
    "p": ("fault", ("quality", "poor")),
    "g": ("fault", ("quality", "good")),
    "b": ("fault", ("black-hole", "toggle")),
    "c": ("fault", ("camera", "toggle")),
    "f": ("fault", ("far-end", "toggle")),
    "i": ("remote", ("identify",)),  # an operator's `appliance ops identify`, over LiveKit RPC
}


class Actions:
    """Performs one step against the world; remembers toggles (black-hole, far end, camera)."""

    def __init__(self, world: DemoWorld) -> None:
        self.world = world
        self.black_hole = False
        self.far_end_present = True
        self.camera_present = True
        self.said = ""  # what the last step reported: the message line of a picture
        self._tasks: set[asyncio.Task[None]] = set()

    def _later(self, delay: float, action: Callable[[], Awaitable[None]]) -> None:
        async def run() -> None:
            await asyncio.sleep(delay)
            await action()

        task = asyncio.create_task(run(), name="demo-later")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _far_end_returns(self) -> None:
        if self.far_end_present:
            with contextlib.suppress(DemoError):
                await self.world.fault("far-end", room=ROOM, identity=FAR_END, tone_hz=1000.0,
                                       video=True)

    def close(self) -> None:
        """Cancel what is still scheduled (a far end due back after an outage)."""
        for task in self._tasks:
            task.cancel()

    async def perform(self, verb: str, args: tuple[str, ...]) -> str:
        said = await self._perform(verb, args)
        self.said = said or self.said
        return said

    async def _perform(self, verb: str, args: tuple[str, ...]) -> str:
        w = self.world
        if verb == "press":
            await w.press(args[0])
            return f"pressed {args[0]}"
        if verb == "hold":
            held, long = await w.hold(args[0], float(args[1]) if len(args) > 1 else None)
            return f"held {args[0]} for {held:g} s ({'long' if long else 'short'} press)"
        if verb == "wait":
            await asyncio.sleep(float(args[0]))
            return ""
        if verb == "remote":
            return await self._remote(args[0], float(args[1]) if len(args) > 1 else 10.0)
        if verb != "fault":
            raise DemoError(f"unknown step {verb!r}")
        return await self._fault(args[0], args[1:])

    async def _remote(self, action: str, seconds: float) -> str:
        """An operator's `appliance ops ACTION kiosk-demo`; a refusal is reported, not raised
        (a script may check that the kiosk refuses)."""
        argv = ((action, KIOSK, "--seconds", f"{seconds:g}") if action == "identify"
                else (action, KIOSK))
        code, said = await _run_ops(self.world, *argv)
        outcome = "done" if code == 0 else f"failed, exit {code}"
        return f"appliance ops {' '.join(argv)}: {outcome} ({said})"

    async def _fault(self, name: str, rest: tuple[str, ...]) -> str:
        w = self.world
        if name == "drop-signalling":
            closed = await w.fault("close-sockets", identity=KIOSK)
            return f"closed {closed} signalling socket(s): the SDK resumes"
        if name in ("server-down", "unauthorized"):
            seconds = float(rest[0]) if rest else (70.0 if name == "server-down" else 30.0)
            status = 503 if name == "server-down" else 401
            await w.fault("reject", status=status, seconds=seconds)
            await w.fault("forget")  # a restart: sessions gone, so the kiosk must rejoin
            # The far end is a client of that server too: it comes back when the server does.
            self._later(seconds, self._far_end_returns)
            return f"server answers {status} for {seconds:g} s (and forgot every session)"
        if name == "quality":
            quality = rest[0] if rest else "poor"
            await w.fault("quality", identity=KIOSK, quality=quality)
            return f"server reports {quality} connection quality"
        if name == "black-hole":
            on = _toggle(rest, self.black_hole)
            await w.fault("black-hole", on=on, identity=KIOSK)
            self.black_hole = on
            return f"media black-hole {'on' if on else 'off'} (signalling stays up)"
        if name == "far-end":
            present = not _toggle(rest, not self.far_end_present, on_word="leave")
            if present:
                await w.fault("far-end", room=ROOM, identity=FAR_END, tone_hz=1000.0, video=True)
            else:
                await w.fault("far-end/leave", room=ROOM, identity=FAR_END)
            self.far_end_present = present
            return f"far end {'joined' if present else 'left'}"
        if name == "camera":
            present = not _toggle(rest, not self.camera_present, on_word="unplug")
            await w.simulate_camera(present)
            self.camera_present = present
            return f"camera {'replugged' if present else 'unplugged'}"
        raise DemoError(f"unknown fault {name!r}")


async def _run_ops(world: DemoWorld, *argv: str) -> tuple[int, str]:
    """`appliance ops ...` against the demo's double, as an operator would run it."""
    from appliance.devserver.auth import DEV_API_KEY, DEV_API_SECRET

    env = dict(os.environ, LIVEKIT_URL=f"ws://127.0.0.1:{world.port}",
               LIVEKIT_API_KEY=DEV_API_KEY, LIVEKIT_API_SECRET=DEV_API_SECRET)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "appliance", "--log-level", "error", "ops", *argv, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    lines = (out or err).decode().strip().splitlines()
    return proc.returncode or 0, lines[-1] if lines else ""


def _toggle(rest: tuple[str, ...], current: bool, on_word: str = "on") -> bool:
    """`on`/`off` (or `unplug`/`replug`, `leave`/`join`) as asked, `toggle` flips `current`."""
    word = rest[0] if rest else "toggle"
    if word == "toggle":
        return not current
    return word == on_word


async def _snapshot(world: DemoWorld, observer: Observer) -> View:
    status: dict[str, Any] | None
    server: dict[str, Any] | None
    try:
        status = await world.kiosk_status()
    except DemoError:
        status = None
    try:
        server = await world.server_state()
    except DemoError:
        server = None
    fleet: dict[str, Any] | None
    try:
        fleet = await world.fleet_device()
    except DemoError:
        fleet = None
    view = observer.fold(status, server, fleet)
    view.processes = world.processes()
    view.console = world.console_line if world.phase == "ready" else ""
    return view


async def write_svg(world: DemoWorld, observer: Observer, path: Path, message: str) -> None:
    """The panel as it is now, as an SVG picture; the operator's password left out."""
    view = await _snapshot(world, observer)
    if view.console:
        view.console = world.console_text(password=False)
    try:
        await asyncio.to_thread(path.write_text, panel.svg(view, message))
    except OSError as exc:
        raise DemoError(f"cannot write the panel to {path}: {exc.strerror}") from None


async def run_script(world: DemoWorld, observer: Observer, steps: list[Step],
                     svg: Path | None = None) -> int:
    """Replay `steps`; with `svg`, the panel at the end (met or not) is written there too."""
    actions = Actions(world)
    try:
        code = await _replay(world, observer, steps, actions)
    finally:
        actions.close()
    if svg is not None:
        await write_svg(world, observer, svg, actions.said)
        print(f"# panel written to {svg}", flush=True)
    return code


async def _replay(world: DemoWorld, observer: Observer, steps: list[Step],
                  actions: Actions) -> int:
    loop = asyncio.get_running_loop()
    last_line = ""
    last_print = 0.0

    def show(view: View, force: bool = False) -> None:
        nonlocal last_line, last_print
        line = observer.text_line(view)
        body = line.split(" ", 2)[-1]
        if force or body != last_line or loop.time() - last_print > HEARTBEAT:
            print(line, flush=True)
            last_line, last_print = body, loop.time()

    print("# processes: " + " ".join(world.processes()), flush=True)
    print(f"# console: {world.console_line}", flush=True)
    show(await _snapshot(world, observer), force=True)
    for step in steps:
        print(f"# {step}", flush=True)
        if step.verb != "expect":
            message = await actions.perform(step.verb, step.args)
            if message:
                print(f"# {message}", flush=True)
            continue
        key, wanted = step.args
        deadline = loop.time() + step.within
        while True:
            view = await _snapshot(world, observer)
            show(view)
            if key not in view.fields:
                print(f"FAILED line {step.line}: unknown field {key!r}; fields are "
                      f"{', '.join(view.fields)}", flush=True)
                return 1
            if view.fields[key] in wanted.split("|"):  # `a|b` accepts either
                break
            if loop.time() > deadline:
                print(f"FAILED line {step.line}: expected {key}={wanted} within "
                      f"{step.within:g} s, still {key}={view.fields[key]}", flush=True)
                return 1
            await asyncio.sleep(POLL)
    print("# script finished: every expectation was met", flush=True)
    return 0


async def run_interactive(world: DemoWorld, observer: Observer, svg: Path | None = None) -> int:
    """The live panel, drawn from the first moment: the start-up and the first join show too.

    With `svg`, quitting with `q` writes the panel as it was then to that file.
    """
    actions = Actions(world)
    loop = asyncio.get_running_loop()
    keys: asyncio.Queue[str] = asyncio.Queue()
    fd = sys.stdin.fileno()

    def on_key() -> None:
        for char in sys.stdin.read(1):
            keys.put_nowait(char)

    loop.add_reader(fd, on_key)
    starting = asyncio.create_task(world.start(), name="demo-start")
    ready = False
    message = ""
    pending: set[asyncio.Task[None]] = set()

    async def act(verb: str, args: tuple[str, ...]) -> None:
        nonlocal message
        try:
            message = await actions.perform(verb, args) or message
        except DemoError as exc:
            message = f"failed: {exc}"

    console = Console()
    try:
        with Live(console=console, screen=True, auto_refresh=False) as live:
            while True:
                if starting.done() and not ready:
                    starting.result()  # a failed start ends the demo with its reason
                    ready, message = True, "ready: press a key below"
                view = await _snapshot(world, observer)
                shown = message if ready else f"{world.phase}... {message}".strip()
                live.update(fit(console, view, shown), refresh=True)
                with contextlib.suppress(TimeoutError):
                    key = await asyncio.wait_for(keys.get(), POLL)
                    if key in ("q", "Q"):
                        if svg is not None:
                            await write_svg(world, observer, svg, shown)
                        return 0
                    if key in KEYS and not ready:
                        message = f"key {key!r} ignored: the kiosk is not started yet"
                    elif key in KEYS:
                        verb, args = KEYS[key]
                        message = f"{verb} {' '.join(args)}..."
                        task = asyncio.create_task(act(verb, args), name=f"demo-key-{key}")
                        pending.add(task)
                        task.add_done_callback(pending.discard)
    finally:
        loop.remove_reader(fd)
        actions.close()
        for task in (starting, *pending):
            task.cancel()
        await asyncio.gather(starting, *pending, return_exceptions=True)
