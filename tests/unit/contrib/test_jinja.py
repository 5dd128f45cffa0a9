"""ogshot.contrib.jinja: the globals in a real Jinja environment with autoescape, as Flask and
Starlette configure it."""

from __future__ import annotations

import html
from urllib.parse import parse_qsl, urlsplit

import jinja2

import ogshot
from ogshot.contrib import jinja as ogshot_jinja
from ogshot.http.og import parse_og
from ogshot.templates.signing import verify
from tests.unit.templates.test_meta import BASE, ESCAPED, NASTY, SECRET, og_image, shipped, verifies


def environment() -> jinja2.Environment:
    env = jinja2.Environment(autoescape=True)
    ogshot_jinja.install(env, base=BASE, secret=SECRET, settings=shipped())
    return env


def test_ogshot_meta_is_meta_tags_unescaped_once() -> None:
    page = environment().from_string(
        "<head>{{ ogshot_meta('article', title=post.title, alt=post.title, format='jpg') }}</head>"
    )
    out = page.render(post={"title": NASTY})
    expected = ogshot.meta_tags(
        "article",
        {"title": NASTY},
        base=BASE,
        format="jpg",
        alt=NASTY,
        secret=SECRET,
        settings=shipped(),
    )
    assert out == f"<head>{expected}</head>"  # Markup: not escaped a second time
    assert f'<meta property="og:image:alt" content="{ESCAPED}">' in out
    assert verifies(og_image(out), [SECRET])


def test_ogshot_url_is_escaped_where_it_is_put_and_verifies() -> None:
    page = environment().from_string(
        '<img src="{{ ogshot_url("minimal", title=t, version="v1") }}">'
    )
    out = page.render(t=NASTY)
    assert "&amp;v=v1&amp;s=" in out
    url = html.unescape(out[len('<img src="') : -len('">')])
    assert url.startswith(
        f"{BASE}/og/minimal.png?title=Tom%20%26%20%22Jerry%22%20%3C3%20it%27s&v=v1&s="
    )
    parts = urlsplit(url)
    og = parse_og(parts.path, dict(parse_qsl(parts.query, keep_blank_values=True)))
    assert og.params == {"title": NASTY, "v": "v1"}
    assert og.signature is not None
    assert verify([SECRET], og.template, og.params, og.format, og.signature)


def test_a_parameter_named_like_a_keyword_goes_in_params() -> None:
    page = environment().from_string(
        "{{ ogshot_url('minimal', params={'format': 'x'}, version='') }}"
    )
    assert page.render().startswith(f"{BASE}/og/minimal.png?format=x&amp;s=")
