"""This process as a node of the deployment: its name, and the heartbeat that keeps it listed in ``/v1/cluster``."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable

from tidings import __version__
from tidings.errors import StoreError
from tidings.ports import Node, Nodes

log = logging.getLogger("tidings")
BEAT_EVERY = 5.0
FORGET_AFTER = 15.0
"""A node that has not reported for this long is taken for dead."""


@functools.cache
def node_id() -> str:
    """Unique per process (host, pid and a random part, as a restarted container may reuse the pid); it is also
    the process's consumer name on the Redis queue."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


async def beat_forever(
    nodes: Nodes,
    role: str,
    streams: Callable[[], int],
    in_flight: Callable[[], int],
    circuits: Callable[[], dict[str, str]] = dict,
) -> None:
    started_at = time.time()
    host = socket.gethostname()
    while True:
        node = Node(
            node_id(), role, host, os.getpid(), __version__, started_at, time.time(), streams(), in_flight(), circuits()
        )
        try:
            await nodes.beat(node, FORGET_AFTER)
        except StoreError as exc:
            log.warning("cannot report this node: %s", exc)
        await asyncio.sleep(BEAT_EVERY)
