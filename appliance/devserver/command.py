"""`appliance devserver`: run the LiveKit-protocol test double until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from appliance.devserver.auth_defaults import DEV_API_KEY, DEV_API_SECRET
from appliance.errors import DevServerError

log = logging.getLogger(__name__)

EX_OK = 0
EX_USAGE = 64
EX_UNAVAILABLE = 69


def _device_key(text: str) -> tuple[str, str]:
    name, sep, key = text.partition("=")
    if not sep or not name or not key:
        raise argparse.ArgumentTypeError(f"expected NAME=KEY, got {text!r}")
    return name, key


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `devserver` subcommand."""
    parser = subparsers.add_parser(
        "devserver",
        help="run the LiveKit-protocol test double (tests and demos; not a production server)",
        description=(
            "Loopback LiveKit-protocol test double with real WebRTC media, for tests and demos. "
            "Not a production SFU: use LiveKit server or LiveKit Cloud for that."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7880, help="signalling/HTTP port (7880)")
    parser.add_argument("--api-key", default=DEV_API_KEY, help=f"API key (default {DEV_API_KEY})")
    parser.add_argument("--api-secret", default=DEV_API_SECRET,
                        help="API secret (default: the documented development secret)")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow a non-loopback --host (the control API stays on loopback)")
    parser.add_argument("--device-key", action="append", type=_device_key, default=[],
                        metavar="NAME=KEY", help="device key accepted by POST /token (repeatable)")
    parser.add_argument("--control-port", type=int, default=None,
                        help="serve the control API on its own loopback port")
    parser.add_argument("--listen-fd", type=int, metavar="FD",
                        help="serve signalling/HTTP on this inherited listening socket instead of "
                             "binding --host/--port (a parent that picked the port hands it in)")
    parser.add_argument("--control-fd", type=int, metavar="FD",
                        help="serve the control API on this inherited loopback listening socket")
    parser.add_argument("--departure-timeout", type=float, default=20.0,
                        help="seconds a dropped session is kept for a resume (20)")
    parser.add_argument("--webhook", action="append", default=[], metavar="URL",
                        help="POST LiveKit webhooks (signed with the API key) here (repeatable)")
    parser.add_argument("--quality-interval", type=float, default=5.0, metavar="SECONDS",
                        help="how often connection quality is graded and sent (5)")
    parser.set_defaults(func=run_devserver)


def run_devserver(args: argparse.Namespace) -> int:
    """Entry point of `appliance devserver`; returns the exit status."""
    from appliance.devserver.server import is_loopback
    from appliance.listeners import ListenerError, inherited_listener

    try:
        args.listen_socket = (None if args.listen_fd is None
                              else inherited_listener(args.listen_fd, "--listen-fd"))
        args.control_socket = (None if args.control_fd is None
                               else inherited_listener(args.control_fd, "--control-fd"))
    except ListenerError as exc:
        print(f"appliance devserver: {exc}", file=sys.stderr)
        return EX_USAGE
    if args.listen_socket is not None:
        args.host, args.port = args.listen_socket.getsockname()[:2]
    if not is_loopback(args.host) and not args.allow_remote:
        print(f"appliance devserver: refusing to bind {args.host}: not a loopback address; "
              "pass --allow-remote if you really mean it", file=sys.stderr)
        return EX_USAGE
    try:
        return asyncio.run(_serve(args))
    except DevServerError as exc:
        print(f"appliance devserver: {exc}", file=sys.stderr)
        return EX_USAGE
    except OSError as exc:
        print(f"appliance devserver: cannot listen on {args.host}:{args.port}: {exc}",
              file=sys.stderr)
        return EX_UNAVAILABLE


async def _serve(args: argparse.Namespace) -> int:
    from appliance.devserver.server import DevServer

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = DevServer(args.host, args.port, args.api_key, args.api_secret,
                       device_keys=dict(args.device_key), allow_remote=args.allow_remote,
                       control_port=args.control_port, departure_timeout=args.departure_timeout,
                       webhook_urls=args.webhook, quality_interval=args.quality_interval,
                       listen_socket=args.listen_socket, control_socket=args.control_socket)
    async with server:
        _print_banner(server, args)
        await stop.wait()
        log.info("devserver stopping")
    return EX_OK


def _print_banner(server: object, args: argparse.Namespace) -> None:
    from appliance.devserver.server import DevServer

    assert isinstance(server, DevServer)
    dev_pair = args.api_key == DEV_API_KEY and args.api_secret == DEV_API_SECRET
    lines = [
        "appliance devserver: LiveKit-protocol test double (tests and demos, NOT production)",
        f"  URL:      {server.url}",
        f"  API key:  {args.api_key}",
        f"  secret:   {args.api_secret if dev_pair else '(as given)'}"
        + ("  <- documented development pair" if dev_pair else ""),
        f"  control:  {server.control_url}  (loopback only; see README)",
        "  token:    python -c \"from livekit import api; print(api.AccessToken("
        f"'{args.api_key}', '<secret>').with_identity('kiosk').with_grants("
        "api.VideoGrants(room_join=True, room='lobby')).to_jwt())\"",
    ]
    if server.webhook_urls:
        lines.append(f"  webhooks: {', '.join(server.webhook_urls)}")
    if server.device_keys:
        body = '{"identity": "kiosk", "room": "lobby"}'
        lines.append(f"  device token: curl -H 'Authorization: Bearer <device key>' -d '{body}' "
                     f"{server.http_url}/token  (devices: {', '.join(sorted(server.device_keys))})")
    lines.append("  Ctrl-C to stop.")
    print("\n".join(lines), flush=True)
