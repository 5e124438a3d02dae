"""``sscp-ops stack``: the whole kit on one machine, on loopback (what ``make run`` starts)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

import yaml

from sscp_ops.commands import EXIT_FAILURE, EXIT_OK, add_log_level
from sscp_ops.config import load_config
from sscp_ops.stack import Ports, Stack, StackPlan

log = logging.getLogger("stack")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stack", help="run exporter, webhook, Prometheus and Alertmanager together")
    p.add_argument(
        "--config.file",
        dest="config_file",
        metavar="FILE",
        help="base sscp-ops config (targets, roster...); default: embedded defaults",
    )
    p.add_argument("--data-dir", default="var", help="where everything keeps its data (./var)")
    p.add_argument("--root", default=None, help="the kit's checkout (rules/, alertmanager/)")
    for name, port in vars(Ports()).items():
        p.add_argument(f"--{name}-port", type=int, default=port, dest=f"{name}_port")
    p.add_argument("--scrape-interval", default="15s")
    p.add_argument("--evaluation-interval", default="15s")
    add_log_level(p)
    p.set_defaults(func=run)


def _default_root() -> Path:
    return Path(__file__).resolve().parents[2]


def run(args: argparse.Namespace) -> int:
    base: dict = {}
    if args.config_file:
        load_config(args.config_file)  # validate first: a bad file stops here with its key path
        base = yaml.safe_load(Path(args.config_file).read_text(encoding="utf-8")) or {}
    plan = StackPlan(
        root=Path(args.root).resolve() if args.root else _default_root(),
        data=Path(args.data_dir).resolve(),
        ports=Ports(**{n: getattr(args, f"{n}_port") for n in vars(Ports())}),
        scrape_interval=args.scrape_interval,
        evaluation_interval=args.evaluation_interval,
        base_config=base,
    )
    stack = Stack(plan)
    # Ctrl-C, `kill`/systemd, and a closed terminal or lost SSH session (SIGHUP)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stack.stop_event.set())
    try:
        stack.start()
    except (RuntimeError, FileNotFoundError, OSError) as exc:
        print(f"sscp-ops stack: {exc}", file=sys.stderr)
        stack.stop()
        return EXIT_FAILURE
    print("sscp-ops is running (Ctrl-C stops everything):", flush=True)
    for name, url in stack.urls().items():
        print(f"  {name:24} {url}", flush=True)
    print(f"  data and logs            {plan.data}", flush=True)
    died = stack.wait()
    stack.stop()
    if died:
        print(
            f"sscp-ops stack: {died} exited; stopped everything "
            f"(see {plan.data / 'logs' / (died + '.log')})",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    log.info("stopped")
    return EXIT_OK
