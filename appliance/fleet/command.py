"""`appliance fleet`: serve the fleet service; enrol, import, revoke and list devices."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

EX_OK, EX_FAILED, EX_USAGE, EX_UNAVAILABLE, EX_CONFIG = 0, 1, 64, 69, 78
DEFAULT_PORT = 7890


def default_db() -> str:
    env = os.environ.get("FLEET_DATABASE_URL")
    if env:
        return env
    state = os.environ.get("STATE_DIRECTORY")  # systemd's StateDirectory=
    return f"sqlite:///{Path(state or '.').resolve() / 'fleet.db'}"


def register(subparsers: Any) -> None:
    fleet = subparsers.add_parser(
        "fleet", help="fleet service: token endpoint, enrolment, presence, console",
        description=__doc__)
    fleet.add_argument("--db", default=default_db(),
                       help="database URL: sqlite:///PATH (default ./fleet.db or "
                            "$STATE_DIRECTORY/fleet.db) or postgresql://user@host/db "
                            "(default: $FLEET_DATABASE_URL)")
    sub = fleet.add_subparsers(dest="op", metavar="OP", required=True)
    serve = sub.add_parser("serve", help="run the service (reads LIVEKIT_URL, LIVEKIT_API_KEY, "
                                         "LIVEKIT_API_SECRET)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=None,
                       help=f"default {DEFAULT_PORT}; with --listen-fd, only when given")
    serve.add_argument("--public-url", default="", help="LiveKit URL handed to kiosks "
                                                        "(default: LIVEKIT_URL)")
    serve.add_argument("--token-ttl", type=float, default=300.0,
                       help="token lifetime (default 300 s: every join fetches a fresh one)")
    serve.add_argument("--device-limit", type=int, default=10,
                       help="token issues per device per --device-window (default 10)")
    serve.add_argument("--device-window", type=float, default=60.0)
    serve.add_argument("--global-rate", type=float, default=200.0,
                       help="token issues per second per instance (default 200)")
    serve.add_argument("--poll-interval", type=float, default=3.0)
    serve.add_argument("--secure-cookies", action="store_true",
                       help="mark cookies Secure (behind HTTPS)")
    serve.add_argument("--trusted-proxy", action="append", default=[], metavar="ADDR",
                       help="a reverse proxy's address: its X-Forwarded-For names the client "
                            "(for login limits and audit rows; repeatable)")
    serve.add_argument("--login-failures", type=int, default=5, metavar="N",
                       help="failed console logins per operator name and address per "
                            "--login-window before that pair is refused (429) for a window "
                            "(default 5)")
    serve.add_argument("--login-name-failures", type=int, default=20, metavar="N",
                       help="... per operator name from any address (default 20)")
    serve.add_argument("--login-address-failures", type=int, default=50, metavar="N",
                       help="... per address for any name (default 50)")
    serve.add_argument("--login-window", type=float, default=900.0, metavar="SECONDS",
                       help="the failure window, and how long a block lasts (default 900)")
    serve.add_argument("--audit-days", type=float, default=90.0, metavar="DAYS",
                       help="delete audit rows older than this (default 90; 0 keeps them "
                            "forever)")
    serve.add_argument("--listen-fd", type=int, action="append", default=[], metavar="FD",
                       help="serve on this inherited listening socket instead of binding "
                            "--host/--port (repeatable; `appliance demo` hands in its own and "
                            "one on the host's loopback from its private network namespace)")
    enrol = sub.add_parser("enrol", help="enrol a device; writes its key to --key-file (0600)")
    keygen = sub.add_parser("keygen", help="offline: make a device key and an import row "
                                           "(for `appliance fleet import`), no database")
    for p in (enrol, keygen):
        p.add_argument("identity")
        p.add_argument("--room", required=True)
        p.add_argument("--name", default="")
        p.add_argument("--profile", default="")
        p.add_argument("--key-file", type=Path, required=True,
                       help="where the device key goes (the device's device_key_file)")
    enrol.add_argument("--rekey", action="store_true", help="replace the key of an enrolled "
                                                            "device (and un-revoke it)")
    keygen.add_argument("--enrol-file", type=Path, required=True,
                        help="append the import row (identity, room, key id, key hash) here")
    imp = sub.add_parser("import", help="enrol the rows of a keygen file (JSON lines)")
    imp.add_argument("file", type=Path)
    rev = sub.add_parser("revoke", help="revoke a device (and remove it from its room if "
                                        "LIVEKIT_* are set)")
    rev.add_argument("identity")
    ls = sub.add_parser("ls", help="enrolled devices with presence and health")
    ls.add_argument("--json", action="store_true")
    op = sub.add_parser("operator", help="add an operator or set a password (asks for it, or "
                                         "reads FLEET_OPERATOR_PASSWORD)")
    op.add_argument("name")
    audit = sub.add_parser("audit", help="the newest audit rows")
    audit.add_argument("--identity")
    audit.add_argument("-n", type=int, default=50)
    unlock = sub.add_parser("unlock", help="forget the failed console logins (and the block) "
                                           "of an operator name or of an address")
    unlock.add_argument("who", help="operator name or client address")
    fleet.set_defaults(func=cmd_fleet)


def cmd_fleet(args: argparse.Namespace) -> int:
    if args.op == "keygen":
        return _keygen(args)
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        return EX_OK


def _write_key(path: Path, key: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    os.chmod(path, 0o600)


def _keygen(args: argparse.Namespace) -> int:
    from appliance.fleet import keys

    key, row = keys.import_row(args.identity, args.room, display_name=args.name,
                               profile=args.profile)
    _write_key(args.key_file, key)
    with args.enrol_file.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(f"{args.identity}: key {row['key_id']} -> {args.key_file}; "
          f"import row -> {args.enrol_file}")
    return EX_OK


def _livekit_env() -> tuple[str, str, str] | None:
    url, key, secret = (os.environ.get(n, "") for n in
                        ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"))
    return (url, key, secret) if url and key and secret else None


async def _run(args: argparse.Namespace) -> int:
    from appliance.fleet.store import DuplicateDevice, Store, import_rows

    store = Store(args.db)
    try:
        await store.migrate()
        if args.op == "serve":
            return await _serve(args, store)
        if args.op == "enrol":
            try:
                key = await store.enrol(args.identity, args.room, display_name=args.name,
                                        profile=args.profile, actor=_user())
            except DuplicateDevice as exc:
                if not args.rekey:
                    print(f"appliance fleet: {exc} (use --rekey)", file=sys.stderr)
                    return EX_FAILED
                from appliance.fleet import keys

                key_id, key = keys.new_device_key()
                await store.add_enrolled(args.identity, args.room, key_id,
                                         keys.hash_secret(key.split(".", 2)[2]),
                                         display_name=args.name, profile=args.profile,
                                         actor=_user(), rekey=True)
            _write_key(args.key_file, key)
            print(f"enrolled {args.identity} in {args.room}; key -> {args.key_file}")
            return EX_OK
        if args.op == "import":
            lines = [json.loads(line) for line in args.file.read_text().splitlines()
                     if line.strip()]
            try:
                rows = import_rows(lines)
            except ValueError as exc:
                print(f"appliance fleet import: {args.file}: {exc}", file=sys.stderr)
                return EX_CONFIG
            for r in rows:
                await store.add_enrolled(r["identity"], r["room"], r["key_id"], r["key_hash"],
                                         display_name=r["display_name"], profile=r["profile"],
                                         actor=_user(), rekey=True)
            print(f"imported {len(rows)} device(s)")
            return EX_OK
        if args.op == "revoke":
            device = await store.revoke(args.identity, actor=_user())
            if device is None:
                print(f"appliance fleet: no device {args.identity!r}", file=sys.stderr)
                return EX_FAILED
            env = _livekit_env()
            if env is not None:
                from appliance.fleet.livekit import LiveKitOps

                ops = LiveKitOps(*env)
                try:
                    removed = await ops.remove(device.room, device.identity)
                finally:
                    await ops.aclose()
                print(f"revoked {args.identity}" + (f"; removed from {device.room}"
                                                    if removed else "; not in its room"))
            else:
                print(f"revoked {args.identity} (LIVEKIT_* not set: not removed from its room; "
                      f"the service does it when revoking from the console)")
            return EX_OK
        if args.op == "ls":
            return await _ls(store, as_json=args.json)
        if args.op == "operator":
            password = os.environ.get("FLEET_OPERATOR_PASSWORD") or getpass.getpass(
                f"password for {args.name}: ")
            if len(password) < 8:
                print("appliance fleet: passwords have at least 8 characters", file=sys.stderr)
                return EX_USAGE
            await store.set_operator(args.name, password)
            print(f"operator {args.name} set")
            return EX_OK
        if args.op == "unlock":
            from appliance.fleet.logins import LoginPolicy, LoginThrottle

            if not args.who:
                print("appliance fleet unlock: give an operator name or an address",
                      file=sys.stderr)
                return EX_USAGE
            cleared = await LoginThrottle(store, LoginPolicy()).unlock(args.who)
            await store.audit("unlock", actor=_user(), detail=f"{args.who}: {cleared} row(s)")
            print(f"unlocked {args.who} ({cleared} login limit row(s) cleared)")
            return EX_OK
        if args.op == "audit":
            for a in reversed(await store.audit_rows(args.n, args.identity)):
                when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(a.at))
                print(f"{when}  {a.action:<16} {a.status or '':>3}  {a.identity or '-':<16} "
                      f"{a.actor or a.remote or '-':<16} {a.detail}")
            return EX_OK
        return EX_USAGE
    finally:
        await store.aclose()


async def _ls(store: Any, *, as_json: bool) -> int:
    from appliance.fleet.store import device_dict

    rows = [device_dict(d) for d in await store.devices()]
    if as_json:
        print(json.dumps(rows, indent=2))
        return EX_OK
    head = ("identity", "room", "presence", "fault", "mic", "camera", "quality", "revoked")
    table = [head] + [tuple(str(r[c] if r[c] not in ("", None) else "-") for c in head)
                      for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for row in table:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return EX_OK


async def _serve(args: argparse.Namespace, store: Any) -> int:
    from aiohttp import web

    from appliance.fleet.logins import LoginPolicy
    from appliance.fleet.service import FleetService, FleetSettings
    from appliance.listeners import ListenerError, inherited_listener

    env = _livekit_env()
    if env is None:
        print("appliance fleet serve: set LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET",
              file=sys.stderr)
        return EX_CONFIG
    limits = {"--login-failures": args.login_failures,
              "--login-name-failures": args.login_name_failures,
              "--login-address-failures": args.login_address_failures}
    bad = [f"{flag} must be at least 1 (got {n})" for flag, n in limits.items() if n < 1]
    if args.login_window <= 0:
        bad.append(f"--login-window must be positive (got {args.login_window:g})")
    if args.audit_days < 0:
        bad.append(f"--audit-days must be 0 (keep forever) or more (got {args.audit_days:g})")
    sockets = []
    for fd in args.listen_fd:
        try:
            sockets.append(inherited_listener(fd))
        except ListenerError as exc:
            bad.append(str(exc))
    if bad:
        print(f"appliance fleet serve: {'; '.join(bad)}", file=sys.stderr)
        return EX_USAGE
    policy = LoginPolicy(pair_failures=args.login_failures,
                         name_failures=args.login_name_failures,
                         address_failures=args.login_address_failures,
                         window=args.login_window)
    settings = FleetSettings(*env, public_url=args.public_url, token_ttl=args.token_ttl,
                             device_limit=args.device_limit, device_window=args.device_window,
                             global_rate=args.global_rate, global_burst=2 * args.global_rate,
                             poll_interval=args.poll_interval,
                             secure_cookies=args.secure_cookies,
                             trusted_proxies=tuple(args.trusted_proxy), logins=policy,
                             audit_days=args.audit_days)
    service = FleetService(store, settings)
    runner = web.AppRunner(service.app(), access_log=None)
    await runner.setup()
    sites: list[web.BaseSite] = [web.SockSite(runner, sock) for sock in sockets]
    if args.port is not None or not sockets:
        port = DEFAULT_PORT if args.port is None else args.port
        sites.append(web.TCPSite(runner, args.host, port))
    try:
        for site in sites:
            await site.start()
    except OSError as exc:
        await runner.cleanup()
        print(f"appliance fleet serve: cannot listen on {site.name}: {exc.strerror}",
              file=sys.stderr)
        return EX_UNAVAILABLE
    where = ", ".join(site.name for site in sites)
    print(f"fleet service on {where} (database {store.dialect}); "
          f"token endpoint /token, webhooks /webhook", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
    return EX_OK


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"
