"""A circuit breaker for one destination: stop sending to a host that keeps failing, and try it again now and then.

Without one, every queued delivery to a dead host would take a slot, wait out a timeout and come back for another
try; with one, the first few failures open the circuit and the rest are deferred at once, without a request, until
a single probe finds the host answering again. Each failed probe doubles the wait, up to a ceiling.

Pure: the clock is passed in, so the state machine runs the same in a test as in the dispatcher.
"""

from __future__ import annotations

from typing import Literal

State = Literal["closed", "open", "half_open"]

PROBE_WAIT = 1.0
"""How long others are put off while a probe is out: short, because a probe mostly answers within seconds and a
host that has recovered should get its backlog soon."""


class Breaker:
    """Closed: everything goes. Open: nothing goes until the cooldown is over. Half-open: one probe goes; its success
    closes the circuit, its failure opens it again for twice as long (at most ``max_cooldown``)."""

    def __init__(self, failure_threshold: int = 5, cooldown: float = 30.0, max_cooldown: float = 600.0) -> None:
        if failure_threshold < 1 or cooldown <= 0 or max_cooldown < cooldown:
            raise ValueError("need failure_threshold >= 1 and 0 < cooldown <= max_cooldown")
        self.failure_threshold = failure_threshold
        self.base_cooldown = cooldown
        self.max_cooldown = max_cooldown
        self.cooldown = cooldown
        """The current wait after opening: doubles on each failed probe, back to the base once the host answers."""
        self.failures = 0
        """Consecutive failures while closed."""
        self.open_until = 0.0
        self._state: State = "closed"
        self._probing = False

    @property
    def state(self) -> State:
        return self._state

    def allow(self, now: float) -> float | None:
        """None when a request may go now; otherwise the time before which none should be tried.

        Past the cooldown the first caller becomes the probe; it must report back with ``succeeded``, ``failed`` or
        ``released``, or no other probe is allowed.
        """
        if self._state == "closed":
            return None
        if self._state == "open":
            if now < self.open_until:
                return self.open_until
            self._state = "half_open"
        if self._probing:
            return now + min(PROBE_WAIT, self.cooldown)
        self._probing = True
        return None

    def succeeded(self, now: float) -> None:
        """The host answered. While open, a late answer to a request sent before opening changes nothing: the
        cooldown stands and the probe decides."""
        if self._state == "open":
            return
        self._state = "closed"
        self._probing = False
        self.failures = 0
        self.cooldown = self.base_cooldown

    def failed(self, now: float) -> None:
        if self._state == "open":
            return
        if self._state == "half_open":
            self.cooldown = min(self.cooldown * 2, self.max_cooldown)
            self._open(now)
            return
        self.failures += 1
        if self.failures >= self.failure_threshold:
            self._open(now)

    def released(self) -> None:
        """The request allowed was not sent after all (deferred, cancelled) or its answer says nothing about the
        host's health: free the probe for the next caller."""
        self._probing = False

    def _open(self, now: float) -> None:
        self._state = "open"
        self._probing = False
        self.failures = 0
        self.open_until = now + self.cooldown
