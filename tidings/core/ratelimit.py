"""Rate-limit arithmetic: the Generic Cell Rate Algorithm (GCRA).

A limit of ``count`` events per ``period`` keeps one number per key, the theoretical arrival time (TAT). It allows
bursts up to ``count`` and then one event every ``period / count`` seconds, with no window edges to game.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limit:
    """``count`` events per ``period`` seconds for one key; ``error`` is the API error code when it is hit."""

    name: str
    key: str
    count: int
    period: float
    error: str = "rate_limited"

    @property
    def interval(self) -> float:
        return self.period / self.count


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    tat: float
    retry_after: float = 0.0


def gcra(tat: float | None, now: float, limit: Limit) -> Verdict:
    """Judge one event against one limit, given the key's stored TAT (None when the key is new)."""
    base = now if tat is None or tat < now else tat
    new_tat = base + limit.interval
    allow_at = new_tat - limit.period
    if now < allow_at:
        return Verdict(False, base, allow_at - now)
    return Verdict(True, new_tat)


@dataclass(frozen=True, slots=True)
class Decision:
    """All limits at once: either every TAT advances (``updates``) or none does and ``hit`` says which refused."""

    allowed: bool
    updates: dict[str, float]
    hit: Limit | None = None
    retry_after: float = 0.0


def check_all(tats: dict[str, float], limits: list[Limit], now: float) -> Decision:
    """Apply limits all-or-nothing, so a refused request uses up no other limit's allowance."""
    updates: dict[str, float] = {}
    worst: tuple[Limit, float] | None = None
    for limit in limits:
        verdict = gcra(updates.get(limit.key, tats.get(limit.key)), now, limit)
        if verdict.allowed:
            updates[limit.key] = verdict.tat
        elif worst is None or verdict.retry_after > worst[1]:
            worst = (limit, verdict.retry_after)
    if worst is not None:
        return Decision(False, {}, worst[0], worst[1])
    return Decision(True, updates)
