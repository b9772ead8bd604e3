"""Demo scripts: timed presses, faults and expectations replayed without a terminal (for CI)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import ConfigError

DEFAULT_WITHIN = 30.0


@dataclass(frozen=True)
class Step:
    """One line of a script.

    `verb` is `press`, `hold`, `fault`, `remote`, `wait` or `expect`; `args` are its words;
    `within` bounds how long an `expect` may take before the script fails.
    """

    line: int
    verb: str
    args: tuple[str, ...]
    within: float = DEFAULT_WITHIN

    def __str__(self) -> str:
        text = " ".join((self.verb, *self.args))
        return f"{text} within {self.within:g}" if self.verb == "expect" else text


# verb -> (min args, max args)
_ARITY = {"press": (1, 1), "hold": (1, 2), "fault": (1, 3), "remote": (1, 2), "wait": (1, 1),
          "expect": (2, 2)}
VERBS = tuple(_ARITY)
# `remote ACTION`: what `appliance ops ACTION kiosk-demo` does. Not `restart`: the demo has no
# systemd to start the kiosk again, so the rest of the script would only find it gone.
REMOTE_ACTIONS = ("identify", "mute", "camera-off", "rejoin", "leave", "remove", "status")


def parse(text: str, source: str = "<script>") -> list[Step]:
    """Parse a script; every bad line is reported at once, naming its line number."""
    steps: list[Step] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            words = shlex.split(line)
        except ValueError as exc:
            problems.append(f"{source}:{number}: {exc}")
            continue
        verb, args = words[0], words[1:]
        within = DEFAULT_WITHIN
        if verb == "expect" and len(args) >= 2 and args[-2] == "within":
            try:
                within = float(args[-1])
            except ValueError:
                problems.append(f"{source}:{number}: `within` needs seconds, found {args[-1]!r}")
                continue
            args = args[:-2]
        if verb not in _ARITY:
            problems.append(
                f"{source}:{number}: unknown step {verb!r}; expected one of {', '.join(_ARITY)}"
            )
            continue
        low, high = _ARITY[verb]
        if not low <= len(args) <= high:
            problems.append(f"{source}:{number}: `{verb}` takes {low}..{high} argument(s)")
            continue
        if verb == "remote" and args[0] not in REMOTE_ACTIONS:
            problems.append(f"{source}:{number}: unknown remote action {args[0]!r}; expected "
                            f"one of {', '.join(REMOTE_ACTIONS)}")
            continue
        if verb == "remote" and len(args) == 2 and args[0] != "identify":
            problems.append(f"{source}:{number}: only `remote identify` takes seconds")
            continue
        if verb == "wait" or (verb in ("hold", "remote") and len(args) == 2):
            try:
                float(args[-1])
            except ValueError:
                problems.append(f"{source}:{number}: `{verb}` needs seconds, found {args[-1]!r}")
                continue
        steps.append(Step(number, verb, tuple(args), within))
    if problems:
        raise ConfigError(problems)
    return steps


def load(path: Path) -> list[Step]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read demo script ({exc.strerror})"]) from None
    return parse(text, str(path))
