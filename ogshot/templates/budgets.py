"""Byte budgets: the reserved parameter ``max_kb``, and a template's default ``max_kb = N``.

A budget caps the encoded image at ``N`` kilobytes (1 KB = 1000 bytes, the stricter reading of
every platform's limit). JPEG and WebP then take the highest quality that fits, PNG a palette when
truecolour does not fit (``ogshot.engine.budget``). Like ``v``, ``max_kb`` is taken by every URL,
covered by the signature, and never seen by the template; unlike ``v`` it changes the pixels, so
it is part of the cache key. This module is imported by ``sign_url``: it stays light.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ogshot.core.errors import InvalidParameter

__all__ = ["BUDGET_PARAM", "BUDGET_RANGE", "KB", "check_budget", "split_budget"]

BUDGET_PARAM = "max_kb"
# 10 KB is below any useful 1200x630 card; 10 MB is above every platform's limit.
BUDGET_RANGE = (10, 10_000)
KB = 1000  # bytes


def check_budget(value: Any, name: str = BUDGET_PARAM) -> int:
    """``value`` (query text, a JSON number or a TOML integer) as a whole number of KB within
    BUDGET_RANGE; InvalidParameter (400) naming ``name`` otherwise."""
    low, high = BUDGET_RANGE
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 6:
        number = int(value.strip())
    if number is None or not low <= number <= high:
        raise InvalidParameter(
            name,
            f"not a byte budget: a whole number of kilobytes {low}..{high} (e.g. 600 for "
            f"WhatsApp's 600 KB), got {value!r}",
        )
    return number


def split_budget(params: Mapping[str, Any]) -> tuple[Mapping[str, Any], int | None]:
    """(the parameters without ``max_kb``, the budget asked for or None); a bad one is a 400."""
    if BUDGET_PARAM not in params:
        return params, None
    budget = check_budget(params[BUDGET_PARAM])
    return {k: v for k, v in params.items() if k != BUDGET_PARAM}, budget
