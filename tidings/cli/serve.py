"""``tidings serve``: the API and the dispatcher in this process. The server, its settings and its storage are
imported only here, when this command runs, so that the API commands start quickly and load none of them."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the API and the dispatcher",
        description="Run the API and the dispatcher: by default on 127.0.0.1:8000, with the SQLite file ./tidings.db."
        " Settings come from the --config file, then TIDINGS_* variables over it, then these options over both;"
        " every setting is in docs/configuration.md.",
    )
    serve.add_argument("--config", help="a TOML settings file (TIDINGS_* variables override it)")
    serve.add_argument("--host", help="overrides `host`")
    serve.add_argument("--port", type=int, help="overrides `port`")
    serve.add_argument(
        "--role",
        choices=("all", "api", "worker"),
        help="overrides `role`: api answers requests and holds live streams, worker sends, all does both (Redis only"
        " for api and worker)",
    )
    serve.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tidings import config, server
    from tidings.errors import BackendError
    from tidings.runtime import logs

    overrides = {key: value for key in ("host", "port", "role") if (value := getattr(args, key)) is not None}
    try:
        settings = config.load(args.config, overrides=overrides)
    except config.ConfigError as exc:
        print(f"tidings: {exc}", file=sys.stderr)
        return 2
    logs.setup(settings.log_level, settings.log_format)
    for name in config.unknown_variables(os.environ):
        logging.getLogger("tidings").warning("%s names no setting and is ignored (see docs/configuration.md)", name)
    try:
        server.run(settings)
    except BackendError as exc:
        print(f"tidings: {exc}", file=sys.stderr)
        return 1
    except socket.gaierror as exc:
        print(
            f"tidings: cannot start: host {settings.host!r} is not a name or address here: {exc.strerror}",
            file=sys.stderr,
        )
        return 1
    except OSError as exc:  # the address is taken, the host is not this machine's, a file cannot be made
        print(f"tidings: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0
