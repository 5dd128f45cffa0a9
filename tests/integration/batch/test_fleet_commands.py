"""``ogshot build --server`` and ``ogshot warm`` against a real ``ogshot serve`` (signed URLs, an
admin token): images downloaded instead of rendered here, resumable, with the mapping file; and
URLs and manifest rows queued for warming, which become hits."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import CliRunner, Result

from ogshot.cli import cli
from ogshot.core.settings import Settings
from ogshot.templates.signing import signed_path
from tests.support.canary import serve
from tests.support.helpers import ROOT, image_of, make_settings
from tests.support.procs import Server, chromium_children, serve_env, wait_for

SECRET = "fleet-build-secret"
TOKEN = "fleet-build-token"

MANIFEST = (
    '{"template": "article", "params": {"title": "From the fleet"}, "name": "one"}\n'
    '{"template": "minimal", "params": {"title": "Second"}, "name": "two", "format": "webp"}\n'
    '{"template": "article", "params": {"colour": "red"}, "name": "bad"}\n'
)


@pytest.fixture(scope="module")
def settings(module_dir: Path) -> Settings:
    return make_settings(module_dir, secrets=(SECRET,))


@pytest.fixture(scope="module")
def server(module_dir: Path, settings: Settings) -> Iterator[Server]:
    env = serve_env(
        module_dir,
        OGSHOT_CACHE_DIR=str(module_dir / "server-cache"),
        OGSHOT_SECRET=SECRET,
        OGSHOT_ADMIN_TOKEN=TOKEN,
    )
    with Server(env=env, cwd=module_dir) as node:
        yield node


@pytest.fixture(scope="module")
def env(module_dir: Path, settings: Settings) -> dict[str, str]:
    """The CLI's environment: the same templates and secret as the server, its own cache."""
    return {
        "OGSHOT_TEMPLATES_DIR": str(settings.templates_dir),
        "OGSHOT_STATIC_DIR": str(settings.static_dir),
        "OGSHOT_CACHE_DIR": str(module_dir / "cli-cache"),
        "OGSHOT_CONFIG": str(ROOT / "playwright.config.json"),
        "OGSHOT_SECRET": SECRET,
        "OGSHOT_ADMIN_TOKEN": TOKEN,
    }


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def renders(server: Server) -> float:
    text = server.get("/metrics").text
    return sum(
        float(v) for v in re.findall(r"^ogshot_images_rendered_total\{.*\} (\S+)$", text, re.M)
    )


def test_build_through_a_server_downloads_resumes_and_maps(
    tmp_path: Path, env: dict[str, str], server: Server, settings: Settings
) -> None:
    manifest, out = tmp_path / "pages.jsonl", tmp_path / "out"
    manifest.write_text(MANIFEST)
    before = renders(server)
    first = run(env, "build", str(manifest), "-o", str(out), "--server", server.base)
    assert first.exit_code == 1, first.output  # the bad row
    assert "pages.jsonl line 3 (article): parameter 'colour'" in first.output
    assert "2 written, 0 skipped (already there), 1 failed of 3 rows" in first.output
    assert renders(server) == before + 2  # the server rendered them ...
    here = set(chromium_children(os.getpid())) - set(chromium_children(server.pid))
    assert here == set()  # ... and no Chromium was started here

    mapping = json.loads((out / "ogshot-build.json").read_text())
    images = mapping["images"]
    assert sorted(images) == ["one", "two"] and list(mapping["failed"]) == ["bad"]
    one, two = (out / images["one"]["path"]), (out / images["two"]["path"])
    assert one.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and two.suffix == ".webp"
    assert (image_of(two.read_bytes()).width, image_of(two.read_bytes()).height) == (1200, 630)
    # The very bytes the server answers for the signed URL.
    path = signed_path(settings, "article", {"title": "From the fleet"}, "png")
    assert server.get(path).content == one.read_bytes()

    two.unlink()  # resumed: only the lost image is downloaded again
    again = run(env, "build", str(manifest), "-o", str(out), "--server", server.base)
    assert "1 written, 1 skipped (already there), 1 failed of 3 rows" in again.output
    assert two.exists()
    assert json.loads((out / "ogshot-build.json").read_text())["images"] == images


def test_build_through_an_unreachable_server_reports_each_row(
    tmp_path: Path, env: dict[str, str]
) -> None:
    manifest = tmp_path / "pages.jsonl"
    manifest.write_text(MANIFEST.splitlines(keepends=True)[0])
    result = run(
        env, "build", str(manifest), "-o", str(tmp_path / "o"), "--server", "http://127.0.0.1:9"
    )
    assert result.exit_code == 1
    assert "pages.jsonl line 1 (article): http://127.0.0.1:9: ConnectError" in result.output
    # Refused before anything ever answered: said at once, not after the whole backoff.
    assert "nothing answers there: is the server running, is the URL right?" in result.output


