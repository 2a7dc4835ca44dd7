"""python -m devstack up | down | status | logs [name] [-f] | run [--fresh] -- command...
| canary SERVICE [--env K=V ...] [--version V] [--weight W] [--ab]
| canary-status | weight SERVICE W | promote SERVICE | rollback SERVICE
| canary-analyze SERVICE [--steps 10,25,50] [--step-seconds S] ..."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from . import postgres, rollout
from .layout import Layout
from .stack import DevstackError, down, logs, run, status, up
from .topology import REPO


def env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def analysis_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The command line's analysis settings in values.yaml's terms."""
    given = {
        "steps": [int(step) for step in args.steps.split(",")] if args.steps else None,
        "stepSeconds": args.step_seconds,
        "intervalSeconds": args.interval,
        "minRequests": args.min_requests,
        "maxWaits": args.max_waits,
    }
    return {key: value for key, value in given.items() if value is not None}


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
    canary_parser = sub.add_parser("canary", help="start a canary of a service")
    canary_parser.add_argument("service")
    canary_parser.add_argument("--env", type=env_pair, action="append", default=[])
    canary_parser.add_argument("--version")
    canary_parser.add_argument("--weight", type=int)
    canary_parser.add_argument("--replicas", type=int)
    canary_parser.add_argument("--cookie", help="a cookie whose always/never also choose")
    canary_parser.add_argument("--ab", action="store_true", help="an A/B test: sticky per user")
    sub.add_parser("canary-status")
    weight_parser = sub.add_parser("weight", help="set a canary's weight")
    weight_parser.add_argument("service")
    weight_parser.add_argument("weight", type=int)
    for verb in ("promote", "rollback"):
        sub.add_parser(verb).add_argument("service")
    analyze_parser = sub.add_parser("canary-analyze", help="promote or roll back by analysis")
    analyze_parser.add_argument("service")
    analyze_parser.add_argument("--steps", help="weights, e.g. 10,25,50")
    analyze_parser.add_argument("--step-seconds", type=float)
    analyze_parser.add_argument("--interval", type=float, help="seconds between judgements")
    analyze_parser.add_argument("--min-requests", type=int)
    analyze_parser.add_argument("--max-waits", type=int)
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
        elif args.verb == "canary":
            rollout.start(
                layout,
                args.service,
                env=dict(args.env),
                version=args.version,
                weight=args.weight,
                replicas=args.replicas,
                ab=args.ab,
                cookie=args.cookie,
            )
        elif args.verb == "canary-status":
            return rollout.status(layout)
        elif args.verb == "weight":
            rollout.set_weight(layout, args.service, args.weight)
        elif args.verb == "promote":
            rollout.promote(layout, args.service)
        elif args.verb == "rollback":
            rollout.rollback(layout, args.service)
        elif args.verb == "canary-analyze":
            outcome = rollout.analyze(layout, args.service, analysis_overrides(args))
            return 0 if outcome.decision is rollout.Decision.PROMOTED else 1
    except (DevstackError, FileNotFoundError, postgres.PostgresMissing, ValueError) as error:
        print(f"devstack: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
