"""A private PostgreSQL cluster for tests and benches: initdb + pg_ctl under a temporary folder,
on 127.0.0.1 and a free port (as `nobody` when running as root, since postgres refuses root)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BIND_ATTEMPTS = 5  # a free port taken before postgres binds it: try another


def pg_bin() -> Path | None:
    """The folder with initdb and pg_ctl (Debian keeps them out of PATH), or None."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def pg_cluster() -> Iterator[str]:
    """Yields the cluster's URL (`postgresql://fleet@127.0.0.1:PORT/postgres`); stops it after."""
    bindir = pg_bin()
    if bindir is None:
        raise FileNotFoundError("initdb/pg_ctl not found (apt-get install postgresql)")
    as_user: list[str] = []
    root = tempfile.mkdtemp(prefix="fleet-pg-")
    data, log = Path(root) / "data", Path(root) / "log"
    if os.geteuid() == 0:
        as_user = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]
        os.chown(root, 65534, 65534)
    env = {**os.environ, "LC_ALL": "C", "TZ": "UTC"}

    def run(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, env=env, cwd=root,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "fleet", "--auth=trust",
            "--no-sync", "-E", "UTF8")
        # PostgreSQL binds its own port, so one picked free here can be taken before it does
        # (any outgoing connection's ephemeral port): then it is tried again on another.
        for attempt in range(1, BIND_ATTEMPTS + 1):
            port, seen = _free_port(), log.stat().st_size if log.exists() else 0
            opts = (f"-c listen_addresses=127.0.0.1 -c port={port} "
                    f"-c unix_socket_directories={root} -c fsync=off -c synchronous_commit=off "
                    "-c full_page_writes=off -c max_connections=200")
            try:
                run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts, "-w",
                    "-t", "60", "start")
                break
            except subprocess.CalledProcessError:
                said = log.read_bytes()[seen:].decode(errors="replace") if log.exists() else ""
                if "could not bind" not in said or attempt == BIND_ATTEMPTS:
                    raise
        yield f"postgresql://fleet@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                            "-w", "stop"], env=env, cwd=root, check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(root, ignore_errors=True)


async def fresh_database(url: str, name: str) -> str:
    """CREATE DATABASE `name` on the cluster; returns its URL."""
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql://", "postgres://"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url.rsplit("/", 1)[0] + "/" + name
