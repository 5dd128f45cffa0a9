"""Jinja filters ogshot adds to every template: dates written for a locale, by Babel.

    {{ published | format_date }}                        Nov 26, 2026
    {{ published | format_date("long", locale="de") }}   26. November 2026
    {{ published | format_date("d MMM y", "fr") }}       26 nov. 2026
    {{ published | format_datetime("short", "en_GB") }}  26/11/2026, 09:30

``format`` is ``short``, ``medium`` (the default), ``long``, ``full`` or a CLDR pattern; ``locale``
is a language tag (``en``, ``de``, ``pt_BR`` or ``pt-BR``; ``en`` by default). The value is a
``date`` parameter, or ISO 8601 text (an undeclared template's parameters are text).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import babel
import babel.dates

__all__ = ["FILTERS", "format_date", "format_datetime"]


def format_date(value: Any, format: str = "medium", locale: str = "en") -> str:
    return babel.dates.format_date(_as_date(value), format=format, locale=_locale(locale))


def format_datetime(value: Any, format: str = "medium", locale: str = "en") -> str:
    moment = _as_date(value)
    if not isinstance(moment, dt.datetime):
        moment = dt.datetime.combine(moment, dt.time())
    return babel.dates.format_datetime(moment, format=format, locale=_locale(locale))


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    try:
        return dt.date.fromisoformat(text) if len(text) <= 10 else dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"format_date: {value!r} is not an ISO 8601 date") from None


def _locale(tag: str) -> babel.Locale:
    try:
        return babel.Locale.parse(str(tag).replace("-", "_"))
    except (ValueError, babel.UnknownLocaleError):
        raise ValueError(f"format_date: unknown locale {tag!r}") from None


FILTERS: dict[str, Callable[..., str]] = {
    "format_date": format_date,
    "format_datetime": format_datetime,
}
