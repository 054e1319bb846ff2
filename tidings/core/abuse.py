"""Which anti-abuse limits a send of a code must pass: per number, per client, per number range, per country,
and the daily budgets. The limits are GCRA (see ``ratelimit``); this module only names them."""

from __future__ import annotations

import functools
import ipaddress

from tidings.core.address import number_range
from tidings.core.otp import Refused
from tidings.core.ratelimit import Limit
from tidings.core.settings import LimitsSettings

HOUR = 3600.0
DAY = 86400.0


@functools.lru_cache(maxsize=8192)
def client_key(ip: str) -> str:
    """IPv6 clients get whole /64s from their provider, so a /64 counts as one client."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def refusal(limit: Limit, retry_after: float) -> Refused:
    """The answer to a send that a limit refused, naming the limit."""
    if limit.error == "budget_exhausted":
        message = f"The sending budget ({limit.name}: {limit.count} a day) is used up."
    else:
        message = f"Too many codes sent ({limit.name}: at most {limit.count} per {limit.period:g} s); try again later."
    return Refused(limit.error, message, retry_after)


def limits_for_send(
    settings: LimitsSettings,
    *,
    to: str,
    country: str | None,
    is_phone: bool,
    client_ip: str | None,
) -> list[Limit]:
    """The limits one more send to ``to`` must pass; a limit set to 0 is left out."""
    wanted: list[Limit] = []

    def add(name: str, key: str, count: int, period: float, error: str = "rate_limited") -> None:
        if count > 0 and period > 0:
            wanted.append(Limit(name, key, count, period, error))

    add("per_number_hour", f"nh:{to}", settings.per_number_hour, HOUR)
    add("per_number_day", f"nd:{to}", settings.per_number_day, DAY)
    if client_ip is not None:
        add("per_ip_hour", f"ip:{client_key(client_ip)}", settings.per_ip_hour, HOUR)
    if is_phone:
        add("per_range_hour", f"rg:{number_range(to, settings.range_digits)}", settings.per_range_hour, HOUR)
        if country is not None:
            add("per_country_hour", f"ch:{country}", settings.per_country_hour.get(country, 0), HOUR)
            add(
                "country_daily_budget",
                f"cb:{country}",
                settings.country_daily_budget.get(country, 0),
                DAY,
                "budget_exhausted",
            )
    add("daily_budget", "budget", settings.daily_budget, DAY, "budget_exhausted")
    return wanted
