"""python -m devstack up | down | status | logs [name] [-f] | run [--fresh] -- command..."""

from __future__ import annotations

import argparse
import os
import sys

from . import postgres
from .layout import Layout
from .stack import DevstackError, down, logs, run, status, up
from .topology import REPO


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devstack", description="Agora on one machine.")
    sub = parser.add_subparsers(dest="verb", required=True)
    sub.add_parser("up")
    sub.add_parser("down")
    sub.add_parser("status")
    logs_parser = sub.add_parser("logs")
    logs_parser.add_argument("name", nargs="?")
    logs_parser.add_argument("-f", "--follow", action="store_true")
    run_parser = sub.add_parser("run")
    run_parser.add_argument("--fresh", action="store_true", help="start from empty state")
    run_parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    layout = Layout.from_env()
    os.chdir(REPO)
    try:
        if args.verb == "up":
            up(layout)
        elif args.verb == "down":
            down(layout)
        elif args.verb == "status":
            return status(layout)
        elif args.verb == "logs":
            logs(layout, args.name, args.follow)
        elif args.verb == "run":
            command = args.command[1:] if args.command[:1] == ["--"] else args.command
            return run(layout, command, fresh=args.fresh)
    except (DevstackError, FileNotFoundError, postgres.PostgresMissing) as error:
        print(f"devstack: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
