"""``sscp-ops webhook``: the ticket webhook (Alertmanager -> tickets -> SMS / IM notices).

    sscp-ops webhook --config.file F [--web.listen-address 127.0.0.1:9811]
    sscp-ops webhook token create --config.file F --role viewer|operator|admin [--name N]
    sscp-ops webhook token list --config.file F
    sscp-ops webhook token revoke --config.file F ID_OR_NAME
    sscp-ops webhook worker --config.file F

The server is gunicorn (through its application API, so it is the same command in production
and in ``make run``): pre-fork workers give real parallelism on SQLite and MySQL alike, and a
crashed worker process is replaced by the arbiter. With ``webhook.threads: 1`` (the default)
they are sync workers that read each request whole first (webhook/intake.py), with more
threads ``gthread`` workers (see :func:`worker_class`).
The schema is migrated once in the arbiter before the workers start. The notice worker (outbox
delivery, escalation, heartbeat, reconciliation) runs as a child process of its own, started
and stopped with it, started again by the arbiter when it exits (with backoff, logged), and
ending with the arbiter even when that one is killed with SIGKILL (sscp_ops/lifetime.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from sscp_ops.commands import EXIT_FAILURE, EXIT_OK, load
from sscp_ops.lifetime import Supervised, watch_parent

log = logging.getLogger("webhook")

#: Seconds a thread may hold the GIL while another waits (Python's default is 0.005).
GIL_SWITCH_INTERVAL = 0.001


def worker_class(threads: int) -> str:
    """``webhook.intake.BufferingWorker`` for one thread per worker, ``gthread`` for more.

    The buffering worker is gunicorn's ``sync`` worker that handles a request only once it
    has arrived whole (webhook/intake.py), so idle and slow clients never hold it. Like sync
    workers it answers one request at a time and closes the connection, so the next request
    goes to whichever worker is free. ``gthread`` workers keep keep-alive connections for
    good, and under load one worker ended up with most of them (CPU split 19 s to 2 s in one
    measured run) while threads of one process also contend for the GIL. On SQLite, where
    writes are serialised anyway, 2 sync workers carried 1.2-1.8x the notifications per
    second of 2 x 4 threads in 4 interleaved pairs (docs/performance.md). Threads help where a
    request mostly waits for the network (MySQL on another host): set ``webhook.threads``
    above 1 there; a gthread worker holds a thread for up to 5 s per connection that sends
    nothing and for as long as a client takes to send a request head, so put the Nginx proxy
    (deploy/) in front of it."""
    return "webhook.intake.BufferingWorker" if threads == 1 else "gthread"


def _common(p: argparse.ArgumentParser, top: bool) -> None:
    default = None if top else argparse.SUPPRESS
    p.add_argument(
        "--config.file",
        dest="config_file",
        metavar="FILE",
        default=default,
        help="YAML config file",
    )
    p.add_argument(
        "--log.level",
        dest="log_level",
        default="info" if top else argparse.SUPPRESS,
        choices=["debug", "info", "warning", "error"],
    )


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("webhook", help="receive Alertmanager notifications, keep tickets, notify")
    _common(p, top=True)
    p.add_argument(
        "--web.listen-address",
        dest="listen_address",
        metavar="HOST:PORT",
        help="address to listen on (default: webhook.listen_address, 127.0.0.1:9811)",
    )
    p.add_argument(
        "--no-worker",
        dest="worker",
        action="store_false",
        help="do not start the notice worker (run `sscp-ops webhook worker` apart)",
    )
    p.set_defaults(func=_serve)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    token = actions.add_parser("token", help="API tokens")
    token_actions = token.add_subparsers(dest="token_action", required=True, metavar="ACTION")
    create = token_actions.add_parser("create", help="create an API token and print it once")
    _common(create, top=False)
    create.add_argument("--role", required=True, choices=["viewer", "operator", "admin"])
    create.add_argument("--name", default="cli", help="who or what uses the token")
    create.set_defaults(func=_token_create)
    listing = token_actions.add_parser("list", help="list the API tokens (never the secrets)")
    _common(listing, top=False)
    listing.set_defaults(func=_token_list)
    revoke = token_actions.add_parser(
        "revoke", help="revoke a token at once (its UI sessions end too)"
    )
    _common(revoke, top=False)
    revoke.add_argument("ref", metavar="ID_OR_NAME", help="the token's id, or its name")
    revoke.set_defaults(func=_token_revoke)
    worker = actions.add_parser("worker", help="deliver notices and run the periodic jobs")
    _common(worker, top=False)
    # set by the serving process that supervises the worker: exit when it is gone
    worker.add_argument("--parent-pid", dest="parent_pid", type=int, help=argparse.SUPPRESS)
    worker.set_defaults(func=_worker)


def _token_create(args: argparse.Namespace) -> int:
    from webhook.services import Services

    config = load(args.config_file).webhook
    services = Services.from_config(config)
    try:
        print(services.store.create_token(args.role, args.name))
    finally:
        services.store.close()
    return EXIT_OK


def _token_list(args: argparse.Namespace) -> int:
    from webhook.services import Services

    services = Services.from_config(load(args.config_file).webhook)
    try:
        rows = services.store.list_tokens()
    finally:
        services.store.close()
    print(f"{'ID':>4}  {'NAME':<24} {'ROLE':<8} {'CREATED':<20} {'LAST USED':<20} REVOKED")
    for t in rows:
        print(
            f"{t['id']:>4}  {t['name']:<24} {t['role']:<8} {_when(t['created_at']):<20} "
            f"{_when(t['last_used_at']):<20} {_when(t['revoked_at'])}"
        )
    return EXIT_OK


def _when(value) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else "-"


def _token_revoke(args: argparse.Namespace) -> int:
    from webhook.services import Services
    from webhook.store import Invalid, NotFound

    services = Services.from_config(load(args.config_file).webhook)
    try:
        token = services.store.revoke_token(args.ref, "cli")
    except (NotFound, Invalid) as exc:
        print(f"sscp-ops webhook token revoke: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        services.store.close()
    print(f"revoked token {token['id']} ({token['name']}, {token['role']})")
    return EXIT_OK


def _worker(args: argparse.Namespace) -> int:
    from webhook.services import Services
    from webhook.worker import Worker

    config = load(args.config_file).webhook
    services = Services.from_config(config)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if args.parent_pid:
        watch_parent(args.parent_pid, stop.set)
    try:
        Worker(services.store, config, planner=services.planner, lease=config.delivery_lease).run(
            stop
        )
    finally:
        services.store.close()
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    from gunicorn.app.base import BaseApplication
    from gunicorn.arbiter import Arbiter

    from webhook.app import create_app
    from webhook.services import Services

    config = load(args.config_file).webhook
    address = args.listen_address or config.listen_address
    if not config.alertmanager_token_file:
        log.warning("no webhook.alertmanager_token_file: every alert delivery is refused (401)")
    Services.from_config(config).store.close()  # migrate once, before the workers fork

    class Application(BaseApplication):
        def load_config(self):
            for key, value in {
                "bind": [address],
                "workers": config.workers,
                "worker_class": worker_class(config.threads),
                "threads": config.threads,
                "timeout": 30,
                "graceful_timeout": 10,
                "keepalive": 5,
                "accesslog": None,
                "errorlog": "-",
                "loglevel": args.log_level,
                "proc_name": "sscp-ops-webhook",
            }.items():
                self.cfg.set(key, value)
            if "control_socket_disable" in self.cfg.settings:  # gunicorn >= 24
                self.cfg.set("control_socket_disable", True)

        def load(self):
            # In each worker: a thread that holds the store's write lock gets the GIL back
            # after each SQLite call within 1 ms instead of 5 ms (other threads parsing
            # requests would otherwise stretch every write transaction; measured in
            # docs/performance.md).
            sys.setswitchinterval(GIL_SWITCH_INTERVAL)
            return create_app(config, Services.from_config(config, migrate=False))

        def run(self):
            try:
                SupervisingArbiter(self).run()
            except RuntimeError as exc:  # as BaseApplication.run
                print(f"\nError: {exc}\n", file=sys.stderr, flush=True)
                sys.exit(1)

    class SupervisingArbiter(Arbiter):
        """gunicorn's arbiter, which also starts the notice worker again when it exits (its
        main loop runs this at least once a second, and at once on SIGCHLD)."""

        def manage_workers(self):
            super().manage_workers()
            if notices is not None:
                notices.check()

        def reap_workers(self):
            if notices is not None and notices.proc is not None:
                notices.proc.poll()  # its exit status, before gunicorn's waitpid(-1) takes it
            super().reap_workers()

    notices = None
    if args.worker:
        cmd = [sys.executable, "-m", "sscp_ops", "webhook", "worker", "--log.level", args.log_level]
        if args.config_file:
            cmd += ["--config.file", args.config_file]
        notices = Supervised("notice worker", [*cmd, "--parent-pid", str(os.getpid())])
        notices.start()  # from the main thread, which the arbiter's loop runs in
    log.info("listening", extra={"kv": {"address": address, "workers": config.workers}})
    try:
        Application().run()
    except SystemExit as exc:
        return EXIT_OK if not exc.code else EXIT_FAILURE
    finally:
        if notices is not None:
            notices.stop()
    return EXIT_OK
