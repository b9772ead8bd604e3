"""Reading small trusted-input files safely: regular files only, bounded size, never blocking."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from appliance.errors import ConfigError

CONFIG_LIMIT = 256 * 1024  # a configuration or board profile is a few kB
SECRET_LIMIT = 16 * 1024  # an API secret, a device key or a token is well under 1 kB
TOML_DEPTH_LIMIT = 32  # ours nest two levels; tomllib recurses per level and can overflow


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def read_regular(path: Path, what: str, *, limit: int) -> bytes:
    """The whole file, or ConfigError naming `what` and `path` and why it cannot be used.

    Opened with O_NONBLOCK and checked with fstat before any read, so a FIFO, a device or a
    directory is refused at once instead of hanging or reading forever.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError([f"{what} {path}: cannot open it ({exc.strerror})"]) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError([f"{what} {path}: is {_kind(st.st_mode)}; expected a regular file"])
        if st.st_size > limit:
            raise ConfigError([f"{what} {path}: {st.st_size} bytes, more than the "
                               f"{limit // 1024} KiB such a file can be"])
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise ConfigError([f"{what} {path}: more than {limit // 1024} KiB"])
        return b"".join(chunks)
    except OSError as exc:
        raise ConfigError([f"{what} {path}: cannot read it ({exc.strerror})"]) from None
    finally:
        os.close(fd)


def toml_depth(text: str) -> int:
    """An upper bound on how deeply a TOML document nests arrays and inline tables."""
    depth = deepest = 0
    quote = ""
    escaped = False
    for ch in text:
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\" and quote == '"':
                escaped = True
            elif ch == quote:
                quote = ""
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(0, depth - 1)
        elif ch == "#":
            quote = "\n"  # a comment runs to the end of the line
    return deepest
