"""Reliability over a real server and real faults: SIGTERM with renders in flight, several workers
and servers sharing one disk cache, Chromium recycling, the health endpoints, cache faults (disk
full on a real tmpfs, a corrupt database file), and the OpenAPI description."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from ogshot.app import create_app
from ogshot.cache.disk import Entry, ImageCache
from ogshot.core.errors import ConfigError
from ogshot.core.settings import Settings
from ogshot.engine.pool import Pool
from tests.support.helpers import SHIPPED, image_of, make_settings, pixel
from tests.support.procs import Server, alive, group_members, marked, serve_env, wait_for

SLOW = (
    "<body style='margin:0;background:#00ff00'><p>{{ n }}</p><script>"
    "window.ogshotReady = new Promise((r) => setTimeout(r, Number('{{ delay }}')));"
    "</script></body>"
)


def is_green(png: bytes) -> bool:
    r, g, b = pixel(png, 600, 600)
    return g > 230 and r < 30 and b < 30


# -- a real `ogshot serve` -------------------------------------------------------------------------


def test_sigterm_lets_renders_finish_and_leaves_no_chromium(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    (settings.templates_dir / "slow.html").write_text(SLOW)
    with Server(env=serve_env(tmp_path, OGSHOT_POOL_SIZE="2"), cwd=tmp_path) as server:
        started = marked(server.marker)
        assert any("chrom" in Path(f"/proc/{pid}/comm").read_text() for pid in started)
        with ThreadPoolExecutor(2) as executor:
            inflight = [
                executor.submit(server.get, "/og/slow.png", params={"delay": "1500", "n": str(i)})
                for i in range(2)
            ]
            assert wait_for(lambda: server.get("/readyz").json()["pool"]["busy"] == 2)
            code = server.terminate()
            answers = [future.result(timeout=60) for future in inflight]
        # uvicorn re-raises SIGTERM once it has shut down cleanly: killed by it, after the shutdown.
        assert code in (0, -signal.SIGTERM), server.output()
        assert "Application shutdown complete." in server.output()
        for answer in answers:  # finished, not cut off
            assert answer.status_code == 200
            assert is_green(answer.content)
        leftovers = wait_for(lambda: not marked(server.marker), timeout=10)
        assert leftovers, f"processes left behind: {marked(server.marker)}\n{server.output()}"
        assert "Waiting for application shutdown" in server.output()


def test_workers_and_servers_share_one_disk_cache(tmp_path: Path) -> None:
    make_settings(tmp_path)
    env = serve_env(tmp_path, OGSHOT_MEMORY_CACHE_SIZE="1")  # every hit comes from the disk
    titles = [f"shared {i}" for i in range(8)]
    with (
        Server("--workers", "2", env=env, cwd=tmp_path) as workers,
        Server(env=env, cwd=tmp_path) as single,
    ):

        def get(server: Server, title: str) -> httpx.Response:
            return server.get("/og/minimal.png", params={"title": title})

        # Concurrent misses from both servers at once: three processes writing one cache.
        with ThreadPoolExecutor(8) as executor:
            first = list(
                executor.map(
                    lambda i: get(workers if i % 2 else single, titles[i]), range(len(titles))
                )
            )
        assert [a.status_code for a in first] == [200] * len(titles)
        # Every image is now a hit wherever it is asked for, with the same bytes.
        for server in (single, workers, workers):
            with ThreadPoolExecutor(8) as executor:
                again = list(executor.map(lambda t, s=server: get(s, t), titles))
            assert [a.headers["x-ogshot-cache"] for a in again] == ["hit"] * len(titles)
            assert [a.content for a in again] == [a.content for a in first]
        for server in (workers, single):
            ready = server.get("/readyz").json()
            assert ready["cache"]["healthy"] is True and ready["cache"]["errors"] == 0
            assert server.terminate() in (0, -signal.SIGTERM), server.output()
        assert wait_for(lambda: not marked(workers.marker) and not marked(single.marker), 10)


# -- recycling -----------------------------------------------------------------------------------


def pool_of(client: TestClient) -> Pool:
    pool: Pool = client.app.state.renderer.pool  # type: ignore[attr-defined]
    return pool


def test_chromium_is_recycled_without_dropping_a_request(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, pool_size=2, recycle_after=4)
    (settings.templates_dir / "slow.html").write_text(SLOW)
    with TestClient(create_app(settings)) as client:
        pool = pool_of(client)
        first = pool.browser.pid
        assert first is not None
        first_group = os.getpgid(first)
        with ThreadPoolExecutor(6) as executor:
            answers = list(
                executor.map(
                    lambda i: client.get(
                        "/og/slow.png", params={"delay": str(50 * (i % 4)), "n": str(i)}
                    ),
                    range(18),
                )
            )
        assert [a.status_code for a in answers] == [200] * 18
        assert all(is_green(a.content) for a in answers)
        assert pool.browser.recycles >= 1
        # One at a time now: every fourth render on a browser starts the next recycle.
        for i in range(40):
            if pool.browser.recycles >= 3:
                break
            answer = client.get("/og/slow.png", params={"delay": "0", "n": f"seq{i}"})
            assert answer.status_code == 200 and is_green(answer.content)
        assert pool.browser.recycles >= 3
        assert pool.browser.restarts == 0 and pool.pages_replaced == 0
        assert wait_for(lambda: not group_members(first_group))  # the first Chromium is gone
        assert wait_for(lambda: pool.stats()["idle"] == 2)
        stats = client.get("/readyz").json()["pool"]
        assert stats["browser_launches"] == 1 + stats["browser_recycles"]
        current = pool.browser.pid
        assert current is not None and current != first and alive(current)


# -- endpoints -----------------------------------------------------------------------------------


def test_healthz_and_readyz(client: TestClient) -> None:
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["ready"] is True
    pool = body["pool"]
    assert pool["idle"] + pool["busy"] + pool["starting"] == pool["size"] == 2
    for key in ("queued", "queue_limit", "browser_restarts", "browser_recycles", "renders"):
        assert isinstance(pool[key], int)
    assert body["cache"] == {"healthy": True, "errors": 0}


def test_openapi_describes_the_api(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["openapi"].startswith("3.1")
    paths = spec["paths"]
    assert set(paths) >= {
        "/og/article.{format}",
        "/og/minimal.{format}",
        "/og",
        "/healthz",
        "/readyz",
        "/openapi.json",
    }
    article = paths["/og/article.{format}"]["get"]
    params = {p["name"]: p for p in article["parameters"]}
    assert params["format"]["schema"]["enum"] == ["png", "jpg", "jpeg", "webp"]
    assert params["title"]["required"] is True
    # required: not empty and not only spaces
    assert params["title"]["schema"] == {"type": "string", "maxLength": 140, "pattern": "\\S"}
    assert params["theme"]["schema"]["enum"] == ["dark", "light"]
    size = {p["name"]: p for p in paths["/og/minimal.{format}"]["get"]["parameters"]}["size"]
    assert size["schema"] == {"type": "integer", "minimum": 32, "maximum": 120, "default": 84}
    codes = set(article["responses"])
    assert codes >= {"200", "304", "400", "403", "404", "414", "500", "503", "504"}
    assert "image/png" in article["responses"]["504"]["content"]
    assert "Retry-After" in article["responses"]["503"]["headers"]
    query = {p["name"]: p for p in paths["/og"]["get"]["parameters"]}
    assert query["template"]["schema"]["enum"] == SHIPPED
    # What it documents is what the server does: the documented example renders.
    example = {name: p["example"] for name, p in params.items() if "example" in p}
    answer = client.get("/og/article.webp", params=example)
    assert answer.status_code == 200
    assert answer.headers["content-type"] in article["responses"]["200"]["content"]


# -- cache faults --------------------------------------------------------------------------------


def make_cache(path: Path) -> ImageCache:
    cache = ImageCache(Settings.load(environ={}, config_file=None, cache_dir=path))
    cache.RETRY_AFTER = 0.0
    cache.CHECK_EVERY = 0.0
    return cache


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 3 MB tmpfs (needs root, as on the CI machine; skipped elsewhere)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    run = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {run.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_keeps_reads_and_recovers(
    tiny_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = make_cache(tiny_disk / "cache")
    assert cache.set("kept", Entry(b"k" * 50_000, "e0", 1.0))
    filler = tiny_disk / "filler"
    with contextlib.suppress(OSError), open(filler, "wb") as f:
        while True:
            f.write(b"\0" * 65536)
    caplog.set_level(logging.WARNING, logger="ogshot.cache")
    for i in range(10):
        assert cache.set(f"new{i}", Entry(os.urandom(100_000), "e", 1.0)) is False
    # reads go on while the disk is full
    assert cache.get("kept") == Entry(b"k" * 50_000, "e0", 1.0)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "write" in errors[0].getMessage()  # once, not ten times
    assert cache.errors == 10
    filler.unlink()
    assert cache.set("after", Entry(b"a" * 100_000, "e1", 1.0)) is True
    assert cache.get("after") == Entry(b"a" * 100_000, "e1", 1.0)
    assert cache.healthy
    assert any("working again" in r.getMessage() for r in caplog.records)


def test_a_corrupt_database_is_moved_aside_and_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "cache"
    cache = make_cache(folder)
    big = os.urandom(200_000)  # stored as a file beside the database
    assert cache.set("k", Entry(big, "e", 1.0))
    value_files = list(folder.glob("??/??/*.val"))
    assert len(value_files) == 1
    cache.close()
    (folder / "cache.db").write_bytes(b"this is not a database" * 500)
    for suffix in ("-wal", "-shm"):
        (folder / f"cache.db{suffix}").unlink(missing_ok=True)
    caplog.set_level(logging.WARNING, logger="ogshot.cache")
    cache = make_cache(folder)  # a server starting on it
    assert cache.get("k") is None
    assert cache.set("k2", Entry(b"fresh", "e2", 1.0)) is True
    assert cache.get("k2") == Entry(b"fresh", "e2", 1.0)
    assert (folder / "cache.db.corrupt").read_bytes().startswith(b"this is not")
    assert wait_for(lambda: not value_files[0].exists(), 5)  # the orphaned image is removed
    assert sum("is corrupt" in r.getMessage() for r in caplog.records) == 1


def test_corruption_under_a_running_app_is_survived(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, pool_size=1, memory_cache_size=1)
    with TestClient(create_app(settings)) as client:
        cache: ImageCache = client.app.state.renderer.cache  # type: ignore[attr-defined]
        cache.RETRY_AFTER = 0.0
        assert client.get("/og/minimal.png", params={"title": "one"}).status_code == 200
        cache.CHECK_EVERY = 0.0
        database = cache.database
        # A broken file where the database was (a bad restore, a disk error on the next start).
        garbage = database.with_name("garbage")
        garbage.write_bytes(os.urandom(64_000))
        os.replace(garbage, database)
        for suffix in ("-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        for i in range(4):
            answer = client.get("/og/minimal.png", params={"title": f"corrupt {i}"})
            assert answer.status_code == 200 and image_of(answer.content).width == 1200
        assert wait_for(lambda: (database.parent / "cache.db.corrupt").exists(), 1)
        client.get("/og/minimal.png", params={"title": "fresh"})
        hit = client.get("/og/minimal.png", params={"title": "fresh"})
        assert hit.headers["x-ogshot-cache"] == "hit"
        assert cache.healthy
        # every failure the disk cache noted is counted for Prometheus too
        scraped = re.search(
            r'^ogshot_cache_errors_total\{layer="disk"\} (\S+)$',
            client.get("/metrics").text,
            re.MULTILINE,
        )
        assert scraped is not None and cache.errors > 0
        assert float(scraped.group(1)) == cache.errors


def test_a_deleted_cache_folder_is_recreated_on_the_next_start(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    cache = make_cache(folder)
    cache.set("k", Entry(b"v", "e", 1.0))
    cache.close()
    shutil.rmtree(folder)
    cache = make_cache(folder)
    assert cache.healthy and cache.set("k", Entry(b"v2", "e", 1.0))
    assert cache.get("k") == Entry(b"v2", "e", 1.0)


# -- settings ------------------------------------------------------------------------------------


def test_reliability_settings_come_from_the_environment() -> None:
    env = {
        "OGSHOT_HEALTH_INTERVAL": "2.5",
        "OGSHOT_HEALTH_TIMEOUT": "1",
        "OGSHOT_SHUTDOWN_TIMEOUT": "30",
        "OGSHOT_RECYCLE_AFTER": "100",
        "OGSHOT_QUEUE_SIZE": "3",
    }
    settings = Settings.load(environ=env, config_file=None)
    assert (settings.health_interval, settings.health_timeout) == (2.5, 1.0)
    assert settings.shutdown_timeout == 30.0 and settings.recycle_after == 100
    assert settings.effective_queue_size == 3
    defaults = Settings.load(environ={}, config_file=None)
    assert (defaults.health_interval, defaults.health_timeout) == (5.0, 5.0)
    assert defaults.shutdown_timeout == 15.0 and defaults.render_timeout == 10.0


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OGSHOT_HEALTH_INTERVAL", "-1"),
        ("OGSHOT_HEALTH_TIMEOUT", "0"),
        ("OGSHOT_SHUTDOWN_TIMEOUT", "soon"),
    ],
)
def test_a_bad_reliability_setting_names_itself(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.load(environ={variable: value}, config_file=None)
    assert value in caught.value.message
    assert variable.removeprefix("OGSHOT_").lower() in caught.value.message.lower()
