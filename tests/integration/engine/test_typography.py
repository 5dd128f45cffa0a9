"""Missing glyphs, failed images and template sizes, with real Chromium, fontconfig, pyvips and
diskcache: the warning header, the counter, strict mode's 422, and images of declared sizes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from ogshot.app import create_app
from ogshot.cache.disk import cache_key
from ogshot.core.errors import TemplateError
from ogshot.core.settings import Settings
from ogshot.engine.capture import capture
from ogshot.pipeline.warnings import Coverage, Warnings, ignorable, parse_charset
from ogshot.templates.declarations import DEFAULT_SIZE, Size, parse_declaration
from tests.support.helpers import image_of, pixel, renders

TOFU = "\U000f0000"  # Supplementary Private Use Area-A: no installed font has it
TOFU_2 = "\U0010fffd"

# A red square in the bottom-right corner of the viewport: where it lands proves the page's size.
CORNER = (
    '<div style="position:fixed;right:0;bottom:0;width:12px;height:12px;background:#f00"></div>'
)
CARD = f"""{{#ogshot
[params.title]
type = "str"
#}}
<!doctype html><html><body style="margin:0;background:#fff;font:40px Inter">
<h1>{{{{ title }}}}</h1>{CORNER}</body></html>
"""
PICTURES = """<!doctype html><html><body style="margin:0">
<img src="/static/img/nope.png" alt="">
<img src="https://example.com/remote.png" alt="">
<img src="/static/img/ok.svg" alt="">
</body></html>
"""
NOT_AN_IMAGE = """<!doctype html><html><body><img src="/static/img/text.png" alt=""></body></html>
"""
PHOTO = """{#ogshot
[params.photo]
type = "str"
#}
<!doctype html><html><body><img src="{{ photo }}" alt=""></body></html>
"""


def sized(width: int | None, height: int | None, scale: float | None = None) -> str:
    lines = [f"width = {width}" if width else "", f"height = {height}" if height else ""]
    if scale is not None:
        lines.append(f"scale = {scale}")
    head = "\n".join(line for line in lines if line)
    return CARD.replace("{#ogshot\n", f"{{#ogshot\n{head}\n", 1)


TEMPLATES = {
    "card": CARD,
    "pictures": PICTURES,
    "not-an-image": NOT_AN_IMAGE,
    "photo": PHOTO,
    "square": sized(1080, 1080),
    "wide": sized(1600, 900),
    "sharp": sized(None, None, 2),
    "broken-square": sized(1080, 1080).replace("{{ title }}", "{{ nowhere }}"),
    # Scripts: the page navigates to a fresh document, which must keep the size.
    "scripted-square": sized(1080, 1080).replace("</body>", "<script>window.x = 1</script></body>"),
}


def folders(base: Path) -> tuple[Path, Path]:
    templates, static = base / "templates", base / "static"
    (static / "img").mkdir(parents=True, exist_ok=True)
    templates.mkdir(exist_ok=True)
    for name, source in TEMPLATES.items():
        (templates / f"{name}.html").write_text(source)
    (static / "img" / "ok.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" '
        'height="10" fill="#00f"/></svg>'
    )
    (static / "img" / "text.png").write_text("this is not a PNG")
    return templates, static


def app_settings(base: Path, **overrides: object) -> Settings:
    templates, static = folders(base)
    values: dict[str, object] = {
        "templates_dir": templates,
        "static_dir": static,
        "cache_dir": base / "cache",
        "pool_size": 1,  # one page: sizes alternate on the same page
        "render_timeout": 10.0,
        "dev": True,
    }
    values.update(overrides)
    return Settings.load(environ={}, **values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    base = tmp_path_factory.mktemp("typography")
    with TestClient(create_app(app_settings(base))) as client:
        yield client


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    base = tmp_path_factory.mktemp("strict")
    # Two pages: also where a render should find a page that already has its size.
    with TestClient(create_app(app_settings(base, strict=True, pool_size=2))) as client:
        yield client


def warnings_counted(client: TestClient, template: str, kind: str) -> float:
    text = client.get("/metrics").text
    pattern = rf'^ogshot_render_warnings_total\{{kind="{kind}",template="{template}"\}} (\S+)$'
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


# -- missing glyphs ---------------------------------------------------------------------------


def test_a_character_no_font_has_is_a_warning_header_a_log_line_and_a_counter(
    app: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    before = warnings_counted(app, "card", "missing_glyphs")
    with caplog.at_level("WARNING", logger="ogshot"):
        response = app.get("/og/card.png", params={"title": f"Hello {TOFU} and {TOFU_2}"})
    assert response.status_code == 200
    assert response.headers["x-ogshot-cache"] == "miss"
    assert response.headers["x-ogshot-warning"] == "missing-glyphs U+F0000 U+10FFFD"
    assert warnings_counted(app, "card", "missing_glyphs") == before + 1
    logged = [r.getMessage() for r in caplog.records if "U+F0000" in r.getMessage()]
    assert logged and "'card'" in logged[0] and "U+10FFFD" in logged[0]
    # Not strict: the image is cached, and a hit still says what it lacks.
    again = app.get("/og/card.png", params={"title": f"Hello {TOFU} and {TOFU_2}"})
    assert again.headers["x-ogshot-cache"] == "hit"
    assert again.headers["x-ogshot-warning"] == "missing-glyphs U+F0000 U+10FFFD"
    assert warnings_counted(app, "card", "missing_glyphs") == before + 1  # counted per render


@pytest.mark.parametrize(
    "text",
    [
        "👩🏽‍💻 👋🏿 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️ 1️⃣",  # ZWJ sequences, skin tones, variation selectors
        "日本語のテキスト 中文 한국어",
        "مرحبا بالعالم",
        "नमस्ते दुनिया",
        "Ünïcödé — “quotes” … €",
    ],
    ids=["emoji", "cjk", "arabic", "devanagari", "latin"],
)
def test_scripts_with_fonts_installed_give_no_warning(app: TestClient, text: str) -> None:
    response = app.get("/og/card.png", params={"title": text})
    assert response.status_code == 200
    assert response.headers["x-ogshot-cache"] == "miss"
    assert "x-ogshot-warning" not in response.headers


def test_hidden_text_and_styles_are_not_checked(app: TestClient, tmp_path: Path) -> None:
    templates = app.app.state.renderer.settings.templates_dir  # type: ignore[attr-defined]
    (templates / "hidden.html").write_text(
        f"<style>/* {TOFU} */</style><p style='display:none'>{TOFU}</p><p>visible</p>"
    )
    response = app.get("/og/hidden.png")
    assert response.status_code == 200
    assert "x-ogshot-warning" not in response.headers
    (templates / "shown.html").write_text(f"<p>{TOFU}</p>")
    assert app.get("/og/shown.png").headers["x-ogshot-warning"] == "missing-glyphs U+F0000"


def test_the_studio_puts_the_warning_on_the_field_that_holds_the_character(
    app: TestClient,
) -> None:
    response = app.get("/preview/_render/card.png", params={"title": f"x{TOFU}y"})
    assert response.status_code == 200
    assert response.headers["x-ogshot-warning"] == "missing-glyphs U+F0000"
    warnings = json.loads(response.headers["x-ogshot-warnings"])
    assert warnings["parameters"] == {"title": ["U+F0000"]}
    assert warnings["missing_glyphs"] == ["U+F0000"]


def test_warnings_survive_in_the_disk_cache_for_another_process(tmp_path: Path) -> None:
    settings = app_settings(tmp_path)
    with TestClient(create_app(settings)) as first:
        made = first.get("/og/card.png", params={"title": f"a{TOFU}"})
        assert made.headers["x-ogshot-cache"] == "miss"
    with TestClient(create_app(settings)) as second:
        hit = second.get("/og/card.png", params={"title": f"a{TOFU}"})
        assert hit.headers["x-ogshot-cache"] == "hit"
        assert hit.headers["x-ogshot-warning"] == "missing-glyphs U+F0000"
        clean = second.get("/og/card.png", params={"title": "plain"})
        assert "x-ogshot-warning" not in clean.headers


# -- failed images ----------------------------------------------------------------------------


def test_a_missing_static_image_and_a_refused_url_are_warnings(app: TestClient) -> None:
    before = warnings_counted(app, "pictures", "failed_images")
    response = app.get("/og/pictures.png")
    assert response.status_code == 200
    header = response.headers["x-ogshot-warning"]
    assert header.startswith("failed-images ")
    assert "/static/img/nope.png" in header
    assert "https://example.com/remote.png" in header
    assert "ok.svg" not in header  # the image that loaded
    assert warnings_counted(app, "pictures", "failed_images") == before + 1


def test_an_image_that_does_not_decode_is_a_warning(app: TestClient) -> None:
    response = app.get("/og/not-an-image.png")
    assert response.status_code == 200
    assert response.headers["x-ogshot-warning"] == "failed-images /static/img/text.png"


def test_failed_images_of_one_render_are_not_reported_by_the_next(app: TestClient) -> None:
    assert "x-ogshot-warning" in app.get("/og/pictures.png", params={"v": "1"}).headers
    assert "x-ogshot-warning" not in app.get("/og/card.png", params={"title": "next"}).headers


# -- strict -----------------------------------------------------------------------------------


def test_strict_mode_answers_422_with_the_reason_and_caches_nothing(strict: TestClient) -> None:
    params = {"title": f"Hi {TOFU}"}
    first = strict.get("/og/card.png", params=params)
    assert first.status_code == 422
    assert first.headers["content-type"].startswith("application/json")
    assert first.headers["cache-control"] == "no-store"
    body = first.json()
    assert "U+F0000" in body["error"] and "card" in body["error"]
    assert body["detail"]["missing_glyphs"] == ["U+F0000"]
    assert body["detail"]["parameter"] == "title"
    rendered = renders(strict)
    second = strict.get("/og/card.png", params=params)
    assert second.status_code == 422
    assert renders(strict) == rendered + 1  # rendered again: nothing was cached
    assert strict.get("/og/card.png", params={"title": "fine"}).status_code == 200


def test_strict_mode_refuses_a_missing_image_and_the_studio_names_the_field(
    strict: TestClient,
) -> None:
    response = strict.get("/og/photo.png", params={"photo": "/static/img/gone.png"})
    assert response.status_code == 422
    assert response.json()["detail"]["failed_images"] == [
        "http://ogshot.invalid/static/img/gone.png"
    ]
    studio = strict.get("/preview/_render/card.png", params={"title": f"a{TOFU}"})
    assert studio.status_code == 422
    detail = studio.json()["detail"]
    assert detail["kind"] == "unrenderable" and detail["parameter"] == "title"


# -- sizes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "pixels"),
    [
        ("square", (1080, 1080)),
        ("wide", (1600, 900)),
        ("sharp", (2400, 1260)),
        ("card", (1200, 630)),
    ],
)
def test_a_template_declares_its_size(
    app: TestClient, template: str, pixels: tuple[int, int]
) -> None:
    response = app.get(f"/og/{template}.png", params={"title": "Size"})
    assert response.status_code == 200
    image = image_of(response.content)
    assert (image.width, image.height) == pixels
    # The viewport itself has that size: the corner square sits in the image's corner.
    width, height = pixels
    assert pixel(response.content, width - 2, height - 2) == [255.0, 0.0, 0.0]


def test_one_page_alternating_between_sizes_gets_each_right(app: TestClient) -> None:
    expected = {
        "square": (1080, 1080),
        "scripted-square": (1080, 1080),
        "card": (1200, 630),
        "sharp": (2400, 1260),
    }
    for round_ in range(2):
        for template in ("square", "card", "sharp", "scripted-square", "card", "wide", "square"):
            response = app.get(f"/og/{template}.png", params={"title": f"round {round_}"})
            image = image_of(response.content)
            want = expected.get(template, (1600, 900))
            assert (image.width, image.height) == want, template
            assert pixel(response.content, want[0] - 2, want[1] - 2) == [255.0, 0.0, 0.0]


def test_a_render_gets_an_idle_page_that_already_has_its_size(strict: TestClient) -> None:
    for template in ("card", "square"):  # now one page has each size
        strict.get(f"/og/{template}.png", params={"title": "warm"})
    resized = []
    # Not a strict alternation, which taking the longest-idle page would get right by chance.
    for i, template in enumerate(["card", "card", "square", "square", "card", "square", "card"]):
        response = strict.get(f"/og/{template}.png", params={"title": f"affinity {i}"})
        assert response.headers["x-ogshot-cache"] == "miss"
        resized.append("resize;" in response.headers["server-timing"])
    assert resized == [False] * 7


def test_a_capture_that_names_no_size_gets_the_settings_size_back(app: TestClient) -> None:
    assert image_of(app.get("/og/square.png", params={"title": "first"}).content).width == 1080
    renderer = app.app.state.renderer  # type: ignore[attr-defined]

    async def bare_capture() -> bytes:
        async with renderer.pool.lease() as slot:  # the one page, now at 1080x1080
            assert slot.document.size == Size(1080, 1080)
            shot = await capture(slot, "<p>no size given</p>", time_limit=10)
            return shot.png

    image = image_of(app.portal.call(bare_capture))  # type: ignore[union-attr]
    assert (image.width, image.height) == (1200, 630)


def test_scale_2_draws_twice_the_pixels_of_the_same_layout(app: TestClient) -> None:
    one = image_of(app.get("/og/card.png", params={"title": "Sharp"}).content)
    two = image_of(app.get("/og/sharp.png", params={"title": "Sharp"}).content)
    assert (two.width, two.height) == (one.width * 2, one.height * 2)
    # The same text, four times the ink: the layout is the same, drawn at twice the density.
    ink_one = (255 - one[:3].avg()) * one.width * one.height
    ink_two = (255 - two[:3].avg()) * two.width * two.height
    assert 3.0 < ink_two / ink_one < 5.0


def test_the_device_scale_factor_setting_scales_what_openapi_promises(tmp_path: Path) -> None:
    settings = app_settings(tmp_path, device_scale_factor=2.0)
    with TestClient(create_app(settings)) as client:
        promised = client.get("/openapi.json").json()["paths"]["/og/card.{format}"]["get"]
        assert promised["x-ogshot-size"]["pixels"] == {"width": 2400, "height": 1260}
        card = client.get("/og/card.png", params={"title": "Sharp"}).content
        image = image_of(card)
        assert (image.width, image.height) == (2400, 1260)
        # The 12 px corner square is 24 device pixels: the layout is drawn at twice the density.
        assert pixel(card, 2399, 1259) == [255, 0, 0]
        assert pixel(card, 2400 - 23, 1260 - 23) == [255, 0, 0]
        assert pixel(card, 2400 - 25, 1260 - 25) == [255, 255, 255]
        # A template that declares its size but no scale takes the setting's scale.
        square = image_of(client.get("/og/square.png", params={"title": "x"}).content)
        assert (square.width, square.height) == (2160, 2160)


def test_the_size_is_in_the_cache_key() -> None:
    settings = Settings.load(environ={})
    keys = {
        cache_key(template_digest="d", params="{}", fmt="png", settings=settings, size=str(size))
        for size in (Size(1200, 630), Size(1080, 1080), Size(1200, 630, 2.0))
    }
    assert len(keys) == 3


def test_openapi_and_the_studio_describe_each_templates_size(app: TestClient) -> None:
    spec = app.get("/openapi.json").json()
    square = spec["paths"]["/og/square.{format}"]["get"]
    assert square["x-ogshot-size"] == {
        "width": 1080,
        "height": 1080,
        "scale": 1.0,
        "pixels": {"width": 1080, "height": 1080},
    }
    assert "1080x1080" in square["description"]
    sharp = spec["paths"]["/og/sharp.{format}"]["get"]
    assert sharp["x-ogshot-size"]["pixels"] == {"width": 2400, "height": 1260}
    assert "X-Ogshot-Warning" in square["responses"]["200"]["headers"]
    described = app.get("/preview/_api/templates/square").json()
    assert (described["width"], described["height"]) == (1080, 1080)
    assert app.get("/preview/_api/templates/sharp").json()["width"] == 2400


def test_the_fallback_image_has_the_templates_size(app: TestClient) -> None:
    response = app.get("/og/broken-square.png", params={"title": "x"})
    assert response.status_code == 500
    image = image_of(response.content)
    assert (image.width, image.height) == (1080, 1080)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("width = 100", "width must be a whole number of pixels 200..4096"),
        ("height = 5000", "height must be a whole number of pixels 200..4096"),
        ('width = "wide"', "width must be a whole number of pixels 200..4096"),
        ("scale = 4", "scale must be a number 1..3"),
        ("scale = true", "scale must be a number 1..3"),
    ],
)
def test_a_bad_size_is_a_declaration_error_at_its_line(line: str, message: str) -> None:
    source = f'{{#ogshot\ndescription = "x"\n{line}\n#}}\n<p>x</p>'
    with pytest.raises(TemplateError) as caught:
        parse_declaration("t", source, DEFAULT_SIZE)
    assert caught.value.line == 3
    assert caught.value.message == f"t.html line 3: {message}"


def test_a_template_without_a_size_takes_the_settings() -> None:
    source = '{#ogshot\ndescription = "x"\nheight = 600\n#}\n'
    assert parse_declaration("t", source, Size(1000, 500, 1.5))[2] == Size(1000, 600, 1.5)
    assert parse_declaration("t", "<p>none</p>", Size(1000, 500))[2] == Size(1000, 500)


# -- the pieces -------------------------------------------------------------------------------


def test_coverage_from_fontconfig_knows_the_installed_scripts() -> None:
    coverage = Coverage.installed()
    for char in "A\u00e9\u65e5\u0627\u094d\U0001f44b":  # Latin, CJK, Arabic, Devanagari, emoji
        assert coverage.covers(ord(char)), char
    assert coverage.missing([ord(TOFU), ord("A"), 0x200D, 0xFE0F, 0x1F3FD]) == [ord(TOFU)]


def test_charsets_parse_and_ignorable_code_points() -> None:
    assert parse_charset("20-7e a0 100-17f") == [(0x20, 0x7E), (0xA0, 0xA0), (0x100, 0x17F)]
    coverage = Coverage(parse_charset("20-7e a0"))
    assert coverage.covers(0x41) and coverage.covers(0xA0) and not coverage.covers(0xA1)
    assert all(ignorable(c) for c in (0x200D, 0x200C, 0xFE0F, 0xE0067, 0x3000, 0x0A))
    assert not any(ignorable(c) for c in (0x41, 0x094D, 0x1F3FD, 0xE000))


def test_the_warning_header_is_ascii_one_line_and_bounded() -> None:
    many = Warnings(
        missing_glyphs=tuple(range(0xF0000, 0xF0040)),
        failed_images=tuple(f"http://ogshot.invalid/static/ä {i};.png" for i in range(40)),
    )
    header = many.header()
    assert header.isascii() and "\n" not in header and len(header) <= 400
    assert "(+48 more)" in header
    small = Warnings(failed_images=("http://ogshot.invalid/static/a b;c.png",)).header()
    assert small == "failed-images /static/a%20b%3Bc.png"
