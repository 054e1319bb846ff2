"""A circuit breaker for one destination: stop sending to a host that keeps failing, and try it again now and then.

Without one, every queued delivery to a dead host would take a slot, wait out a timeout and come back for another
try; with one, the first few failures open the circuit and the rest are deferred at once, without a request, until
a single probe finds the host answering again. Each failed probe doubles the wait, up to a ceiling.

Pure: the clock is passed in, so the state machine runs the same in a test as in the dispatcher.
"""

from __future__ import annotations

from collections import deque
from typing import Literal

State = Literal["closed", "open", "half_open"]

PROBE_WAIT = 1.0
"""How long others are put off while a probe is out: short, because a probe mostly answers within seconds and a
host that has recovered should get its backlog soon."""


class Breaker:
    """Closed: everything goes. Open: nothing goes until the cooldown is over. Half-open: one probe goes; its success
    closes the circuit, its failure opens it again for twice as long (at most ``max_cooldown``)."""

    def __init__(
        self, failure_threshold: int = 5, cooldown: float = 30.0, max_cooldown: float = 600.0, window: int = 0
    ) -> None:
        """Opens when ``failure_threshold`` of the last ``window`` requests failed (``window`` 0: that many in a
        row). A window wider than the threshold keeps a destination that fails now and then (30% of requests, say)
        open for business, as the 70% that get through deserve, and still opens on one that is down."""
        window = window or failure_threshold
        if failure_threshold < 1 or window < failure_threshold or cooldown <= 0 or max_cooldown < cooldown:
            raise ValueError("need 1 <= failure_threshold <= window and 0 < cooldown <= max_cooldown")
        self.failure_threshold = failure_threshold
        self.base_cooldown = cooldown
        self.max_cooldown = max_cooldown
        self.cooldown = cooldown
        """The current wait after opening: doubles on each failed probe, back to the base once the host answers."""
        self._recent: deque[bool] = deque(maxlen=window)
        """Whether each of the last requests failed, while closed."""
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
        self._recent.append(False)
        self.cooldown = self.base_cooldown

    @property
    def failures(self) -> int:
        """Failures among the last requests while closed."""
        return sum(self._recent)

    @property
    def healthy(self) -> bool:
        """Closed, and its last request (if any) got through: nothing about it is worth remembering."""
        return self._state == "closed" and not (self._recent and self._recent[-1])

    def failed(self, now: float) -> None:
        if self._state == "open":
            return
        if self._state == "half_open":
            self.cooldown = min(self.cooldown * 2, self.max_cooldown)
            self._open(now)
            return
        self._recent.append(True)
        if self.failures >= self.failure_threshold:
            self._open(now)

    def released(self) -> None:
        """The request allowed was not sent after all (deferred, cancelled) or its answer says nothing about the
        host's health: free the probe for the next caller."""
        self._probing = False

    def _open(self, now: float) -> None:
        self._state = "open"
        self._probing = False
        self._recent.clear()
        self.open_until = now + self.cooldown
