"""Prometheus metrics, in a registry of the application's own so that several servers can share a process."""

from __future__ import annotations

import functools

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

disable_created_metrics()  # the *_created series double the output and nobody graphs them

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._per_request: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.requests = Counter(
            "tidings_http_requests",
            "API requests by route, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_latency = Histogram(
            "tidings_http_request_duration_seconds",
            "Time to answer an API request.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "tidings_queue_depth", "Jobs waiting in the queue, by lane.", ["lane"], registry=self.registry
        )
        self._lanes_seen: set[str] = set()
        self.jobs = Counter(
            "tidings_jobs",
            "Sends finished, by provider and outcome.",
            ["provider", "outcome"],
            registry=self.registry,
        )
        self.send_latency = Histogram(
            "tidings_send_duration_seconds",
            "Time for a provider to answer one request (a batch of sends is one request).",
            ["provider"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "tidings_sends_in_flight",
            "Sends waiting for a provider's answer.",
            ["provider"],
            registry=self.registry,
        )
        self.verifications = Counter(
            "tidings_verifications_started",
            "Verifications started or resent, by channel.",
            ["channel", "kind"],
            registry=self.registry,
        )
        self.started = functools.cache(self.verifications.labels)
        """``verifications.labels``, looked up once per channel and kind (each lookup takes a lock)."""
        self.checks = Counter(
            "tidings_verification_checks", "Code checks by result.", ["result"], registry=self.registry
        )
        self.limited = Counter(
            "tidings_limited",
            "Requests refused by an anti-abuse limit or budget.",
            ["error"],
            registry=self.registry,
        )

        self.messages = Counter("tidings_messages", "Messages accepted for pushing.", registry=self.registry)
        self.stream_connections = Gauge(
            "tidings_stream_connections", "Open live streams (SSE and WebSocket).", registry=self.registry
        )
        self.stream_drops = Gauge(
            "tidings_stream_slow_drops", "Stream connections cut for falling behind.", registry=self.registry
        )
        self.open_circuits = Gauge(
            "tidings_webhook_open_circuits", "Webhook hosts and URLs with an open circuit.", registry=self.registry
        )

    def for_request(self, route: str, method: str, status: int) -> tuple[Counter, Histogram]:
        """The request counter and latency histogram of one route, method and status, looked up once."""
        key = (route, method, status)
        found = self._per_request.get(key)
        if found is None:
            found = self._per_request[key] = (
                self.requests.labels(route, method, str(status)),
                self.request_latency.labels(route),
            )
        return found

    def set_queue_depth(self, depth: dict[str, int]) -> None:
        """The stores name only the lanes that have jobs; one that drained reads 0, not its last depth."""
        self._lanes_seen.update(depth)
        for lane in self._lanes_seen:
            self.queue_depth.labels(lane).set(depth.get(lane, 0))