def test_build_tries_a_503_again_as_many_times_as_retries_says(
    tmp_path: Path, env: dict[str, str]
) -> None:
    def overloaded(handler: BaseHTTPRequestHandler) -> None:
        body = b'{"error": "Overloaded", "detail": null}'
        handler.send_response(503)
        handler.send_header("content-type", "application/json")
        handler.send_header("retry-after", "0")
        handler.send_header("content-length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    manifest = tmp_path / "pages.jsonl"
    manifest.write_text(MANIFEST.splitlines(keepends=True)[0])
    with serve(answer=overloaded) as node:
        for retries, attempts in (("2", 3), ("0", 1)):
            before = len(node.paths)
            result = run(
                env, "build", str(manifest), "-o", str(tmp_path / retries),
                "--server", node.base, "--retries", retries,
            )  # fmt: skip
            assert result.exit_code == 1, result.output
            tried = f" after {attempts} attempts" if attempts > 1 else ""
            assert f"the server answered 503{tried}: Overloaded" in result.output
            assert len(node.paths) - before == attempts
            assert all(p.startswith("/og/article.png?") for p in node.paths[before:])
    refused = run(env, "build", str(manifest), "-o", str(tmp_path / "n"), "--retries", "-1")
    assert refused.exit_code == 2 and "-1 is not in the range x>=0" in refused.output


def test_warm_queues_urls_and_manifest_rows_which_become_hits(
    tmp_path: Path, env: dict[str, str], server: Server, settings: Settings
) -> None:
    manifest = tmp_path / "warm.csv"
    manifest.write_text("template,title\nminimal,Warm row one\nminimal,Warm row two\n")
    url = signed_path(settings, "minimal", {"title": "Warm by URL"}, "png")
    before = _warm_renders(server)
    result = run(env, "warm", url, str(manifest), "--server", server.base)
    assert result.exit_code == 0, result.output
    assert "3 queued, 0 refused of 3 (lane: node)" in result.output
    paths = [url] + [
        signed_path(settings, "minimal", {"title": t}, "png")
        for t in ("Warm row one", "Warm row two")
    ]

    def all_hits() -> bool:
        return all(server.get(p).headers["x-ogshot-cache"] == "hit" for p in paths)

    # Fetching before the lane made one would be a miss (and a render): wait on the counter.
    assert wait_for(lambda: _warm_renders(server) >= before + 3, timeout=60)
    assert all_hits()


def test_warm_reports_refused_items_and_exits_1(env: dict[str, str], server: Server) -> None:
    unsigned = "/og/minimal.png?title=" + quote("no signature")
    result = run(env, "warm", unsigned, "--server", server.base)
    assert result.exit_code == 1
    assert f"refused: {unsigned}: this server requires signed URLs" in result.output
    assert "0 queued, 1 refused of 1" in result.output

    wrong = run({**env, "OGSHOT_ADMIN_TOKEN": "nope"}, "warm", unsigned, "--server", server.base)
    assert wrong.exit_code == 1 and "answered 401" in wrong.output


def _warm_renders(server: Server) -> float:
    found = re.search(r"^ogshot_warm_renders_total (\S+)$", server.get("/metrics").text, re.M)
    assert found is not None
    return float(found.group(1))


def test_build_through_a_busy_server_retries_its_503s(
    tmp_path: Path, env: dict[str, str], settings: Settings
) -> None:
    # One page and one place in its queue, given up on after 50 ms: of 4 downloads at once, some
    # are 503 Overloaded at first.
    busy_env = serve_env(
        tmp_path,
        OGSHOT_TEMPLATES_DIR=str(settings.templates_dir),
        OGSHOT_STATIC_DIR=str(settings.static_dir),
        OGSHOT_CACHE_DIR=str(tmp_path / "busy-cache"),
        OGSHOT_SECRET=SECRET,
        OGSHOT_QUEUE_SIZE="1",
        OGSHOT_QUEUE_TIMEOUT="0.05",
    )
    manifest, out = tmp_path / "many.csv", tmp_path / "out"
    manifest.write_text("template,title\n" + "".join(f"minimal,Busy {i}\n" for i in range(8)))
    with Server(env=busy_env, cwd=tmp_path) as busy:
        result = run(
            env, "build", str(manifest), "-o", str(out), "--server", busy.base,
            "--concurrency", "4",
        )  # fmt: skip
        overloaded = sum(
            float(v)
            for v in re.findall(
                r'^ogshot_requests_total\{[^}]*status="503"[^}]*\} (\S+)$',
                busy.get("/metrics").text,
                re.M,
            )
        )
    assert result.exit_code == 0, result.output
    assert "8 written, 0 skipped (already there), 0 failed of 8 rows" in result.output
    assert overloaded > 0  # the server did turn requests away, and each was tried again
    assert len(list(out.glob("minimal/*.png"))) == 8
