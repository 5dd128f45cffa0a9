"""ogshot.contrib.django: ``{% load ogshot %}`` in Django's real template engine."""

from __future__ import annotations

import html
from typing import Any

import django
import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.template import engines
from django.test import override_settings

import ogshot
from tests.support.helpers import ROOT
from tests.unit.templates.test_meta import (
    BASE,
    ESCAPED,
    NASTY,
    SECRET,
    og_image,
    shipped,
    verifies,
    version_of,
)

if not settings.configured:
    settings.configure(
        INSTALLED_APPS=["ogshot.contrib.django"],
        TEMPLATES=[
            {"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}
        ],
        OGSHOT_BASE_URL=BASE,
        OGSHOT_SECRET=SECRET,
        OGSHOT_TEMPLATES_DIR=str(ROOT / "html_templates"),
        OGSHOT_STATIC_DIR=str(ROOT / "static"),
    )
    django.setup()


def render(source: str, **context: Any) -> str:
    result: str = engines["django"].from_string(source).render(context)
    return result


def test_ogshot_meta_writes_the_escaped_tags() -> None:
    out = render(
        '{% load ogshot %}<head>{% ogshot_meta "article" title=post.title alt=post.title %}</head>',
        post={"title": NASTY},
    )
    expected = ogshot.meta_tags(
        "article", {"title": NASTY}, base=BASE, alt=NASTY, secret=SECRET, settings=shipped()
    )
    assert out == f"<head>{expected}</head>"
    assert f'<meta property="og:image:alt" content="{ESCAPED}">' in out
    assert f"&amp;v={version_of('article')}&amp;s=" in out  # the current version, from the folder
    assert verifies(og_image(out), [SECRET])
    assert not verifies(og_image(out), ["another-secret"])


def test_ogshot_url_is_escaped_by_django_and_verifies() -> None:
    out = render(
        '{% load ogshot %}<img src="{% ogshot_url "minimal" title=t format="webp" %}">', t=NASTY
    )
    url = html.unescape(out[len('<img src="') : -len('">')])
    assert url.startswith(
        f"{BASE}/og/minimal.webp?title=Tom%20%26%20%22Jerry%22%20%3C3%20it%27s&v="
    )
    assert "&amp;s=" in out and '"Jerry"' not in out
    assert verifies(url, [SECRET])


def test_without_a_base_url_the_error_names_the_setting() -> None:
    with (
        override_settings(OGSHOT_BASE_URL=""),
        pytest.raises(ImproperlyConfigured, match="OGSHOT_BASE_URL"),
    ):
        render('{% load ogshot %}{% ogshot_meta "article" title="x" %}')
