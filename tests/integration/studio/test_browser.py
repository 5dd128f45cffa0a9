"""The studio in a real browser: Playwright's Chromium against a real uvicorn server on loopback."""

from __future__ import annotations

import base64
import contextlib
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page

from tests.support.helpers import make_settings, mean_difference, pixel
from tests.support.live import WAIT_MS, Live, serve


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A real uvicorn server in dev mode on a free loopback port, over a private template copy."""
    # A short render deadline keeps the timeout test short; renders here take ~0.2 s.
    settings = make_settings(
        tmp_path_factory.mktemp("studio"), dev=True, render_timeout=4.0, site_name="Example Site"
    )
    with serve(settings) as server:
        yield server


@contextlib.contextmanager
def edited(path: Path, old: str, new: str) -> Iterator[None]:
    """Replace ``old`` by ``new`` in a file for the duration of the block, then restore it."""
    original = path.read_text()
    assert old in original, f"{old!r} not in {path}"
    path.write_text(original.replace(old, new))
    try:
        yield
    finally:
        path.write_text(original)


def open_studio(page: Page, live: Live, template: str) -> None:
    page.goto(f"{live.url}/preview/{template}")
    page.wait_for_selector("body[data-state=ready]", timeout=WAIT_MS)
    page.wait_for_selector("#live[data-state=live]", timeout=WAIT_MS)


def current_etag(page: Page) -> str:
    etag: str = page.eval_on_selector("#image", "img => img.dataset.etag")
    return etag


def wait_for_new_image(page: Page, old_etag: str) -> None:
    page.wait_for_function(
        """(old) => document.body.dataset.state === "ready"
                && document.getElementById("image").dataset.etag !== old""",
        arg=old_etag,
        timeout=WAIT_MS,
    )


def shown_image(page: Page) -> bytes:
    """The bytes of the image the studio shows, read back from its blob: URL."""
    data_url: str = page.evaluate(
        """async () => {
            const blob = await (await fetch(document.getElementById("image").src)).blob();
            return await new Promise((resolve) => {
                const reader = new FileReader();
                reader.onload = () => resolve(reader.result);
                reader.readAsDataURL(blob);
            });
        }"""
    )
    return base64.b64decode(data_url.split(",", 1)[1])


def og_bytes(live: Live, path: str) -> bytes:
    with urllib.request.urlopen(live.url + path, timeout=30) as response:
        body: bytes = response.read()
    return body


# -- gallery -----------------------------------------------------------------------------------


def test_gallery_lists_every_template_with_a_thumbnail(page: Page, live: Live) -> None:
    page.goto(f"{live.url}/preview")
    page.wait_for_selector("body[data-state=ready]", timeout=WAIT_MS)
    cards = page.locator(".template-card")
    names = sorted(p.stem for p in live.templates.glob("*.html"))
    assert sorted(cards.evaluate_all("cs => cs.map(c => c.dataset.template)")) == names
    sizes = page.eval_on_selector_all(
        ".template-card",
        "cs => cs.map(c => [c.dataset.template, c.querySelector('.thumb img').naturalWidth,"
        " c.querySelector('.thumb img').naturalHeight])",
    )
    # Each thumbnail is the template's own image: 1200x630, or the size it declares.
    expected = {name: (1200, 630) for name in names} | {"quote-square": (1080, 1080)}
    assert {name: (w, h) for name, w, h in sizes} == expected
    assert "title*" in page.locator('[data-template="article"] .chips').inner_text()
    page.click('[data-template="minimal"]')
    page.wait_for_url(f"{live.url}/preview/minimal")
    page.wait_for_selector("body[data-state=ready]", timeout=WAIT_MS)


def test_gallery_picks_up_a_new_template_without_a_reload(page: Page, live: Live) -> None:
    page.goto(f"{live.url}/preview")
    page.wait_for_selector("#live[data-state=live]", timeout=WAIT_MS)
    page.evaluate("() => { window.notReloaded = true; }")
    (live.templates / "fresh.html").write_text(
        '{#ogshot\ndescription = "Added while the gallery was open"\n'
        '[params.title]\nexample = "Fresh"\n#}\n<h1>{{ title }}</h1>\n'
    )
    card = page.locator('[data-template="fresh"]')
    card.wait_for(timeout=WAIT_MS)
    assert "Added while the gallery was open" in card.inner_text()
    page.wait_for_function(
        """() => document.querySelector('[data-template="fresh"] img').naturalWidth === 1200""",
        timeout=WAIT_MS,
    )
    assert page.evaluate("() => window.notReloaded") is True


# -- the studio --------------------------------------------------------------------------------


def test_form_is_generated_from_the_declared_params(page: Page, live: Live) -> None:
    open_studio(page, live, "article")
    title = page.locator("#p-title")
    assert title.evaluate("e => e.tagName") == "TEXTAREA"
    assert title.get_attribute("maxlength") == "140"
    assert title.input_value() == "Rendering Open Graph images with real Chromium 🚀"
    assert page.locator("#p-theme").evaluate("e => e.tagName") == "SELECT"
    assert page.locator("#p-theme option").all_inner_texts() == ["dark", "light"]
    assert page.locator('.field[data-param="accent"] input[type=color]').input_value() == "#6d5dfc"
    assert page.locator("#p-site").get_attribute("maxlength") == "40"
    page.goto(f"{live.url}/preview/minimal")
    page.wait_for_selector("body[data-state=ready]", timeout=WAIT_MS)
    size = page.locator("#p-size")
    assert (size.get_attribute("type"), size.get_attribute("min"), size.get_attribute("max")) == (
        "number",
        "32",
        "120",
    )
    assert size.input_value() == "84"


FLAGS = """{#ogshot
[params.big]
type = "bool"
example = true
[params.ratio]
type = "float"
min = 0.5
max = 2.0
default = 1.0
[params.link]
type = "url"
example = "https://example.com/post"
#}
<h1 style="font-size: {{ 120 if big else 40 }}px">{{ link }} {{ ratio }}</h1>
"""


def test_bool_float_and_url_params_get_their_controls(page: Page, live: Live) -> None:
    (live.templates / "flags.html").write_text(FLAGS)
    open_studio(page, live, "flags")
    big = page.locator("#p-big")
    assert big.get_attribute("type") == "checkbox" and big.is_checked()
    assert page.locator("#p-ratio").get_attribute("step") == "any"
    assert page.locator("#p-link").get_attribute("type") == "url"
    assert "big=true" in page.locator("#og-url").input_value()
    etag = current_etag(page)
    page.click('.field[data-param="big"] label.switch')
    wait_for_new_image(page, etag)
    assert not big.is_checked()
    assert "big=" not in page.locator("#og-url").input_value()  # off is the default


def test_typing_a_title_renders_it_and_updates_the_meta_tags(page: Page, live: Live) -> None:
    open_studio(page, live, "article")
    before, etag = shown_image(page), current_etag(page)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/_render/" in r.url else None)
    new_title = "Typed in the studio, live"
    page.locator("#p-title").fill("")
    page.locator("#p-title").press_sequentially(new_title, delay=10)
    wait_for_new_image(page, etag)
    page.wait_for_function(
        "(t) => document.getElementById('og-url').value.includes(t)", arg=quote(new_title)
    )
    after = shown_image(page)
    assert mean_difference(before, after) > 1.0
    meta = page.locator("#meta-tags").inner_text()
    assert f'<meta property="og:image:alt" content="{new_title}">' in meta
    assert f'<meta property="og:title" content="{new_title}">' in meta
    assert '<meta name="twitter:card" content="summary_large_image">' in meta
    assert '<meta property="og:image:width" content="1200">' in meta
    assert '<meta property="og:image:height" content="630">' in meta
    og_url = page.locator("#og-url").input_value()
    assert og_url.startswith(f"{live.url}/og/article.png?")
    assert f"title={quote(new_title)}" in og_url.split("?")[1].split("&")
    assert f'<meta property="og:image" content="{og_url.replace("&", "&amp;")}">' in meta
    assert f'<meta name="twitter:image" content="{og_url.replace("&", "&amp;")}">' in meta
    # The studio shows exactly what /og serves for that URL.
    assert og_bytes(live, og_url[len(live.url) :]) == after
    assert 0 < len(requests) < len(new_title)  # debounced: not one render per keystroke
    stats = page.locator("#stats").inner_text()
    assert "KB" in stats and ("cache hit" in stats or "cache miss" in stats)
    assert "ms" in page.locator("#stat-time").inner_text()


def test_debounce_sends_one_request_for_a_burst_of_input(page: Page, live: Live) -> None:
    open_studio(page, live, "minimal")
    etag = current_etag(page)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/_render/" in r.url else None)
    page.evaluate(
        """() => {
            const input = document.getElementById("p-title");
            for (const text of ["B", "Bu", "Bur", "Burs", "Burst"]) {
                input.value = text;
                input.dispatchEvent(new Event("input", { bubbles: true }));
            }
        }"""
    )
    wait_for_new_image(page, etag)
    assert requests == [f"{live.url}/preview/_render/minimal.png?title=Burst"]


def test_a_stale_response_never_replaces_a_newer_one(page: Page, live: Live) -> None:
    """A slow render (a cache miss) started first must not land over a fast one (a hit)."""
    open_studio(page, live, "minimal")
    fast = og_bytes(live, "/og/minimal.png?title=Fast%20one")  # now in the cache
    etag = current_etag(page)
    page.evaluate(
        """async () => {
            const input = document.getElementById("p-title");
            const set = (text) => {
                input.value = text;
                input.dispatchEvent(new Event("change", { bubbles: true }));
            };
            set("Slow one, never rendered before");
            await new Promise((resolve) => setTimeout(resolve, 30));  // its request is out
            set("Fast one");
        }"""
    )
    wait_for_new_image(page, etag)
    # Wait until the slow render has finished on the server (its image is then in the cache).
    slow = "/preview/_render/minimal.png?title=" + quote("Slow one, never rendered before")
    deadline = time.monotonic() + 30
    while httpx.get(live.url + slow).headers.get("x-ogshot-cache") != "hit":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    page.wait_for_timeout(200)
    assert shown_image(page) == fast
    assert page.locator("#p-title").input_value() == "Fast one"


def test_format_switch(page: Page, live: Live) -> None:
    open_studio(page, live, "minimal")
    for label, ext, content_type in (("JPEG", "jpg", "image/jpeg"), ("WebP", "webp", "image/webp")):
        etag = current_etag(page)
        page.click(f"#format button:has-text('{label}')")
        wait_for_new_image(page, etag)
        assert (
            page.locator(f"#format button:has-text('{label}')").get_attribute("aria-pressed")
            == "true"
        )
        assert f"/og/minimal.{ext}?" in page.locator("#og-url").input_value()
        assert f'content="{content_type}"' in page.locator("#meta-tags").inner_text()
        magic = {"jpg": b"\xff\xd8\xff", "webp": b"RIFF"}[ext]
        assert shown_image(page).startswith(magic)
        assert label in page.locator("#stat-size").inner_text()


def test_share_mocks_follow_the_fields_and_show_each_crop(page: Page, live: Live) -> None:
    open_studio(page, live, "article")
    boxes = {
        platform: page.locator(f'[data-platform="{platform}"] .mock-img').bounding_box()
        for platform in ("x", "facebook", "linkedin", "slack", "discord")
    }
    ratios = {k: b["width"] / b["height"] for k, b in boxes.items() if b}
    assert len(ratios) == 5
    assert abs(ratios["x"] - 2.0) < 0.03
    assert abs(ratios["facebook"] - 1.91) < 0.03
    assert abs(ratios["linkedin"] - 1.91) < 0.03
    assert abs(ratios["discord"] - 1200 / 630) < 0.03  # shown whole
    assert "15 px off top and bottom" in page.locator('[data-platform="x"] h3').inner_text()
    page.fill("#share-title", "What the crawler sees")
    page.fill("#share-description", "A description for the card")
    page.fill("#share-site", "Example Blog")
    page.fill("#share-domain", "blog.example.org")
    assert page.locator(".fb-title").inner_text() == "What the crawler sees"
    assert page.locator(".fb-domain").inner_text() == "BLOG.EXAMPLE.ORG"
    assert page.locator(".discord-site").inner_text() == "Example Blog"
    assert page.locator(".slack-desc").inner_text() == "A description for the card"
    assert page.locator(".x-from").inner_text() == "From blog.example.org"
    meta = page.locator("#meta-tags").inner_text()
    assert '<meta property="og:title" content="What the crawler sees">' in meta
    assert '<meta property="og:site_name" content="Example Blog">' in meta
    assert page.locator("#crop-guide").is_hidden()
    page.click("label.switch:has(#show-crop)")
    band = page.locator("#crop-guide .crop-band.top").bounding_box()
    canvas = page.locator("#canvas").bounding_box()
    assert band and canvas
    assert abs(band["height"] / canvas["height"] - 15 / 630) < 0.005


# -- live reload -------------------------------------------------------------------------------


def test_editing_the_template_file_updates_the_image_without_a_reload(
    page: Page, live: Live
) -> None:
    open_studio(page, live, "minimal")
    page.evaluate("() => { window.notReloaded = true; }")
    etag = current_etag(page)
    r, g, b = pixel(shown_image(page), 10, 10)
    assert r < 40 and g < 40 and b < 40  # the example background, #111111
    started = time.monotonic()
    with edited(
        live.templates / "minimal.html", "background: {{ background }};", "background: #00ff00;"
    ):
        wait_for_new_image(page, etag)
        print(f"template edit -> new image on the page: {time.monotonic() - started:.2f} s")
        r, g, b = pixel(shown_image(page), 10, 10)
        assert r < 30 and g > 225 and b < 30
        assert page.evaluate("() => window.notReloaded") is True
        etag = current_etag(page)
    wait_for_new_image(page, etag)  # and back when the file is restored
    assert pixel(shown_image(page), 10, 10)[1] < 40


def test_editing_a_static_file_updates_the_image(page: Page, live: Live) -> None:
    open_studio(page, live, "minimal")
    page.evaluate("() => { window.notReloaded = true; }")
    etag = current_etag(page)
    css = live.static / "css" / "base.css"
    marker = "\nbody::after { content: ''; position: fixed; left: 0; top: 0; width: 80px;"
    marker += " height: 80px; background: #ff00ff; }\n"
    with edited(
        css, ".clamp-3 { -webkit-line-clamp: 3; }", ".clamp-3 { -webkit-line-clamp: 3; }" + marker
    ):
        wait_for_new_image(page, etag)
        r, g, b = pixel(shown_image(page), 10, 10)
        assert r > 225 and g < 30 and b > 225
        assert page.evaluate("() => window.notReloaded") is True
        assert "static/css/base.css" in page.locator("#toast").inner_text()
        etag = current_etag(page)
    wait_for_new_image(page, etag)


def test_a_broken_template_shows_the_overlay_and_the_page_recovers(page: Page, live: Live) -> None:
    open_studio(page, live, "minimal")
    page.evaluate("() => { window.notReloaded = true; }")
    overlay = page.locator("#error-overlay")
    assert overlay.is_hidden()
    path = live.templates / "minimal.html"
    source = path.read_text()
    body_line = source.splitlines().index(next(x for x in source.splitlines() if "block body" in x))
    # A syntax error ...
    with edited(path, "{% block body %}", "{% block body %}{% endfor %}"):
        page.wait_for_selector("#error-overlay:not([hidden])", timeout=WAIT_MS)
        assert page.locator("#error-kind").inner_text().lower() == "template error"
        assert "endfor" in page.locator("#error-message").inner_text()
        assert page.locator("#error-where").inner_text() == f"minimal.html · line {body_line + 1}"
        assert "{% endfor %}" in page.locator("#error-excerpt .row.hit").inner_text()
    page.wait_for_selector("#error-overlay", state="hidden", timeout=WAIT_MS)
    page.wait_for_selector("body[data-state=ready]", timeout=WAIT_MS)
    # ... and an undefined variable.
    with edited(path, "{{ title }}</h1>", "{{ title }}{{ no_such_variable }}</h1>"):
        page.wait_for_selector("#error-overlay:not([hidden])", timeout=WAIT_MS)
        assert "no_such_variable" in page.locator("#error-message").inner_text()
        assert f"line {body_line + 1}" in page.locator("#error-where").inner_text()
    page.wait_for_selector("#error-overlay", state="hidden", timeout=WAIT_MS)
    page.wait_for_selector("body[data-state=ready]", timeout=WAIT_MS)
    assert page.evaluate("() => window.notReloaded") is True
    r, g, b = pixel(shown_image(page), 10, 10)
    assert r < 40 and g < 40 and b < 40


def test_a_word_that_is_no_colour_marks_the_colour_field(page: Page, live: Live) -> None:
    open_studio(page, live, "minimal")
    page.fill("#p-background", "notacolour")
    page.wait_for_selector('.field[data-param="background"].invalid', timeout=WAIT_MS)
    assert "CSS colour" in page.locator('.field[data-param="background"] .field-error').inner_text()
    assert page.locator("#error-overlay").is_hidden()
    etag = current_etag(page)
    page.fill("#p-background", "rgb(255 0 0)")
    wait_for_new_image(page, etag)
    assert page.locator(".field.invalid").count() == 0


def test_a_render_timeout_shows_the_overlay_and_the_page_recovers(page: Page, live: Live) -> None:
    open_studio(page, live, "minimal")
    path = live.templates / "minimal.html"
    never = "{% block body %}<script>window.ogshotReady = new Promise(() => {});</script>"
    with edited(path, "{% block body %}", never):
        page.wait_for_selector("#error-overlay:not([hidden])", timeout=WAIT_MS)
        assert page.locator("#error-kind").inner_text().lower() == "render timeout"
        assert "4 s" in page.locator("#error-message").inner_text()
        assert "ogshotReady" in page.locator("#error-hint").inner_text()
    page.wait_for_selector("#error-overlay", state="hidden", timeout=WAIT_MS)
    page.wait_for_selector("body[data-state=ready]", timeout=WAIT_MS)


def test_a_bad_value_marks_its_field_not_the_whole_page(page: Page, live: Live) -> None:
    open_studio(page, live, "minimal")
    page.fill("#p-size", "500")
    page.wait_for_selector('.field[data-param="size"].invalid', timeout=WAIT_MS)
    assert "120" in page.locator('.field[data-param="size"] .field-error').inner_text()
    assert page.locator("#error-overlay").is_hidden()
    etag = current_etag(page)
    page.fill("#p-size", "100")
    wait_for_new_image(page, etag)
    assert page.locator(".field.invalid").count() == 0
    etag = current_etag(page)
    page.fill("#p-size", "")  # an emptied number field means the declared default
    wait_for_new_image(page, etag)
    assert page.locator(".field.invalid").count() == 0
    assert "size=" not in page.locator("#og-url").input_value()


BRANDED = """{#ogshot
[params.title]
type = "str"
default = "Branded"
[params.brand]
type = "color"
default = "#ff5500"
#}
<body style="margin:0;background:{{ brand }}"><h1>{{ title }}</h1></body>
"""


def test_og_site_name_comes_from_a_site_parameter_or_the_setting_never_another(
    page: Page, live: Live
) -> None:
    # ``brand`` is a colour here: og:site_name is OGSHOT_SITE_NAME, not "#ff5500".
    (live.templates / "branded.html").write_text(BRANDED)
    open_studio(page, live, "branded")
    page.wait_for_function("() => document.getElementById('meta-tags').textContent.length > 0")
    meta = page.locator("#meta-tags").inner_text()
    assert '<meta property="og:site_name" content="Example Site">' in meta
    assert "#ff5500" not in meta
    assert page.locator(".discord-site").inner_text() == "Example Site"
    # A template with a site parameter names its own site.
    open_studio(page, live, "article")
    page.wait_for_function(
        "() => document.getElementById('meta-tags').textContent.includes('og:site_name')"
    )
    meta = page.locator("#meta-tags").inner_text()
    assert '<meta property="og:site_name" content="ogshot">' in meta


def test_a_refused_stylesheet_shows_with_the_line_that_asks_for_it(page: Page, live: Live) -> None:
    (live.templates / "cdn-linked.html").write_text(
        '<!doctype html><html><head>\n<link rel="stylesheet" href="https://cdn.example/x.css">\n'
        "</head><body><h1>{{ title }}</h1></body></html>"
    )
    open_studio(page, live, "cdn-linked")
    page.wait_for_function(
        "() => (document.getElementById('stat-warning') || {}).textContent?.includes('cdn.example')"
    )
    shown = page.locator("#stat-warning").inner_text()
    assert "https://cdn.example/x.css (cdn-linked.html line 2)" in shown


def test_an_undeclared_template_takes_key_value_lines(page: Page, live: Live) -> None:
    (live.templates / "free.html").write_text(
        '<body style="margin:0;background:{{ bg }}"><h1>{{ title }}</h1></body>'
    )
    open_studio(page, live, "free")
    etag = current_etag(page)
    page.fill("#p-__free", "title=Free form\nbg=#0000ff")
    wait_for_new_image(page, etag)
    path, _, query = page.locator("#og-url").input_value().partition("?")
    assert path.endswith("/og/free.png")
    # The embed code's URL is versioned (tests/test_freshness.py): immutable, and a redesign
    # makes a new one.
    version = httpx.get(f"{live.url}/preview/_api/templates/free").json()["version"]
    assert sorted(query.split("&")) == ["bg=%230000ff", "title=Free%20form", f"v={version}"]
    r, g, b = pixel(shown_image(page), 600, 600)
    assert r < 30 and g < 30 and b > 225
    assert page.locator("#share-title").input_value() == "Free form"


# -- the event stream, over plain HTTP ---------------------------------------------------------


def _events(response: httpx.Response) -> Iterator[tuple[str, str, dict[str, object]]]:
    name = event_id = ""
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            yield name, event_id, json.loads(line[6:])


def test_event_stream_reports_saved_files_and_catches_up_after_a_reconnect(live: Live) -> None:
    url = f"{live.url}/preview/_events"
    with httpx.stream("GET", url, timeout=20) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _events(response)
        name, hello_id, _data = next(events)
        assert name == "hello"
        (live.templates / "minimal.html").write_text((live.templates / "minimal.html").read_text())
        name, change_id, data = next(events)
        assert name == "change"
        assert data["files"] == ["html_templates/minimal.html"]
    # A client that last saw the hello reconnects: it is told at once that it missed a change.
    with httpx.stream("GET", url, headers={"last-event-id": hello_id}, timeout=20) as response:
        events = _events(response)
        assert next(events)[0] == "hello"
        name, event_id, _data = next(events)
        assert (name, event_id) == ("change", change_id)


# -- the studio's state in its URL -------------------------------------------------------------


def test_typed_values_and_the_format_survive_a_reload(page: Page, live: Live) -> None:
    open_studio(page, live, "article")
    etag = current_etag(page)
    page.fill("#p-title", "Kept across a reload & shared")
    page.fill("#p-subtitle", "")  # emptied: differs from the example the form starts with
    page.select_option("#p-theme", "light")
    page.click("#format button:has-text('WebP')")
    wait_for_new_image(page, etag)
    page.wait_for_function("() => location.search.includes('webp')", timeout=WAIT_MS)
    query = parse_qs(urlsplit(page.url).query, keep_blank_values=True)
    assert query == {
        "title": ["Kept across a reload & shared"],
        "subtitle": [""],
        "theme": ["light"],
        ".format": ["webp"],
    }
    page.reload()
    page.wait_for_selector("body[data-state=ready]", timeout=WAIT_MS)
    assert page.locator("#p-title").input_value() == "Kept across a reload & shared"
    assert page.locator("#p-subtitle").input_value() == ""
    assert page.locator("#p-theme").input_value() == "light"
    assert page.locator("#p-author").input_value() == "Ada Lovelace"  # untouched: the example
    assert page.locator("#format button[aria-pressed=true]").inner_text() == "WebP"
    assert shown_image(page).startswith(b"RIFF")
    assert (
        "title=Kept%20across%20a%20reload%20%26%20shared" in page.locator("#og-url").input_value()
    )


def test_a_shared_link_fills_the_form_and_the_image(browser: Browser, live: Live) -> None:
    """A link opened in another browser (no localStorage): the form and the image follow it;
    a name the template does not declare is dropped."""
    context = browser.new_context(viewport={"width": 1500, "height": 950})
    try:
        page = context.new_page()
        page.goto(
            f"{live.url}/preview/minimal?title=From%20a%20link&background=%2300ff00"
            "&gone=1&.format=jpg"
        )
        page.wait_for_selector("body[data-state=ready]", timeout=WAIT_MS)
        assert page.locator("#p-title").input_value() == "From a link"
        assert page.locator("#p-background").input_value() == "#00ff00"
        assert page.locator("#format button[aria-pressed=true]").inner_text() == "JPEG"
        image = shown_image(page)
        assert image.startswith(b"\xff\xd8\xff")
        r, g, b = pixel(image, 10, 10)
        assert r < 30 and g > 225 and b < 30
        assert page.locator(".field.invalid").count() == 0  # "gone" never reached the server
        assert "gone" not in page.url  # and is not written back
    finally:
        context.close()


# -- the X crop switch, the HTML view ----------------------------------------------------------


def test_the_crop_switch_is_a_labelled_checkbox_for_mouse_and_keyboard(
    page: Page, live: Live
) -> None:
    open_studio(page, live, "minimal")
    switch = page.get_by_role("switch", name="Show X crop")
    assert switch.is_visible() and switch.is_enabled()
    guide = page.locator("#crop-guide")
    assert guide.is_hidden()
    page.get_by_text("Show X crop").click()  # the label's text, not the box
    assert switch.is_checked() and guide.is_visible()
    page.get_by_text("Show X crop").click()
    assert not switch.is_checked() and guide.is_hidden()
    # Keyboard: Tab from the last field reaches the switch; Space toggles it.
    page.locator("#p-size").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "show-crop"
    page.keyboard.press("Space")
    assert switch.is_checked() and guide.is_visible()
    band = page.locator("#crop-guide .crop-band.bottom").bounding_box()
    assert band is not None and band["height"] > 0
    page.keyboard.press("Space")
    assert guide.is_hidden()


def test_open_as_html_shows_the_document_with_its_static_files(page: Page, live: Live) -> None:
    open_studio(page, live, "article")
    page.fill("#p-title", "Debug <me> in devtools")
    page.wait_for_function(
        "() => document.getElementById('open-html').href.includes('Debug')", timeout=WAIT_MS
    )
    with page.context.expect_page() as opened:
        page.click("#open-html")
    doc = opened.value
    doc.wait_for_load_state("load")
    assert doc.url.startswith(f"{live.url}/preview/_html/article?")
    assert doc.locator("h1").inner_text() == "Debug <me> in devtools"
    # /static works from the designer's browser: base.css and the logo loaded.
    assert doc.evaluate("() => document.styleSheets[0].cssRules.length") > 0
    assert doc.eval_on_selector('img[src="/static/img/logo.svg"]', "i => i.naturalWidth") > 0
    doc.close()


def test_an_undeclared_template_keeps_its_lines_in_the_url(page: Page, live: Live) -> None:
    (live.templates / "free-url.html").write_text(
        '<body style="margin:0;background:{{ bg }}"><h1>{{ title }}</h1></body>'
    )
    page.goto(f"{live.url}/preview/free-url?title=Linked&bg=%23ff0000")
    page.wait_for_selector("body[data-state=ready]", timeout=WAIT_MS)
    assert page.locator("#p-__free").input_value() == "title=Linked\nbg=#ff0000"
    r, g, b = pixel(shown_image(page), 600, 600)
    assert r > 225 and g < 30 and b < 30
    etag = current_etag(page)
    page.fill("#p-__free", "title=Edited\nbg=#0000ff")
    wait_for_new_image(page, etag)
    page.reload()
    page.wait_for_selector("body[data-state=ready]", timeout=WAIT_MS)
    assert page.locator("#p-__free").input_value() == "title=Edited\nbg=#0000ff"
