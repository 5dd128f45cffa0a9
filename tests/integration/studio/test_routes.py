"""/preview over HTTP: the endpoints the studio page uses, with real Chromium, pyvips, diskcache."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, quote

import httpx
import pytest
from starlette.testclient import TestClient

from ogshot.app import create_app
from ogshot.pipeline.renderer import Renderer
from tests.support.helpers import image_of, make_settings, mean_difference, pixel, saved
from tests.support.procs import Server, serve_env

BROKEN_SYNTAX = """{#ogshot
[params.title]
example = "x"
#}
<h1>{{ title }}</h1>
<p>{% endfor %}</p>
"""  # line 6: a tag that closes nothing

UNDEFINED = """{#ogshot
[params.title]
example = "x"
#}
<h1>{{ title }}</h1>

<p>{{ not_declared }}</p>
"""  # line 7

BAD_DECLARATION = """{#ogshot
description = "broken"
[params.title]
type = "str"
max_length = = 3
#}
<h1>{{ title }}</h1>
"""  # the TOML error is on line 5

NEVER_READY = """{#ogshot
[params.title]
example = "x"
#}
<h1>{{ title }}</h1>
<script>window.ogshotReady = new Promise(() => {});</script>
"""


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    base = tmp_path_factory.mktemp("preview")
    settings = make_settings(base, dev=True, render_timeout=3.0)
    for name, source in {
        "broken-syntax": BROKEN_SYNTAX,
        "undefined": UNDEFINED,
        "bad-declaration": BAD_DECLARATION,
        "never-ready": NEVER_READY,
    }.items():
        (settings.templates_dir / f"{name}.html").write_text(source)
    with TestClient(create_app(settings)) as client:
        yield client


def test_preview_is_404_when_dev_mode_is_off(client: TestClient) -> None:
    assert client.app.state.renderer.settings.dev is False  # type: ignore[attr-defined]
    for path in (
        "/preview",
        "/preview/article",
        "/preview/_api/templates",
        "/preview/_render/article.png?title=x",
        "/preview/_events",
        "/preview/_assets/studio.js",
        "/preview/_html/article?title=x",
        "/static/css/base.css",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"] == "not found"


def test_gallery_and_studio_pages_are_served_with_their_assets(dev: TestClient) -> None:
    gallery = dev.get("/preview")
    assert gallery.status_code == 200
    assert gallery.headers["content-type"].startswith("text/html")
    assert "/preview/_assets/gallery.js" in gallery.text
    studio = dev.get("/preview/article")
    assert studio.status_code == 200
    assert '<form id="params-form"' in studio.text
    broken = dev.get("/preview/bad-declaration")  # the studio opens and shows the error
    assert broken.status_code == 200 and '<form id="params-form"' in broken.text
    for asset, kind in (
        ("studio.js", "javascript"),
        ("common.js", "javascript"),
        ("gallery.js", "javascript"),
        ("studio.css", "text/css"),
        ("favicon.svg", "image/svg+xml"),
    ):
        response = dev.get(f"/preview/_assets/{asset}")
        assert response.status_code == 200, asset
        assert kind in response.headers["content-type"]
    assert dev.get("/preview/_assets/nope.js").status_code == 404


def test_studio_for_an_unknown_template_is_an_html_page_linking_the_templates(
    dev: TestClient,
) -> None:
    response = dev.get("/preview/articel")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "No template named <code>articel</code>" in response.text
    assert 'Did you mean <a href="/preview/article">article</a>?' in response.text
    names = dev.app.state.renderer.catalog.names()  # type: ignore[attr-defined]
    for name in names:
        assert f'<li><a href="/preview/{name}">{name}</a></li>' in response.text
    assert "Did you mean" not in dev.get("/preview/zzzzzz").text  # nothing close
    # The requested name is text on the page, never markup.
    hostile = dev.get("/preview/" + quote("<img src=x onerror=alert(1)>"))
    assert hostile.status_code == 404
    assert "<img src=x" not in hostile.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in hostile.text


def test_template_list_describes_every_template_or_its_error(dev: TestClient) -> None:
    response = dev.get("/preview/_api/templates")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    items = {t["name"]: t for t in response.json()["templates"]}
    names = dev.app.state.renderer.catalog.names()  # type: ignore[attr-defined]
    assert sorted(items) == names
    article = items["article"]
    assert article["examples"]["title"].startswith("Rendering Open Graph")
    assert (article["width"], article["height"]) == (1200, 630)
    assert article["signed"] is False
    params = {p["name"]: p for p in article["params"]}
    assert params["title"]["max_length"] == 140 and params["title"]["required"] is True
    assert params["accent"]["type"] == "color"
    assert params["theme"]["choices"] == ["dark", "light"]
    broken = items["bad-declaration"]
    assert broken["detail"]["kind"] == "template"
    assert broken["detail"]["line"] == 5
    assert "max_length = = 3" in [row["text"] for row in broken["detail"]["excerpt"]]


def test_one_template_described(dev: TestClient) -> None:
    minimal = dev.get("/preview/_api/templates/minimal").json()
    size = {p["name"]: p for p in minimal["params"]}["size"]
    assert (size["type"], size["min"], size["max"], size["default"]) == ("int", 32, 120, 84)
    missing = dev.get("/preview/_api/templates/nope")
    assert missing.status_code == 404
    assert missing.json()["detail"]["kind"] == "not_found"


def test_render_is_the_og_pipeline_with_timing_cache_and_the_og_url(dev: TestClient) -> None:
    query = "title=" + quote("Studio render 🎨") + "&background=%23ff0000"
    first = dev.get(f"/preview/_render/minimal.png?{query}")
    assert first.status_code == 200
    assert first.headers["content-type"] == "image/png"
    assert first.headers["x-ogshot-cache"] == "miss"
    assert "capture;dur=" in first.headers["server-timing"]
    assert "total;dur=" in first.headers["server-timing"]
    assert first.headers["cache-control"] == "no-store"
    assert (image_of(first.content).width, image_of(first.content).height) == (1200, 630)
    og_url = first.headers["x-ogshot-url"]
    path, _, og_query = og_url.partition("?")
    assert path == "/og/minimal.png"
    version = dev.get("/preview/_api/templates/minimal").json()["version"]
    assert parse_qs(og_query) == {
        "title": ["Studio render 🎨"],
        "background": ["#ff0000"],
        "v": [version],  # versioned: immutable, and a redesign makes a new URL
    }
    second = dev.get(f"/preview/_render/minimal.png?{query}")
    assert second.headers["x-ogshot-cache"] == "hit"
    assert second.content == first.content
    # The URL the studio hands out serves the very same bytes, from the same cache entry.
    served = dev.get(og_url)
    assert served.status_code == 200
    assert served.headers["x-ogshot-cache"] == "hit"
    assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert served.content == first.content


@pytest.mark.parametrize(("ext", "content_type"), [("jpg", "image/jpeg"), ("webp", "image/webp")])
def test_render_in_each_format(dev: TestClient, ext: str, content_type: str) -> None:
    response = dev.get(f"/preview/_render/minimal.{ext}?title=formats")
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    version = dev.get("/preview/_api/templates/minimal").json()["version"]
    assert response.headers["x-ogshot-url"] == f"/og/minimal.{ext}?title=formats&v={version}"
    png = dev.get("/preview/_render/minimal.png?title=formats").content
    assert mean_difference(png, response.content) < 3.0


def test_bad_parameter_is_json_naming_it(dev: TestClient) -> None:
    response = dev.get("/preview/_render/minimal.png?title=x&size=500")
    assert response.status_code == 400
    body = response.json()
    assert "size" in body["error"] and "120" in body["error"]
    assert body["detail"]["parameter"] == "size"
    assert body["detail"]["kind"] == "parameter"
    twice = dev.get("/preview/_render/minimal.png?title=a&title=b")
    assert twice.status_code == 400
    assert twice.json()["detail"]["parameter"] == "title"
    fmt = dev.get("/preview/_render/minimal.gif?title=x")
    assert fmt.status_code == 400
    assert "gif" in fmt.json()["error"]


def test_syntax_error_is_json_with_file_line_and_excerpt(dev: TestClient) -> None:
    response = dev.get("/preview/_render/broken-syntax.png?title=x")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    detail = body["detail"]
    assert detail["kind"] == "template"
    assert detail["file"] == "broken-syntax.html"
    assert detail["line"] == 6
    rows = {row["line"]: row["text"] for row in detail["excerpt"]}
    assert rows[6] == "<p>{% endfor %}</p>"
    assert sorted(rows) == [3, 4, 5, 6]  # three lines of context, clipped at the end
    assert "syntax error" in body["error"] and "endfor" in body["error"]


def test_undefined_variable_points_at_its_line(dev: TestClient) -> None:
    body = dev.get("/preview/_render/undefined.png?title=x").json()
    assert "not_declared" in body["error"]
    assert body["detail"]["line"] == 7
    rows = {row["line"]: row["text"] for row in body["detail"]["excerpt"]}
    assert rows[7] == "<p>{{ not_declared }}</p>"


def test_error_in_a_partial_points_into_the_partial(dev: TestClient) -> None:
    root = Path(dev.app.state.renderer.settings.templates_dir)  # type: ignore[attr-defined]
    (root / "partials" / "_oops.html").write_text("<b>fine</b>\n<i>{{ missing_in_partial }}</i>\n")
    (root / "uses-partial.html").write_text(
        '{#ogshot\n[params.title]\nexample = "x"\n#}\n{% include "partials/_oops.html" %}\n'
    )
    body = dev.get("/preview/_render/uses-partial.png?title=x").json()
    assert body["detail"]["file"] == "partials/_oops.html"
    assert body["detail"]["line"] == 2


def test_render_timeout_is_504_json_with_a_hint(dev: TestClient) -> None:
    response = dev.get("/preview/_render/never-ready.png?title=x")
    assert response.status_code == 504
    body = response.json()
    assert body["detail"]["kind"] == "timeout"
    assert "3 s" in body["error"]
    assert "ogshotReady" in body["detail"]["hint"]
    # The pool recovers: the next render works.
    assert dev.get("/preview/_render/minimal.png?title=after").status_code == 200


def test_og_still_answers_a_broken_template_with_the_fallback_image(dev: TestClient) -> None:
    response = dev.get("/og/broken-syntax.png?title=x")
    assert response.status_code == 500
    assert response.headers["content-type"] == "image/png"
    assert "syntax error" in response.headers["x-ogshot-error"]


def test_serve_dev_ends_event_streams_at_ctrl_c_instead_of_waiting_for_them(
    tmp_path: Path,
) -> None:
    """uvicorn waits for open responses before it stops; an open studio tab must not hold it."""
    make_settings(tmp_path)  # the template and static copies the server serves
    with Server("--dev", env=serve_env(tmp_path), cwd=tmp_path) as server:
        assert server.get("/preview").status_code == 200
        assert "design studio on http://127.0.0.1:" in server.output()
        with httpx.stream("GET", f"{server.base}/preview/_events", timeout=30) as response:
            lines = response.iter_lines()
            assert next(line for line in lines if line.startswith("event: ")) == "event: hello"
            assert server.process is not None
            server.process.send_signal(signal.SIGINT)
            rest = list(lines)  # read to the end: the server closes the stream
        assert not any("keep-alive" in line for line in rest), rest  # closed at once
        assert server.process.wait(60) == 0


def test_the_og_url_is_signed_when_a_secret_is_configured(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, dev=True, secrets=("studio-secret",))
    with TestClient(create_app(settings)) as client:
        assert client.get("/preview/_api/templates/minimal").json()["signed"] is True
        # The studio itself renders without a signature (dev mode) ...
        response = client.get("/preview/_render/minimal.webp?title=Signed%20%26%20sealed")
        assert response.status_code == 200
        # ... and hands out an /og URL that carries one and serves the same image.
        og_url = response.headers["x-ogshot-url"]
        path, _, query = og_url.partition("?")
        assert path == "/og/minimal.webp"
        fields = parse_qs(query)
        assert fields["title"] == ["Signed & sealed"] and len(fields["s"][0]) >= 16
        served = client.get(og_url)
        assert served.status_code == 200
        assert served.content == response.content
        unsigned = "&".join(p for p in query.split("&") if not p.startswith("s="))
        assert client.get(f"{path}?{unsigned}").status_code == 403


def test_an_edited_static_file_reaches_the_warm_pages(dev: TestClient) -> None:
    """Warm pages keep loaded CSS in memory; after an edit no render may use the old copy."""
    css = Path(dev.app.state.renderer.settings.static_dir) / "css" / "base.css"  # type: ignore[attr-defined]
    original = css.read_text()
    for n in range(4):  # every page has base.css in its memory by now
        dev.get(f"/preview/_render/minimal.png?title=before{n}")
    marker = "body::after { content: ''; position: fixed; left: 0; top: 0; width: 50px;"
    with saved(dev):
        css.write_text(original + marker + " height: 50px; background: #ff00ff; }\n")
    try:
        for n in range(4):
            shot = dev.get(f"/preview/_render/minimal.png?title=after{n}").content
            r, g, b = pixel(shot, 10, 10)
            assert r > 225 and g < 30 and b > 225, n
    finally:
        with saved(dev):
            css.write_text(original)


# -- the rendered document, opened as HTML -----------------------------------------------------


def test_open_as_html_is_the_rendered_document_with_a_strict_policy(dev: TestClient) -> None:
    response = dev.get("/preview/_html/article?title=" + quote("<b>Bold</b> & more"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "&lt;b&gt;Bold&lt;/b&gt; &amp; more" in response.text
    assert "<b>Bold</b>" not in response.text
    # The very HTML the pipeline hands to Chromium.
    renderer = dev.app.state.renderer  # type: ignore[attr-defined]
    job = renderer.prepare("article", {"title": "<b>Bold</b> & more"})
    assert response.text == renderer.catalog.render_html(job.template, job.variables)
    policy = dict(
        part.strip().split(" ", 1)
        for part in response.headers["content-security-policy"].split(";")
    )
    assert policy["script-src"] == "'none'"
    assert policy["connect-src"] == "'none'"
    assert policy["default-src"] == "'self'"
    assert response.headers["cache-control"] == "no-store"
    # Bad parameters answer as /preview/_render does.
    bad = dev.get("/preview/_html/minimal?title=x&size=500")
    assert bad.status_code == 400
    assert bad.json()["detail"]["parameter"] == "size"
    assert dev.get("/preview/_html/nope").status_code == 404


def test_static_files_the_document_uses_are_served_and_nothing_outside(dev: TestClient) -> None:
    document = dev.get("/preview/_html/article?title=x").text
    for path in ("/static/css/base.css", "/static/img/logo.svg", "/static/img/wash.png"):
        assert path in document
        response = dev.get(path)
        assert response.status_code == 200, path
        static = Path(dev.app.state.renderer.settings.static_dir)  # type: ignore[attr-defined]
        assert response.content == (static / path.removeprefix("/static/")).read_bytes()
    assert dev.get("/static/css/base.css").headers["content-type"].startswith("text/css")
    svg = dev.get("/static/img/logo.svg")
    assert svg.headers["content-type"] == "image/svg+xml"
    assert "script-src 'none'" in svg.headers["content-security-policy"]
    # A file next to the static folder exists, and no spelling of ".." reaches it.
    secret = static.parent / "secret.txt"
    secret.write_text("not for the browser")
    for path in (
        "/static/%2e%2e/secret.txt",
        "/static/..%2fsecret.txt",
        "/static/%2e%2e%2fsecret.txt",
        "/static/css/%2e%2e/%2e%2e/secret.txt",
        "/static/" + quote(str(secret)),
        "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    ):
        response = dev.get(path)
        assert response.status_code == 404, path
        assert b"not for the browser" not in response.content
        assert b"root:" not in response.content
    assert dev.get("/static/css").status_code == 404  # a folder
    missing = dev.get("/static/css/nope.css")
    assert missing.status_code == 404
    assert "nope.css" in missing.json()["error"]


def test_the_policy_lets_the_document_show_allowed_remote_images(tmp_path: Path) -> None:
    from ogshot.studio.html import content_security_policy  # here: the module is dev-only

    settings = make_settings(tmp_path, dev=True, remote_images=("*.cdn.example", "img.example"))
    policy = content_security_policy(Renderer(settings))
    img_src = next(p for p in policy.split("; ") if p.startswith("img-src "))
    assert img_src == "img-src 'self' data: blob: *.cdn.example img.example"
    assert "script-src 'none'" in policy


DIRECTION = """{#ogshot
[params.title]
example = "x"
#}
<body style="margin: 0; background: #000; color: #fff; font: 700 90px sans-serif">
<h1 dir="auto" style="margin: 0; padding: 40px">{{ title }}</h1>
</body>
"""


def _ink_columns(png: bytes) -> tuple[int, int]:
    """The leftmost and rightmost columns with white text in them."""
    image = image_of(png)[0]  # red channel: text is white on black
    columns = [x for x in range(0, image.width, 4) if image.crop(x, 0, 4, 300).max() > 128]
    return columns[0], columns[-1]


def test_dir_auto_sets_a_right_to_left_title_on_the_right(dev: TestClient) -> None:
    """What the studio guide tells template authors: ``dir="auto"`` follows the text's direction."""
    root = Path(dev.app.state.renderer.settings.templates_dir)  # type: ignore[attr-defined]
    (root / "direction.html").write_text(DIRECTION)
    ltr = dev.get("/preview/_render/direction.png?title=" + quote("Hello"))
    rtl = dev.get("/preview/_render/direction.png?title=" + quote("مرحبا"))
    assert ltr.status_code == rtl.status_code == 200
    left, _ = _ink_columns(ltr.content)
    _, right = _ink_columns(rtl.content)
    assert left < 100  # starts at the left padding
    assert right > 1100  # ends at the right padding
    assert _ink_columns(rtl.content)[0] > 600  # and only there


def test_a_missing_static_file_does_not_fail_the_render(dev: TestClient) -> None:
    """What the studio guide says: the page gets a 404, the image renders without the file."""
    root = Path(dev.app.state.renderer.settings.templates_dir)  # type: ignore[attr-defined]
    (root / "missing-static.html").write_text(
        '<link rel="stylesheet" href="/static/css/not-there.css">'
        '<body style="margin:0;background:#0000ff"><img src="/static/img/not-there.png"></body>'
    )
    response = dev.get("/preview/_render/missing-static.png")
    assert response.status_code == 200
    r, g, b = pixel(response.content, 600, 315)
    assert r < 30 and g < 30 and b > 225
    assert dev.get("/static/css/not-there.css").status_code == 404


def test_the_studio_render_names_the_parameter_a_typo_is_near(dev: TestClient) -> None:
    """The studio's overlay shows the JSON ``error`` of /preview/_render as it is: the same
    message as /og, suggestion included."""
    response = dev.get("/preview/_render/article.png", params={"title": "x", "autor": "Ada"})
    assert response.status_code == 400
    body = response.json()
    assert body["error"].endswith("; did you mean 'author'?")
    assert body["detail"]["suggestion"] == "author"
    assert body["detail"]["parameter"] == "autor"
    assert body["detail"]["kind"] == "parameter"
    missing = dev.get("/preview/_render/artcle.png", params={"title": "x"})
    assert missing.status_code == 404
    assert missing.json()["error"] == "no template named 'artcle'; did you mean 'article'?"


def test_the_document_of_a_tailwind_template_has_its_css_right_after_start(
    tmp_path: Path,
) -> None:
    """The server starts without compiling Tailwind CSS it never compiled before (cold start);
    the studio's document view, asked at once, still gets the template's CSS inline."""
    settings = make_settings(tmp_path, dev=True)
    assert not (settings.cache_dir / "tailwind").exists()  # nothing compiled before
    with TestClient(create_app(settings)) as client:
        response = client.get(
            "/preview/_html/tailwind-changelog?project=ogshot&version=v1&title=Styled"
        )
    assert response.status_code == 200
    assert "/*! tailwindcss v4" in response.text
    assert "Styled" in response.text
