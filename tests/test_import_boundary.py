"""The product never imports the test double: only its CLI command and the demo (tooling) may."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "appliance"
DOUBLE = "appliance.devserver"
# Tooling allowed to reach the double: the CLI names its command module (loaded only when the
# package is present), and the demo runs it as a subprocess.
TOOLING = {Path("appliance/cli.py"), Path("appliance/demo")}


def _imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names.add(node.args[0].value)
    return names


def _allowed(path: Path) -> bool:
    relative = path.relative_to(ROOT)
    return any(relative == t or t in relative.parents for t in TOOLING)


def test_no_product_module_imports_the_double() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if (PACKAGE / "devserver") in path.parents or _allowed(path):
            continue
        names = _imported(ast.parse(path.read_text(), str(path)))
        bad = sorted(n for n in names if n == DOUBLE or n.startswith(DOUBLE + "."))
        if bad:
            offenders.append(f"{path.relative_to(ROOT)}: {', '.join(bad)}")
    assert offenders == [], "the product imports the test double:\n" + "\n".join(offenders)


def test_the_cli_names_only_the_command_module() -> None:
    text = (PACKAGE / "cli.py").read_text()
    assert [line.strip() for line in text.splitlines() if DOUBLE in line] == [
        f'"{DOUBLE}.command",']


def test_running_the_kiosk_loads_nothing_of_the_double() -> None:
    # What `appliance run` imports, in a fresh interpreter: no module of the double.
    code = ("import sys, appliance.kiosk, appliance.media, appliance.rtc.livekit; "
            f"print([m for m in sys.modules if m.startswith('{DOUBLE}')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
