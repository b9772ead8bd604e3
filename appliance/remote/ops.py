"""`appliance ops`: look after kiosks from afar (attributes via RoomService, actions via RPC).

Reads LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET as LiveKit's own tools do. A kiosk is
a participant with a `kiosk.state` attribute; `ls` lists only those (browsers, phones and
operators are left out) unless `--all` asks for every participant, non-kiosks marked as such.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from typing import Any

ACTIONS = ("status", "identify", "mute", "camera-off", "rejoin", "restart", "leave")
EX_FAILED, EX_REFUSED, EX_UNREACHABLE, EX_USAGE = 1, 2, 3, 64
COLUMNS = ("kiosk.state", "kiosk.fault", "kiosk.mic", "kiosk.camera", "kiosk.quality",
           "kiosk.version", "kiosk.crashes")


def register(subparsers: Any) -> None:
    ops = subparsers.add_parser(
        "ops", help="operator tools: list kiosks with their health, act on one remotely",
        description=__doc__)
    ops.add_argument("--room", help="only this room (default: every room)")
    ops.add_argument("--url", default=os.environ.get("LIVEKIT_URL", ""),
                     help="LiveKit server (default: $LIVEKIT_URL)")
    sub = ops.add_subparsers(dest="op", metavar="OP", required=True)
    ls = sub.add_parser("ls", help="every kiosk with its health attributes")
    ls.add_argument("--json", action="store_true", help="JSON instead of a table")
    ls.add_argument("--all", action="store_true",
                    help="every participant, not only kiosks (others: state not-a-kiosk)")
    for action in (*ACTIONS, "remove"):
        p = sub.add_parser(action, help=f"{action} one kiosk")
        p.add_argument("kiosk", help="the kiosk's identity")
        if action == "identify":
            p.add_argument("--seconds", type=float, default=30.0)
    # An operator participant used the SDK: skip its native teardown at exit (see cli).
    ops.set_defaults(func=cmd_ops, skip_native_teardown=True)


def _credentials(url: str) -> tuple[str, str, str]:
    key, secret = os.environ.get("LIVEKIT_API_KEY", ""), os.environ.get("LIVEKIT_API_SECRET", "")
    missing = [n for n, v in (("LIVEKIT_URL (or --url)", url), ("LIVEKIT_API_KEY", key),
                              ("LIVEKIT_API_SECRET", secret)) if not v]
    if missing:
        raise SystemExit(f"appliance ops: set {', '.join(missing)}")
    return url, key, secret


def cmd_ops(args: argparse.Namespace) -> int:
    url, key, secret = _credentials(args.url)
    try:
        return asyncio.run(_run(args, url, key, secret))
    except KeyboardInterrupt:
        return EX_FAILED


def is_kiosk(participant: Any) -> bool:
    """A kiosk publishes `kiosk.state` (always, while in a room with remote.attributes on)."""
    return "kiosk.state" in participant.attributes


async def _participants(lk: Any, room: str | None, *, everyone: bool = False
                        ) -> list[tuple[str, Any]]:
    """(room, participant) for every kiosk, or for every participant with `everyone`."""
    from livekit import api

    rooms = [room] if room else [r.name for r in (await lk.room.list_rooms(
        api.ListRoomsRequest())).rooms]
    found = []
    for name in rooms:
        resp = await lk.room.list_participants(api.ListParticipantsRequest(room=name))
        found += [(name, p) for p in resp.participants if everyone or is_kiosk(p)]
    return found


async def _run(args: argparse.Namespace, url: str, key: str, secret: str) -> int:
    import aiohttp
    from livekit import api

    from appliance.rtc.operator import OperatorError, call_kiosk, operator_token

    async with api.LiveKitAPI(url, key, secret) as lk:
        try:
            kiosks = await _participants(lk, args.room,
                                         everyone=args.op == "ls" and args.all)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            print(f"appliance ops: cannot reach LiveKit at {url}: {exc}", file=sys.stderr)
            return EX_UNREACHABLE
        except api.TwirpError as exc:
            print(f"appliance ops: LiveKit refused: {exc.message}", file=sys.stderr)
            return EX_REFUSED
        if args.op == "ls":
            _print_kiosks(kiosks, as_json=args.json)
            return 0
        rooms = [r for r, p in kiosks if p.identity == args.kiosk]
        if not rooms:
            seen = ", ".join(sorted(p.identity for _, p in kiosks)) or "none"
            print(f"appliance ops: no kiosk {args.kiosk!r} in "
                  f"{args.room or 'any room'} (kiosks seen: {seen})", file=sys.stderr)
            return EX_FAILED
        if args.op == "remove":
            await lk.room.remove_participant(api.RoomParticipantIdentity(
                room=rooms[0], identity=args.kiosk))
            print(f"removed {args.kiosk} from {rooms[0]}")
            return 0
    _, token = operator_token(key, secret, rooms[0], _user())
    payload = json.dumps({"seconds": args.seconds}) if args.op == "identify" else ""
    try:
        reply = await call_kiosk(url, token, args.kiosk, f"kiosk.{args.op}", payload)
    except OperatorError as exc:
        print(f"appliance ops: {exc}", file=sys.stderr)
        return EX_REFUSED if exc.code else EX_UNREACHABLE
    print(reply)
    return 0


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers): still a valid operator name
        return "cli"


def _print_kiosks(kiosks: list[tuple[str, Any]], *, as_json: bool) -> None:
    rows = [{"identity": p.identity, "room": room, "kiosk": is_kiosk(p), **dict(p.attributes)}
            for room, p in kiosks]
    if as_json:
        print(json.dumps(rows, indent=2, sort_keys=True))
        return
    head = ("identity", "room", *(c.removeprefix("kiosk.") for c in COLUMNS))
    table = [head] + [(r["identity"], r["room"], *(
        r.get(c, "-") if r["kiosk"] or c != "kiosk.state" else "not-a-kiosk" for c in COLUMNS))
        for r in rows]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(head))]
    for row in table:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
