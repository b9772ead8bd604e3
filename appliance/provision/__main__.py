"""`python -m appliance.provision ...`: the provision command without the rest of the CLI.

appliance-firstboot.service runs `python -m appliance.provision --import-boot-file` so first boot
does not depend on (or pay for importing) any other subcommand.
"""

from __future__ import annotations

import argparse
import logging
import sys

from appliance.provision.command import register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m appliance.provision")
    register(parser.add_subparsers())
    args = parser.parse_args(["provision", *(sys.argv[1:] if argv is None else argv)])
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
