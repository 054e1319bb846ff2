"""What the request handlers share, under one typed application key."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from tidings.api.client_ip import Network
from tidings.channels.stream import Hub
from tidings.core.sealing import Sealer
from tidings.core.settings import Settings
from tidings.core.tokens import Tokens
from tidings.ports import ApiKey, Nodes, PushStore, Queue, Stats, Store
from tidings.runtime.metrics import Metrics
from tidings.services.feedback import Feedback
from tidings.services.keys import Keyring
from tidings.services.messages import Messages
from tidings.services.subscribers import Subscribers
from tidings.services.verifications import Verifications


@dataclass(kw_only=True)
class State:
    settings: Settings
    store: Store
    queue: Queue
    keyring: Keyring
    verifications: Verifications
    metrics: Metrics
    proxies: list[Network]
    """Trusted proxies, whose ``X-Forwarded-For`` names the client."""
    push: PushStore
    subscribers: Subscribers
    messages: Messages
    hub: Hub
    tokens: Tokens
    vapid_public_key: str
    """The ``applicationServerKey`` browsers subscribe with."""
    nodes: Nodes
    backend: str
    """The backend's name: ``sqlite`` or ``redis``."""
    sealer: Sealer
    feedback: Feedback
    stats: Stats


STATE = web.AppKey("tidings", State)
REQUEST_ID = web.RequestKey("request_id", str)
CALLER = web.RequestKey("caller", ApiKey)
"""The API key the request was made with, once authorised."""
