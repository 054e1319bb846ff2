"""The ``tidings`` command. ``tidings serve`` runs the server; every other command calls a running tidings through
``tidings.client``, and imports nothing of the server, its settings or its storage (``serve`` imports those when it
runs), so that ``tidings verify ...`` starts quickly.

Exit statuses (API.md, "Faces"): 0 done, 1 refused (an error of the API, no connection, a wrong code on
``verify check``), 2 usage (what was typed cannot be run), 130 stopped by Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys

from tidings import __version__
from tidings.cli import keys, monitor, push, serve, subscribers, verify
from tidings.cli.context import common_options, execute
from tidings.cli.output import INTERRUPTED


def parser() -> argparse.ArgumentParser:
    common = common_options()
    top = argparse.ArgumentParser(
        prog="tidings",
        parents=[common],
        description="Verification codes and push messages. `tidings serve` runs the server; the other commands "
        "talk to one (--url / TIDINGS_URL, --key / TIDINGS_API_KEY). --json on any of them prints the API's JSON. "
        "Exit status: 0 done, 1 refused (by the API, or no connection), 2 usage.",
    )
    top.add_argument("--version", action="version", version=f"tidings {__version__}")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve.register(commands)
    verify.register(commands, common)
    push.register(commands, common)
    subscribers.register(commands, common)
    keys.register(commands, common)
    monitor.register(commands, common)
    return top


def main(argv: list[str] | None = None) -> None:
    try:
        args = parser().parse_args(argv)
        status = args.run(args) if hasattr(args, "run") else execute(args.handler, args)
    except KeyboardInterrupt:
        status = INTERRUPTED
    sys.exit(status)
