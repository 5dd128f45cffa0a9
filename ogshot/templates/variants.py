"""A/B variants: a template's named alternatives and the stable choice of one per page.

A template declares them in its ``{#ogshot ... #}`` block (parsed in ``declarations.py``)::

    [variants]
    by = "slug"            # the declared parameter that decides
    [variants.light]
    weight = 50
    [variants.dark]
    weight = 50

The choice is a function of the template's name and the ``by`` parameter's validated value only:
the same page always gets the same image, so every cache (ours, the CDN's, the platforms') keeps
working. The hash maps each page onto a point in [0, 1) once and for all; the variants share that
line in declaration order, in proportion to their weights. Changing the weights therefore moves
only the pages whose point falls in the part of the line that changed hands (50/50 -> 60/40 moves
10 % of pages); reordering variants, or inserting one before others, moves more.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ogshot.core.errors import InvalidParameter
from ogshot.templates.fields import json_value

__all__ = ["MAX_VARIANTS", "VARIANT_NAME_RE", "Variants", "choose_variant", "point_of"]

# Variant names become a response header and a metric label: short, plain and bounded in number.
VARIANT_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
MAX_VARIANTS = 16
VARIABLE = "variant"  # what the template receives


def point_of(template: str, value: Any) -> float:
    """Where a page falls on [0, 1): a stable hash of the template name and the value."""
    text = json.dumps(json_value(value), ensure_ascii=False, sort_keys=True)
    digest = hashlib.sha256(f"{template}\x1f{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True, kw_only=True)
class Variants:
    by: str  # the declared parameter whose value decides
    names: tuple[str, ...]  # in declaration order
    weights: tuple[float, ...]

    def choose(self, template: str, values: Mapping[str, Any]) -> str:
        """The variant a page gets, from its validated parameter values."""
        point = point_of(template, values.get(self.by)) * sum(self.weights)
        reached = 0.0
        for name, weight in zip(self.names, self.weights, strict=True):
            reached += weight
            if point < reached:
                return name
        # Float rounding at the very top of the line: the last variant with any weight.
        return next(n for n, w in zip(self.names[::-1], self.weights[::-1], strict=True) if w)

    def describe(self) -> dict[str, Any]:
        total = sum(self.weights)
        return {
            "by": self.by,
            "variants": [
                {"name": name, "weight": weight, "share": weight / total}
                for name, weight in zip(self.names, self.weights, strict=True)
            ],
        }


def choose_variant(
    template: str, variants: Variants | None, values: Mapping[str, Any], forced: str | None
) -> str:
    """The page's A/B variant ("" when the template declares none); ``forced`` overrides it."""
    if forced is not None:
        if variants is None or forced not in variants.names:
            known = ", ".join(variants.names) if variants else "none: it declares no variants"
            message = f"unknown variant {forced!r} (this template: {known})"
            raise InvalidParameter("variant", message)
        return forced
    return "" if variants is None else variants.choose(template, values)
