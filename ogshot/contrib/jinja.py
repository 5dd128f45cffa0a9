"""ogshot in any Jinja environment (Flask, FastAPI/Starlette ``Jinja2Templates``, plain Jinja).

    from ogshot.contrib import jinja as ogshot_jinja
    ogshot_jinja.install(env, base="https://og.example.com")   # secret: OGSHOT_SECRET

    <head>{{ ogshot_meta("article", title=post.title, alt=post.title) }}</head>
    <img src="{{ ogshot_url('article', title=post.title) }}">

``ogshot_meta(template, alt=None, format=None, version=None, **params)`` is
:func:`ogshot.meta_tags` (Markup: safe as is, values escaped); ``ogshot_url(template,
format=None, version=None, **params)`` is :func:`ogshot.sign_url` with ``base`` in front (a plain
string: Jinja's autoescape escapes it in an attribute). A parameter a template calls ``alt``,
``format`` or ``version`` is passed inside ``params={...}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jinja2
from markupsafe import Markup

from ogshot.core.settings import Settings
from ogshot.templates.meta import meta_tags
from ogshot.templates.signing import sign_url

__all__ = ["install"]


def install(
    env: jinja2.Environment,
    *,
    base: str,
    secret: str | None = None,
    format: str = "png",
    settings: Settings | None = None,
) -> None:
    """Add the globals ``ogshot_meta`` and ``ogshot_url`` to ``env``. ``secret``: else the first
    ``OGSHOT_SECRET``; ``settings``: where the templates' versions are read (else the
    environment's ``OGSHOT_*``, loaded once here)."""
    loaded = settings or Settings.load()
    default_format = format

    def ogshot_meta(
        template: str,
        alt: str | None = None,
        format: str | None = None,
        version: str | None = None,
        params: Mapping[str, Any] | None = None,
        **more: Any,
    ) -> Markup:
        html = meta_tags(
            template,
            {**(params or {}), **more},
            base=base,
            format=format or default_format,
            alt=alt,
            secret=secret,
            version=version,
            settings=loaded,
        )
        return Markup(html)  # meta_tags escaped every value

    def ogshot_url(
        template: str,
        format: str | None = None,
        version: str | None = None,
        params: Mapping[str, Any] | None = None,
        **more: Any,
    ) -> str:
        return sign_url(
            template,
            {**(params or {}), **more},
            format or default_format,
            base=base,
            secret=secret,
            settings=loaded,
            version=version,
        )

    env.globals["ogshot_meta"] = ogshot_meta
    env.globals["ogshot_url"] = ogshot_url
