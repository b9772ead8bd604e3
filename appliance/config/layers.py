"""One layer (a TOML file or the environment) read and type-checked against the dataclasses."""

from __future__ import annotations

import dataclasses
import difflib
import stat
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from appliance.config.schema import REDACTED, SECRET_KEYS, SECTIONS
from appliance.errors import ConfigError
from appliance.files import CONFIG_LIMIT, TOML_DEPTH_LIMIT, read_regular, toml_depth

ENV_PREFIX = "APPLIANCE_"

Layer = dict[str, dict[str, Any]]


def _hints(cls: type[Any]) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(f'"{a}"' for a in typing.get_args(tp))
    if origin in (types.UnionType, typing.Union):
        parts = [_describe(a) for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(parts)
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        Path: "a file path (string)",
    }.get(tp, str(tp))


def _found(value: Any) -> str:
    kind = {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "table",
    }.get(type(value), type(value).__name__)
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{kind} {text}"


def _coerce(tp: Any, value: Any) -> tuple[bool, Any]:
    """Check `value` against the annotation `tp`; returns (ok, value as the field type)."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        for arg in typing.get_args(tp):
            if arg is type(None):
                continue
            ok, out = _coerce(arg, value)
            if ok:
                return True, out
        return False, None
    if origin is Literal:
        return (isinstance(value, str) and value in typing.get_args(tp)), value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return (isinstance(value, int) and not isinstance(value, bool)), value
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return ok, float(value) if ok else None
    if tp is str:
        return isinstance(value, str), value
    if tp is Path:
        ok = isinstance(value, str) and value != ""
        return ok, Path(value) if ok else None
    return False, None


def _from_env_text(tp: Any, text: str) -> Any:
    """Environment values are strings; turn them into what TOML would have given."""
    base = tp
    if typing.get_origin(tp) in (types.UnionType, typing.Union):
        base = next(a for a in typing.get_args(tp) if a is not type(None))
    if base is bool:
        low = text.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        return text
    if base in (int, float):
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                return text
    return text


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean `{close[0]}`?" if close else ""


def env_name(dotted: str) -> str:
    return ENV_PREFIX + dotted.replace(".", "_").upper()


def check_layer(
    raw: Mapping[str, Any], source: str, *, from_env: bool = False
) -> tuple[Layer, list[str]]:
    """Type-check one layer; returns the converted values and the problems found."""
    out: Layer = {}
    problems: list[str] = []
    all_keys = [f"{s}.{f.name}" for s, c in SECTIONS.items() for f in dataclasses.fields(c)]
    for section, table in raw.items():
        if section not in SECTIONS:
            hint = _suggest(section, list(SECTIONS))
            if not hint:
                hint = _suggest(f"{section}", all_keys)
            problems.append(f"{source}: unknown section `[{section}]`{hint}")
            continue
        if not isinstance(table, dict):
            problems.append(f"{source}: `{section}`: expected a table, found {_found(table)}")
            continue
        hints = _hints(SECTIONS[section])
        for key, value in table.items():
            dotted = f"{section}.{key}"
            where = f"`{env_name(dotted)}` (`{dotted}`)" if from_env else f"`{dotted}`"
            if key not in hints:
                hint = _suggest(dotted, all_keys)
                problems.append(f"{source}: unknown key {where}{hint}")
                continue
            ok, converted = _coerce(hints[key], value)
            if not ok:
                shown = REDACTED if dotted in SECRET_KEYS else _found(value)
                problems.append(
                    f"{source}: {where}: expected {_describe(hints[key])}, found {shown}"
                )
                continue
            out.setdefault(section, {})[key] = converted
    return out, problems


def check_private(path: Path, what: str) -> str | None:
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        return f"{what} {path}: cannot read it ({exc.strerror})"
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        return (
            f"{what} {path} is readable by group or others (mode {stat.filemode(mode)}); "
            f"it holds a secret: run `chmod 600 {path}`"
        )
    return None


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """A small regular TOML file as a dict; ConfigError (never a traceback) for anything else."""
    data = read_regular(path, what, limit=CONFIG_LIMIT)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    depth = toml_depth(text)
    if depth > TOML_DEPTH_LIMIT:
        raise ConfigError([f"{path}: arrays or tables nested {depth} deep; a {what} needs a "
                           f"few levels (at most {TOML_DEPTH_LIMIT})"])
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    except RecursionError:
        raise ConfigError([f"{path}: nested too deeply to parse"]) from None


def parse_layer(path: Path, *, check_permissions: bool = True) -> Layer:
    """Read and validate one TOML file (config or per-device file) on its own.

    Raises ConfigError listing every problem (unknown keys, wrong types, a secret in a file that
    group or others can read). Used by the loader and by provisioning before anything is written.
    """
    raw = read_toml(path, "configuration file")
    layer, problems = check_layer(raw, str(path))
    holds_secret = any(k.split(".")[1] in layer.get(k.split(".")[0], {}) for k in SECRET_KEYS)
    if check_permissions and holds_secret:
        problem = check_private(path, "configuration file")
        if problem:
            problems.append(problem)
    if problems:
        raise ConfigError(problems)
    return layer


def env_layer(env: Mapping[str, str]) -> tuple[Layer, list[str]]:
    """`APPLIANCE_<SECTION>_<KEY>` variables as a layer (section names have no underscore)."""
    raw: dict[str, dict[str, Any]] = {}
    for name, text in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section, _, key = rest.partition("_")
        if section not in SECTIONS or not key:
            continue  # not ours (APPLIANCE_NETNS and friends)
        hints = _hints(SECTIONS[section])
        raw.setdefault(section, {})[key] = (
            _from_env_text(hints[key], text) if key in hints else text
        )
    return check_layer(raw, "environment", from_env=True)


def merge_layers(layers: list[Layer]) -> Layer:
    merged: Layer = {}
    for layer in layers:
        for section, table in layer.items():
            merged.setdefault(section, {}).update(table)
    return merged
