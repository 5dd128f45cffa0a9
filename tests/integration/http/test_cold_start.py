"""Cold start through a real ``ogshot serve`` and real Chromium: the server is ready with one page
open (the others open after it) and serves a correct first image then; a Tailwind template's CSS,
not compiled at start, is applied to the very first render; a restart reuses the compiled CSS;
a Chromium that cannot start fails the start with a message naming it."""

from __future__ import annotations

import contextlib
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.support.helpers import pixel
from tests.support.procs import Server, wait_for

SOLID = """<!doctype html><html><head><style>
body { margin: 0; background: #fff; }
div { position: absolute; top: 0; left: 0; width: 400px; height: 300px; background: #0000ff; }
</style></head><body><div></div></body></html>
"""
TAILWIND = """{#ogshot
tailwind = true
[params.label]
type = "str"
default = ""
#}
<!doctype html><html><head></head><body class="m-0 bg-white">
<div class="absolute top-0 left-0 h-[200px] w-[300px] bg-[#ff0000]"></div>
<div class="absolute top-[300px] left-0 h-[100px] w-[100px] bg-brand"></div>
<p class="absolute top-[500px] left-[600px] m-0">{{ label }}</p>
</body></html>
"""
THEME = "@theme { --color-brand: #00ff00; }\n"


def folders(base: Path, **extra: str) -> dict[str, str]:
    templates, static = base / "templates", base / "static"
    templates.mkdir(parents=True, exist_ok=True)
    static.mkdir(exist_ok=True)
    (templates / "solid.html").write_text(SOLID)
    (templates / "card.html").write_text(TAILWIND)
    (static / "tailwind.css").write_text(THEME)
    return {
        "OGSHOT_TEMPLATES_DIR": str(templates),
        "OGSHOT_STATIC_DIR": str(static),
        "OGSHOT_CACHE_DIR": str(base / "cache"),
        "OGSHOT_MEMORY_CACHE_SIZE": "0",
        **extra,
    }


@contextlib.contextmanager
def spawned(env: dict[str, str], cwd: Path) -> Iterator[Server]:
    """A server started but not waited for (``with Server(...)`` waits until it is ready)."""
    server = Server(env=env, cwd=cwd).spawn()
    try:
        yield server
    finally:
        server.close()


def first_ready(server: Server, timeout: float = 60.0) -> dict[str, object]:
    """Poll /readyz until it answers 200; its body then."""
    assert server.process is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.process.poll() is None, server.output()
        try:
            response = httpx.get(f"{server.base}/readyz", timeout=5)
        except httpx.TransportError:
            time.sleep(0.01)
            continue
        if response.status_code == 200:
            body: dict[str, object] = response.json()
            return body
        time.sleep(0.01)
    raise AssertionError(f"not ready within {timeout:g} s:\n{server.output()}")


def pool_of(server: Server) -> dict[str, int]:
    pool: dict[str, int] = server.get("/readyz").json()["pool"]
    return pool


def assert_tailwind_card(image: bytes) -> None:
    assert pixel(image, 10, 10) == [255, 0, 0]  # bg-[#ff0000]
    assert pixel(image, 299, 199) == [255, 0, 0]  # h-[200px] w-[300px]: its last pixel
    assert pixel(image, 301, 10) == [255, 255, 255]  # and no further: bg-white
    assert pixel(image, 50, 350) == [0, 255, 0]  # bg-brand, from static/tailwind.css


def test_ready_with_one_page_serves_a_correct_image_while_the_rest_open(tmp_path: Path) -> None:
    size = 6
    with spawned(folders(tmp_path, OGSHOT_POOL_SIZE=str(size)), tmp_path) as server:
        ready = first_ready(server)
        response = server.get("/og/solid.png")
        pool = ready["pool"]
        assert isinstance(pool, dict)
        # Ready before the whole pool was open: one page (or a few), the rest still opening.
        assert 1 <= pool["idle"] + pool["busy"] < size, pool
        assert pool["starting"] > 0, pool
        assert response.status_code == 200, response.text
        assert response.headers["x-ogshot-cache"] == "miss"
        image = response.content
        assert pixel(image, 10, 10) == [0, 0, 255]
        assert pixel(image, 399, 299) == [0, 0, 255]
        assert pixel(image, 401, 10) == [255, 255, 255]
        # The others open in the background, and the pool ends up whole.
        assert wait_for(lambda: pool_of(server)["idle"] == size, timeout=60), pool_of(server)
        assert pool_of(server)["starting"] == 0


def test_tailwind_css_is_applied_to_the_first_render_right_at_ready(tmp_path: Path) -> None:
    css_cache = tmp_path / "cache" / "tailwind"
    env = folders(tmp_path, OGSHOT_POOL_SIZE="2")
    with spawned(env, tmp_path) as server:
        first_ready(server)
        # The server did not wait for Tailwind before it was ready: nothing compiled yet.
        assert not list(css_cache.glob("*.css"))
        response = server.get("/og/card.png")
        assert response.status_code == 200, response.text
        assert "x-ogshot-warning" not in response.headers
        assert_tailwind_card(response.content)
        compiled = list(css_cache.glob("*.css"))
        assert len(compiled) == 1
        # The background compile, waited for or not, put it in the catalog: later renders too.
        again = server.get("/og/card.png", params={"label": "second"})
        assert again.headers["x-ogshot-cache"] == "miss"
        assert_tailwind_card(again.content)
    before = compiled[0].stat()
    # A restart over the same files reads the compiled CSS back instead of compiling again.
    with spawned(env, tmp_path) as restarted:
        first_ready(restarted)
        response = restarted.get("/og/card.png", params={"label": "after a restart"})
        assert response.status_code == 200, response.text
        assert response.headers["x-ogshot-cache"] == "miss"
        assert_tailwind_card(response.content)
    after = compiled[0].stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert list(css_cache.glob("*.css")) == compiled


def test_a_chromium_that_cannot_start_fails_the_start_with_its_name(tmp_path: Path) -> None:
    broken = tmp_path / "broken-chromium"
    broken.write_text("#!/bin/sh\necho 'cannot open display: none here' >&2\nexit 3\n")
    broken.chmod(broken.stat().st_mode | stat.S_IXUSR)
    env = folders(tmp_path, OGSHOT_POOL_SIZE="2", OGSHOT_CHROMIUM=str(broken))
    with spawned(env, tmp_path) as server:
        assert server.process is not None
        code = server.process.wait(60)
        output = server.output()
        assert code != 0, output
        assert str(broken) in output, output  # which Chromium
        assert "cannot open display: none here" in output, output  # and what it said
        assert "Application startup failed" in output, output
