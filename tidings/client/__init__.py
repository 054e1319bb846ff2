"""A client of the tidings API, for apps: ``Client`` from asyncio code, ``SyncClient`` from blocking code, with the
same methods and types.

    from tidings.client import SyncClient, RateLimited

    with SyncClient("http://127.0.0.1:8000", "tk_...") as client:
        client.verifications.start(to="+447700900123")

Importing it loads neither the server nor its storage, providers or settings: an app can depend on it cheaply.
"""

from tidings.client.client import Client
from tidings.client.errors import (
    AuthenticationFailed,
    Conflict,
    ConnectionFailed,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    TidingsError,
    Unavailable,
)
from tidings.client.models import (
    Accepted,
    Check,
    Cluster,
    Counts,
    Delivery,
    Event,
    Key,
    Message,
    Subscriber,
    SubscriberToken,
    Verification,
)
from tidings.client.sync import SyncClient

__all__ = [
    "Accepted",
    "AuthenticationFailed",
    "Check",
    "Client",
    "Cluster",
    "Conflict",
    "ConnectionFailed",
    "Counts",
    "Delivery",
    "Event",
    "InvalidRequest",
    "Key",
    "Message",
    "NotFound",
    "PermissionDenied",
    "RateLimited",
    "Subscriber",
    "SubscriberToken",
    "SyncClient",
    "TidingsError",
    "Unavailable",
    "Verification",
]
