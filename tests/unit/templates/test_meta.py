"""ogshot.meta_tags: exact, escaped tags whose og:image URL the server's parser and verifier accept,
the same bytes as clients/js metaTags, and the template's declared size."""

from __future__ import annotations

import html
import json
import shutil
import subprocess
import warnings
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

import ogshot
from ogshot.core.errors import InvalidFormat
from ogshot.core.settings import Settings
from ogshot.http.og import parse_og
from ogshot.templates.catalog import Catalog
from ogshot.templates.signing import sign, verify
from tests.support.helpers import ROOT

SECRET = "meta-secret"
BASE = "https://og.example.com"
NASTY = """Tom & "Jerry" <3 it's"""
ESCAPED = "Tom &amp; &quot;Jerry&quot; &lt;3 it&#x27;s"


def shipped() -> Settings:
    return Settings.load(
        environ={},
        config_file=None,
        templates_dir=ROOT / "html_templates",
        static_dir=ROOT / "static",
    )


def version_of(template: str) -> str:
    return Catalog(ROOT / "html_templates", ROOT / "static").get(template).version


def og_image(tags: str) -> str:
    start = tags.index('<meta property="og:image" content="') + len(
        '<meta property="og:image" content="'
    )
    return html.unescape(tags[start : tags.index('"', start)])


def verifies(url: str, secrets: list[str]) -> bool:
    """What the server does with the URL: its parser, then its verifier."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    og = parse_og(parts.path, query)
    assert og.signature is not None
    return verify(secrets, og.template, og.params, og.format, og.signature)


def test_exact_escaped_output() -> None:
    tags = ogshot.meta_tags(
        "article",
        {"title": NASTY},
        base=BASE,
        format="jpg",
        alt=NASTY,
        secret=SECRET,
        settings=shipped(),
    )
    v = version_of("article")
    sig = sign(SECRET, "article", {"title": NASTY, "v": v}, "jpeg")
    url = (
        f"{BASE}/og/article.jpg?title=Tom%20%26%20%22Jerry%22%20%3C3%20it%27s&amp;v={v}&amp;s={sig}"
    )
    assert tags == "\n".join(
        [
            f'<meta property="og:image" content="{url}">',
            '<meta property="og:image:type" content="image/jpeg">',
            '<meta property="og:image:width" content="1200">',
            '<meta property="og:image:height" content="630">',
            f'<meta property="og:image:alt" content="{ESCAPED}">',
            '<meta name="twitter:card" content="summary_large_image">',
            f'<meta name="twitter:image" content="{url}">',
            f'<meta name="twitter:image:alt" content="{ESCAPED}">',
        ]
    )
    assert verifies(og_image(tags), [SECRET])
    assert not verifies(og_image(tags).replace("Jerry", "Jerri"), [SECRET])


def test_without_alt_there_are_no_alt_tags_and_the_version_can_be_given() -> None:
    tags = ogshot.meta_tags(
        "minimal", {"title": "x"}, base=BASE + "/", secret=SECRET, version="abc", settings=shipped()
    )
    assert "alt" not in tags
    assert og_image(tags) == f"{BASE}/og/minimal.png?title=x&v=abc&s=" + sign(
        SECRET, "minimal", {"title": "x", "v": "abc"}, "png"
    )
    assert '<meta property="og:image:type" content="image/png">' in tags


def test_the_declared_size_in_pixels(tmp_path: Path) -> None:
    templates = tmp_path / "html_templates"
    templates.mkdir()
    (templates / "square.html").write_text(
        '{#ogshot\nwidth = 600\nheight = 600\nscale = 2\n[params.title]\ntype = "str"\n#}\n'
        "<p>{{ title }}</p>"
    )
    (tmp_path / "static").mkdir()
    settings = Settings.load(
        environ={}, config_file=None, templates_dir=templates, static_dir=tmp_path / "static"
    )
    tags = ogshot.meta_tags("square", {"title": "Sq"}, base=BASE, secret=SECRET, settings=settings)
    assert '<meta property="og:image:width" content="1200">' in tags
    assert '<meta property="og:image:height" content="1200">' in tags
    given = ogshot.meta_tags(
        "square", {"title": "Sq"}, base=BASE, secret=SECRET, settings=settings, width=10, height=20
    )
    assert 'og:image:width" content="10"' in given and 'og:image:height" content="20"' in given


def test_a_template_not_on_this_machine_gets_the_default_size_and_a_warning(tmp_path: Path) -> None:
    settings = Settings.load(
        environ={}, config_file=None, templates_dir=tmp_path / "none", static_dir=tmp_path
    )
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        tags = ogshot.meta_tags(
            "remote", {"title": "x"}, base=BASE, secret=SECRET, settings=settings
        )
    assert 'og:image:width" content="1200"' in tags
    assert "v=" not in og_image(tags)  # no version known here


def test_a_bad_format_is_the_servers_error() -> None:
    with pytest.raises(InvalidFormat, match="unknown format 'gif'"):
        ogshot.meta_tags("minimal", {"title": "x"}, base=BASE, format="gif", secret=SECRET)


def test_the_same_bytes_as_the_javascript_client() -> None:
    node = shutil.which("node")
    assert node, "Node.js is needed for clients/js (nodejs in .ci/setup's SYSTEM_PACKAGES)"
    options = {
        "base": BASE,
        "template": "article",
        "params": {"title": NASTY, "author": "李 🚀", "tag": ""},
        "format": "webp",
        "secret": SECRET,
        "version": "3f9a1c0b7e",
        "alt": NASTY,
    }
    script = (
        "import { metaTags } from './clients/js/index.js';\n"
        f"process.stdout.write(await metaTags({json.dumps(options)}));\n"
    )
    result = subprocess.run(
        [node, "--input-type=module", "-e", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    python = ogshot.meta_tags(
        "article",
        options["params"],  # type: ignore[arg-type]
        base=BASE,
        format="webp",
        alt=NASTY,
        secret=SECRET,
        version="3f9a1c0b7e",
        settings=shipped(),
    )
    assert result.stdout == python
