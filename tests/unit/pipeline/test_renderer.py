"""``ogshot.Renderer``, the Python API, used directly: no HTTP app in between.

One renderer (one browser) for the module, on an event loop of its own that every test runs on.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

import ogshot
from ogshot.core.errors import BadRequest, InvalidFormat, InvalidParameter, TemplateNotFound
from tests.support.helpers import image_of, make_settings, pixel

T = TypeVar("T")


class Session:
    def __init__(self, runner: asyncio.Runner, renderer: ogshot.Renderer) -> None:
        self.runner = runner
        self.renderer = renderer

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        async def bounded() -> T:
            async with asyncio.timeout(timeout):
                return await coro

        return self.runner.run(bounded())

    @property
    def renders(self) -> int:
        count: int = self.renderer.pool.stats()["renders"]
        return count


@pytest.fixture(scope="module")
def session(module_dir: Path) -> Iterator[Session]:
    renderer = ogshot.Renderer(make_settings(module_dir, pool_size=2))
    with asyncio.Runner() as runner:
        runner.run(renderer.start())
        try:
            yield Session(runner, renderer)
        finally:
            runner.run(renderer.close())


def unique(title: str) -> dict[str, str]:
    return {"title": f"{title} {uuid.uuid4().hex[:8]}", "background": "#ff0000"}


def test_render_returns_an_image_of_the_page(session: Session) -> None:
    settings = session.renderer.settings
    before = session.renders
    body = session.run(session.renderer.render("minimal", unique("Hello"), "png"))
    assert body[:8] == b"\x89PNG\r\n\x1a\n"
    image = image_of(body)
    assert (image.width, image.height) == (settings.width, settings.height) == (1200, 630)
    assert pixel(body, 5, 5) == [255.0, 0.0, 0.0]  # the background parameter reached the page
    assert session.renders == before + 1


@pytest.mark.parametrize(
    ("asked", "format", "content_type", "magic"),
    [
        ("png", "png", "image/png", b"\x89PNG"),
        ("jpg", "jpeg", "image/jpeg", b"\xff\xd8\xff"),
        ("jpeg", "jpeg", "image/jpeg", b"\xff\xd8\xff"),
        ("webp", "webp", "image/webp", b"RIFF"),
    ],
)
def test_formats(
    session: Session, asked: str, format: str, content_type: str, magic: bytes
) -> None:
    image = session.run(session.renderer.image("minimal", unique("Formats"), asked))
    assert image.format == format and image.content_type == content_type
    assert image.body.startswith(magic)
    decoded = image_of(image.body)
    assert (decoded.width, decoded.height) == (1200, 630)
    r, g, b = pixel(image.body, 5, 5)
    assert r > 240 and g < 15 and b < 15  # lossy formats too: still the red background


def test_a_repeat_is_a_cache_hit_with_the_same_etag(session: Session, module_dir: Path) -> None:
    params = unique("Cached")
    first = session.run(session.renderer.image("minimal", params, "png"))
    renders = session.renders
    again = session.run(session.renderer.image("minimal", dict(params), "png"))
    assert not first.cached and again.cached
    assert again.etag == first.etag and again.body == first.body
    assert session.renders == renders  # no render for a hit
    # The disk cache survives the renderer: another one over the same folder, never started (no
    # browser at all), answers the same image.
    cold = ogshot.Renderer(session.renderer.settings)
    try:
        from_disk = session.run(cold.image("minimal", params, "png"), timeout=30)
    finally:
        cold.cache.close()
    assert from_disk.cached and from_disk.etag == first.etag and from_disk.body == first.body
    # Another format is another image.
    other = session.run(session.renderer.image("minimal", params, "webp"))
    assert not other.cached and other.etag != first.etag


@pytest.mark.parametrize(
    ("template", "params", "format", "error", "message"),
    [
        ("nope", {"title": "x"}, "png", TemplateNotFound, "nope"),
        ("minimal", {}, "png", InvalidParameter, "parameter 'title': required"),
        (
            "minimal",
            {"title": "x", "colour": "red"},
            "png",
            InvalidParameter,
            "parameter 'colour': unknown parameter",
        ),
        ("minimal", {"title": "x" * 101}, "png", InvalidParameter, "longer than 100"),
        (
            "minimal",
            {"title": "x", "background": "#zz0000"},
            "png",
            InvalidParameter,
            "expected a CSS colour",
        ),
        ("minimal", {"title": "x"}, "gif", InvalidFormat, "unknown format 'gif'"),
    ],
)
def test_bad_requests_raise_their_error_class_before_any_render(
    session: Session,
    template: str,
    params: dict[str, str],
    format: str,
    error: type[ogshot.OgshotError],
    message: str,
) -> None:
    before = session.renders
    with pytest.raises(error) as caught:
        session.run(session.renderer.render(template, params, format))
    assert message in str(caught.value)
    expected_status = 404 if error is TemplateNotFound else 400
    assert caught.value.status == expected_status
    assert isinstance(caught.value, ogshot.OgshotError)
    assert isinstance(caught.value, BadRequest) == (expected_status == 400)
    if isinstance(caught.value, InvalidParameter):
        detail = caught.value.to_json()["detail"]
        assert detail["parameter"] == caught.value.name
        if caught.value.name == "colour":  # a near miss of a declared name says which
            assert detail["suggestion"] == "color"
            assert str(caught.value).endswith("; did you mean 'color'?")
        else:
            assert "suggestion" not in detail
    assert session.renders == before


def test_identical_concurrent_calls_share_one_render(session: Session) -> None:
    same = unique("Single flight")
    other = unique("Another")

    async def together() -> list[ogshot.Image]:
        calls = [session.renderer.image("minimal", same, "png") for _ in range(6)]
        calls.append(session.renderer.image("minimal", other, "png"))
        return await asyncio.gather(*calls)

    before = session.renders
    *images, different = session.run(together())
    assert session.renders == before + 2  # one for the six identical calls, one for the other
    assert len({image.etag for image in images}) == 1
    assert len({image.body for image in images}) == 1
    assert different.etag != images[0].etag
    assert not any(image.cached for image in images)  # all six waited for the same miss
