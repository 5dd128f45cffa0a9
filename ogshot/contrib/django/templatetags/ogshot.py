"""``{% load ogshot %}``: ``{% ogshot_meta "article" title=... alt=... %}`` (the tags of
:func:`ogshot.meta_tags`, safe as is, every value escaped) and ``{% ogshot_url "article"
title=... %}`` (the signed URL; Django escapes it where it is put).

Django settings: ``OGSHOT_BASE_URL`` (required: where ogshot answers), ``OGSHOT_SECRET`` (a
string, else the first of the environment's ``OGSHOT_SECRET``), ``OGSHOT_TEMPLATES_DIR`` and
``OGSHOT_STATIC_DIR`` (the server's templates, for the current version ``v``; else the
environment's). The keywords ``alt``, ``format`` and ``version`` are the tag's own; every other
keyword is a template parameter (a parameter called one of those goes in ``params=``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django import template
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.safestring import SafeString, mark_safe

from ogshot.core.settings import Settings
from ogshot.templates.meta import meta_tags
from ogshot.templates.signing import sign_url

register = template.Library()


@functools.lru_cache(maxsize=8)
def _ogshot_settings(templates_dir: str | None, static_dir: str | None) -> Settings:
    overrides: dict[str, Any] = {}
    if templates_dir:
        overrides["templates_dir"] = Path(templates_dir)
    if static_dir:
        overrides["static_dir"] = Path(static_dir)
    return Settings.load(**overrides)


def _config() -> tuple[str, str | None, Settings]:
    base = getattr(django_settings, "OGSHOT_BASE_URL", "")
    if not base:
        raise ImproperlyConfigured(
            "OGSHOT_BASE_URL is not set: set it in Django's settings to where ogshot answers "
            "(https://og.example.com)"
        )
    secret = getattr(django_settings, "OGSHOT_SECRET", None) or None
    settings = _ogshot_settings(
        _text_or_none(getattr(django_settings, "OGSHOT_TEMPLATES_DIR", None)),
        _text_or_none(getattr(django_settings, "OGSHOT_STATIC_DIR", None)),
    )
    return str(base), secret, settings


def _text_or_none(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def ogshot_meta(
    name: str,
    alt: str | None = None,
    format: str = "png",
    version: str | None = None,
    params: Mapping[str, Any] | None = None,
    **more: Any,
) -> SafeString:
    base, secret, settings = _config()
    html = meta_tags(
        name,
        {**(params or {}), **more},
        base=base,
        format=format,
        alt=None if alt is None else str(alt),
        secret=secret,
        version=version,
        settings=settings,
    )
    return mark_safe(html)  # meta_tags escaped every value


def ogshot_url(
    name: str,
    format: str = "png",
    version: str | None = None,
    params: Mapping[str, Any] | None = None,
    **more: Any,
) -> str:
    base, secret, settings = _config()
    return sign_url(
        name,
        {**(params or {}), **more},
        format,
        base=base,
        secret=secret,
        settings=settings,
        version=version,
    )


# Registered by call, not as decorators: Django is untyped, and the functions keep their types.
register.simple_tag(ogshot_meta)
register.simple_tag(ogshot_url)
