"""Template filters: times, countdowns, pretty JSON. Their output is escaped like any value."""

from __future__ import annotations

import json
import time
from typing import Any

from jinja2 import Environment, Undefined


def when(value: Any) -> str:
    if isinstance(value, Undefined) or value in (None, ""):
        return ""
    try:
        epoch = float(value)
    except (TypeError, ValueError):
        return str(value)
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def countdown(value: Any) -> str:
    """'in 6 d 23 h' until the epoch time ``value``."""
    try:
        left = float(value) - time.time()
    except (TypeError, ValueError):
        return ""
    if left <= 0:
        return "due now"
    days, rest = divmod(int(left), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"in {days} d {hours} h"
    if hours:
        return f"in {hours} h {minutes} min"
    return f"in {minutes} min"


def pretty(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return str(value)
    return str(json.dumps(value, indent=2, sort_keys=False, ensure_ascii=False))


def install(env: Environment) -> None:
    env.filters["when"] = when
    env.filters["countdown"] = countdown
    env.filters["pretty"] = pretty
