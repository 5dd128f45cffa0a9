"""Declared parameters: the types a template may declare and how a raw value becomes a typed one.

A raw value is what a request carries (query-string text, or a JSON scalar from ``data``). Every
parser either returns the value the template receives, in a stable form for the cache key, or
raises InvalidParameter naming the parameter. The declaration block that lists parameters is
parsed in ``declarations.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import tinycss2.color4

from ogshot.core.errors import InvalidParameter

__all__ = [
    "COLOUR_PATTERN",
    "PARAM_NAME_RE",
    "RESERVED_PARAMS",
    "TYPES",
    "Param",
    "json_value",
    "parse_colour",
    "parse_date",
]

PARAM_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# Taken by every URL, never by a template: the signature (signing.py), the version (versions.py),
# the byte budget (budgets.py).
RESERVED_PARAMS = frozenset({"s", "v", "max_kb"})
TYPES = ("str", "int", "float", "bool", "color", "url", "date")
_HEX = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
# What a colour may be made of once tinycss2 has accepted it: no comments, escapes, quotes,
# semicolons or braces, so the text is safe to drop into a style sheet as it is.
_COLOUR_CHARS = re.compile(r"^[#a-z0-9().,%/+\- ]+$")
# Keywords tinycss2 accepts that are not a colour of their own.
_NOT_A_COLOUR = frozenset({"currentcolor"})
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})
_COLOUR_HINT = (
    "a CSS colour: a name (tomato), #hex, rgb(), hsl(), hwb(), lab(), lch(), oklab(), oklch()"
)


@dataclass(frozen=True, kw_only=True)
class Param:
    name: str
    type: str = "str"
    default: Any = None
    required: bool = False
    allow_empty: bool = False  # with required: an empty value is accepted
    max_length: int | None = None
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] = ()
    description: str = ""
    example: Any = None

    def convert(self, raw: Any, *, global_max_length: int) -> Any:
        """Raw query/JSON value -> typed value, or InvalidParameter naming this parameter."""
        if self.required and not self.allow_empty and isinstance(raw, str) and not raw.strip():
            raise InvalidParameter(self.name, "required, and must not be empty")
        return self.convert_value(raw, global_max_length=global_max_length)

    def convert_value(self, raw: Any, *, global_max_length: int) -> Any:
        """``convert`` without the required-means-non-empty rule (used for defaults)."""
        if isinstance(raw, (dict, list)):
            raise InvalidParameter(
                self.name, f"expected a {self.type}, got a JSON {type(raw).__name__}"
            )
        value: Any
        if self.type == "str":
            value = _as_text(raw)
            limit = self.max_length or global_max_length
            if len(value) > limit:
                raise InvalidParameter(self.name, f"longer than {limit} characters ({len(value)})")
        elif self.type == "int":
            value = _parse_number(self.name, raw, int)
        elif self.type == "float":
            value = _parse_number(self.name, raw, float)
        elif self.type == "bool":
            value = _parse_bool(self.name, raw)
        elif self.type == "color":
            value = parse_colour(self.name, raw)
        elif self.type == "date":
            value = parse_date(self.name, raw)
        else:
            value = _parse_url(self.name, raw, self.max_length or 2048)
        if self.type in ("int", "float"):
            if self.min is not None and value < self.min:
                raise InvalidParameter(self.name, f"must be >= {self.min}, got {value}")
            if self.max is not None and value > self.max:
                raise InvalidParameter(self.name, f"must be <= {self.max}, got {value}")
        if self.choices and value not in self.choices:
            allowed = ", ".join(str(c) for c in self.choices)
            raise InvalidParameter(self.name, f"must be one of: {allowed}; got {value!r}")
        return value

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "required": self.required}
        if self.default is not None:  # "" is a default of its own, unlike no default
            out["default"] = json_value(self.default)
        for key in ("max_length", "min", "max", "description", "example"):
            value = getattr(self, key)
            if value not in (None, ""):
                out[key] = value
        if self.allow_empty:
            out["allow_empty"] = True
        if self.choices:
            out["choices"] = list(self.choices)
        return out


def _parse_number(name: str, raw: Any, kind: type[int] | type[float]) -> Any:
    if isinstance(raw, bool):
        raise InvalidParameter(name, f"expected {kind.__name__}, got a boolean")
    try:
        value = kind(raw.strip()) if isinstance(raw, str) else kind(raw)
    except (TypeError, ValueError):
        raise InvalidParameter(name, f"expected {kind.__name__}, got {raw!r}") from None
    if kind is int and isinstance(raw, float) and raw != value:
        raise InvalidParameter(name, f"expected int, got {raw!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidParameter(name, f"expected a finite number, got {raw!r}")
    return value


def _parse_bool(name: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidParameter(name, f"expected a boolean (true/false, 1/0), got {raw!r}")


def parse_colour(name: str, raw: Any) -> str:
    """A CSS Color 4 colour -> its text, normalised (lower case, single spaces; hex as #hex).

    ``#`` is optional before hex digits, since it has to be escaped in a URL. Parsing is
    tinycss2's; ``currentcolor`` is refused (it is the text colour of wherever it lands, not a
    colour a caller can choose), and so are the CSS-wide keywords (``inherit``...)."""
    # A JSON scalar counts as its text, as in the query string (and in the URL signature).
    text = " ".join(_as_text(raw).split()).lower()
    hex_match = _HEX.match(text)
    if hex_match:
        return "#" + hex_match.group(1)
    if (
        len(text) <= 200
        and _COLOUR_CHARS.match(text)
        and text not in _NOT_A_COLOUR
        and text.count("(") == text.count(")")  # CSS would close it at the end; a page cannot
        and tinycss2.color4.parse_color(text) is not None
    ):
        return text
    raise InvalidParameter(name, f"expected {_COLOUR_HINT}; got {raw!r}")


def parse_date(name: str, raw: Any) -> dt.date:
    """An ISO 8601 date (``2026-11-26``) or date-time (``2026-11-26T09:30:00+01:00``).

    The template receives a ``datetime.date`` or ``datetime.datetime``; its text is the ISO form."""
    if isinstance(raw, dt.date):  # a TOML date in a declaration
        return raw
    text = _as_text(raw).strip()
    try:
        if len(text) <= 10 and "T" not in text.upper():
            return dt.date.fromisoformat(text)
        return dt.datetime.fromisoformat(text)
    except ValueError:
        pass
    raise InvalidParameter(
        name, f"expected an ISO 8601 date like 2026-11-26 (or 2026-11-26T09:30:00Z); got {raw!r}"
    )


def _as_text(raw: Any) -> str:
    return raw if isinstance(raw, str) else json.dumps(raw)


def json_value(value: Any) -> Any:
    """A converted value as JSON can carry it: dates as ISO text, the rest as they are."""
    return value.isoformat() if isinstance(value, dt.date) else value


def _parse_url(name: str, raw: Any, limit: int) -> str:
    text = str(raw).strip()
    if len(text) > limit:
        raise InvalidParameter(name, f"longer than {limit} characters")
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. "http://[x": an unbalanced IPv6 bracket
        raise InvalidParameter(name, f"expected an http(s) URL, got {raw!r}") from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.netloc
        or any(c in text for c in "\"'<> \\")
    ):
        raise InvalidParameter(name, f"expected an http(s) URL, got {raw!r}")
    return text


def _colour_pattern() -> str:
    """A regular expression for the OpenAPI description: a subset of what ``parse_colour`` takes
    (every match is accepted; the tests check that), wide enough to show each syntax."""
    # tinycss2 keeps its list of named colours private: without it, the pattern has no names.
    names = sorted({"transparent", *getattr(tinycss2.color4, "_COLOR_KEYWORDS", ())})
    number = r"([0-9]{1,3}(\.[0-9]{1,3})?)"
    percent = rf"{number}%"
    rgb = rf"rgba?\({number}( {number}){{2}}( / {percent})?\)"
    hsl = rf"(hsla?|hwb)\({number}(deg)?( {percent}){{2}}( / {percent})?\)"
    ok = rf"(oklab|oklch|lab|lch)\({percent}( -?{number}){{2}}( / {percent})?\)"
    hexa = r"#?([0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})"
    return rf"^({hexa}|{'|'.join(names)}|{rgb}|{hsl}|{ok})$"


COLOUR_PATTERN = _colour_pattern()
