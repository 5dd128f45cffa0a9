"""``ogshot build``: manifests in, images and a mapping file out, to a folder or to a real
S3-compatible server (moto's, on loopback), with real Chromium."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner, Result
from moto.server import ThreadedMotoServer

from ogshot.batch.manifests import page_fields, read_manifest
from ogshot.batch.outputs import open_output
from ogshot.cli import cli
from ogshot.core.errors import BadRequest
from ogshot.engine.remote_images import RemoteImages
from tests.support import canary as servers
from tests.support.helpers import ROOT, image_of, make_settings, mean_difference, pixel
from tests.support.image_origin import IMAGE_HOST, Origin, Resolver, only_image_host, solid_png
from tests.support.procs import free_port

# A row titled "boom" divides by zero while the template renders: a failure that only shows up
# after validation, in the middle of the parallel phase.
BROKEN = '<html><body>{{ 1 // (title|length - 4) if title == "boom" else title }}</body></html>'

CSV = (
    "template,title,subtitle,name\n"
    "article,Hello world,First card,hello\n"
    "article,,no title,\n"  # line 3: 'title' is required
    "minimal,Second card,,\n"
    "nope,x,,\n"  # line 5: no such template
    "broken,boom,,\n"  # line 6: fails while rendering
    "broken,fine,,\n"
)


@pytest.fixture(scope="module")
def env(module_dir: Path) -> dict[str, str]:
    settings = make_settings(module_dir)
    (Path(settings.templates_dir) / "broken.html").write_text(BROKEN)
    return {
        "OGSHOT_TEMPLATES_DIR": str(settings.templates_dir),
        "OGSHOT_STATIC_DIR": str(settings.static_dir),
        "OGSHOT_CACHE_DIR": str(settings.cache_dir),
        "OGSHOT_CONFIG": str(ROOT / "playwright.config.json"),
        "OGSHOT_POOL_SIZE": "2",
    }


def build(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, ["build", *args], env=env)


def files(root: Path) -> dict[str, int]:
    """Relative path -> mtime_ns of every file under root."""
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in root.rglob("*.*")}


def test_folder_build_reports_failures_writes_the_rest_and_resumes(
    tmp_path: Path, env: dict[str, str]
) -> None:
    manifest, out = tmp_path / "pages.csv", tmp_path / "out"
    manifest.write_text(CSV)
    base = "https://cdn.example.com/og"
    first = build(env, str(manifest), "-o", str(out), "--public-base-url", base)

    assert first.exit_code == 1, first.output
    assert "pages.csv line 3 (article): parameter 'title': required" in first.output
    assert "pages.csv line 5 (nope): no template named 'nope'" in first.output
    assert "pages.csv line 6 (broken): ZeroDivisionError" in first.output
    assert "3 written, 0 skipped (already there), 3 failed of 6 rows" in first.output

    mapping = json.loads((out / "ogshot-build.json").read_text())
    images = mapping["images"]
    assert sorted(images) == ["hello", "pages.csv line 4", "pages.csv line 7"]
    assert images["hello"]["params"] == {"title": "Hello world", "subtitle": "First card"}
    assert images["hello"]["path"].startswith("article/hello-")
    assert images["pages.csv line 4"]["path"].startswith("minimal/second-card-")
    for entry in images.values():
        assert entry["url"] == f"{base}/{entry['path']}"
    assert set(mapping["failed"]) == {"pages.csv line 3", "pages.csv line 5", "pages.csv line 6"}
    assert "ZeroDivisionError" in mapping["failed"]["pages.csv line 6"]["error"]

    written = {path: (out / path).read_bytes() for path in (e["path"] for e in images.values())}
    assert set(files(out)) == {*written, "ogshot-build.json"}  # nothing for the failed rows
    for body in written.values():
        assert body[:8] == b"\x89PNG\r\n\x1a\n"
        assert (image_of(body).width, image_of(body).height) == (1200, 630)
    hello, second = written[images["hello"]["path"]], written[images["pages.csv line 4"]["path"]]
    assert mean_difference(hello, second) > 1  # two rows, two different pictures

    # Resumed: one image lost since; only it is rendered again, the others are not touched.
    before = files(out)
    lost = images["pages.csv line 4"]["path"]
    (out / lost).unlink()
    second_run = build(env, str(manifest), "-o", str(out), "--public-base-url", base)
    assert second_run.exit_code == 1, second_run.output
    assert "skipping 2 of 6 rows: their images are already there" in second_run.output
    assert "1 written, 2 skipped (already there), 3 failed of 6 rows" in second_run.output
    after = files(out)
    assert set(after) == set(before)
    assert all(after[p] == before[p] for p in written if p != lost)
    assert json.loads((out / "ogshot-build.json").read_text())["images"] == images

    # Only good rows: exit code 0, and nothing to render at all.
    manifest.write_text("".join(CSV.splitlines(keepends=True)[i] for i in (0, 1, 3, 6)))
    clean = build(env, str(manifest), "-o", str(out))
    assert clean.exit_code == 0, clean.output
    assert "0 written, 3 skipped (already there), 0 failed of 3 rows" in clean.output
    assert files(out)[lost] == after[lost]


def test_json_lines_rows_pick_their_name_and_format(tmp_path: Path, env: dict[str, str]) -> None:
    manifest, out = tmp_path / "rows.jsonl", tmp_path / "out"
    rows: list[Any] = [
        {
            "template": "article",
            "params": {"title": "As WebP"},
            "name": "posts/one",
            "format": "webp",
        },
        {"params": {"title": "Default template"}},
        "not an object",
    ]
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken\n")
    result = build(env, str(manifest), "-o", str(out), "--template", "minimal", "--format", "jpg")
    assert result.exit_code == 1, result.output
    assert "rows.jsonl line 3 (minimal): not a JSON object" in result.output
    assert "rows.jsonl line 4 (minimal): not valid JSON" in result.output

    images = json.loads((out / "ogshot-build.json").read_text())["images"]
    one, default = images["posts/one"], images["rows.jsonl line 2"]
    assert one["path"].startswith("article/posts/one-") and one["path"].endswith(".webp")
    assert one["format"] == "webp"
    assert (out / one["path"]).read_bytes()[8:12] == b"WEBP"
    assert default["path"].startswith("minimal/default-template-")
    assert default["path"].endswith(".jpg")
    assert (out / default["path"]).read_bytes()[:3] == b"\xff\xd8\xff"


def test_a_row_that_cannot_be_written_is_reported(tmp_path: Path, env: dict[str, str]) -> None:
    manifest, out = tmp_path / "rows.csv", tmp_path / "out"
    manifest.write_text("template,title\nminimal,Blocked\narticle,Written\n")
    out.mkdir()
    (out / "minimal").write_text("a file where the template's folder would go")
    result = build(env, str(manifest), "-o", str(out))
    assert result.exit_code == 1, result.output
    assert "rows.csv line 2 (minimal): FileExistsError" in result.output
    assert "1 written, 0 skipped (already there), 1 failed of 2 rows" in result.output
    mapping = json.loads((out / "ogshot-build.json").read_text())
    assert list(mapping["images"]) == ["rows.csv line 3"]
    assert (out / mapping["images"]["rows.csv line 3"]["path"]).is_file()


SITEMAP = """<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc>https://example.com/blog/hello-world/</loc><lastmod>2026-01-02</lastmod></url>
  <url><loc>https://example.com/docs/getting_started.html</loc></url>
</urlset>
"""


def test_sitemap_pages_become_rows_by_rule(tmp_path: Path, env: dict[str, str]) -> None:
    manifest, out = tmp_path / "sitemap.xml", tmp_path / "out"
    manifest.write_text(SITEMAP)
    result = build(
        env,
        str(manifest),
        "-o",
        str(out),
        "--template",
        "article",
        "--param",
        "title={title}",
        "--param",
        "site={host}",
        "--param",
        "subtitle=Updated {lastmod}",
    )
    assert result.exit_code == 0, result.output
    images = json.loads((out / "ogshot-build.json").read_text())["images"]
    hello = images["https://example.com/blog/hello-world/"]
    assert hello["params"] == {
        "title": "Hello world",
        "site": "example.com",
        "subtitle": "Updated 2026-01-02",
    }
    assert hello["path"].startswith("article/blog/hello-world-")
    docs = images["https://example.com/docs/getting_started.html"]
    assert docs["params"]["title"] == "Getting started"
    assert docs["path"].startswith("article/docs/getting-started-html-")
    assert all((out / e["path"]).is_file() for e in images.values())


def test_bad_manifests_and_rules_are_clear_errors(tmp_path: Path, env: dict[str, str]) -> None:
    sitemap = tmp_path / "sitemap.xml"
    sitemap.write_text(SITEMAP)
    unknown = build(env, str(sitemap), "-o", str(tmp_path), "--template", "a", "--param", "t={x}")
    assert unknown.exit_code == 1
    assert "unknown field {x}" in unknown.output
    no_template = build(env, str(sitemap), "-o", str(tmp_path))
    assert "a sitemap needs --template" in no_template.output
    missing = build(env, str(tmp_path / "absent.csv"), "-o", str(tmp_path))
    assert missing.exit_code == 1 and "cannot read manifest" in missing.output
    other = tmp_path / "rows.txt"
    other.write_text("x")
    assert "unknown manifest type '.txt'" in build(env, str(other), "-o", "x").output
    headerless = tmp_path / "empty.csv"
    headerless.write_text("")
    assert "needs a header row" in build(env, str(headerless), "-o", "x").output
    assert "only folders and s3://" in build(env, str(sitemap), "-o", "gs://b/p").output
    assert not (tmp_path / "ogshot-build.json").exists()  # nothing ran


def test_manifest_reading_keeps_row_order_and_sources(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("title,format\nOne,webp\n\nTwo,\nThree,png,extra\n")
    rows = read_manifest(manifest, template="article")
    assert [(r.source, r.params, r.format, r.error) for r in rows] == [
        ("m.csv line 2", {"title": "One"}, "webp", None),
        ("m.csv line 4", {"title": "Two"}, None, None),
        ("m.csv line 5", {}, None, "more cells than the header has columns"),
    ]
    assert page_fields("https://example.com/")["path"] == "/"
    assert page_fields("https://example.com/a/My%20Post")["title"] == "My Post"


# -- S3 ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    """moto's S3-compatible server on a loopback port; yields its endpoint."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    credentials = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    }
    for key, value in credentials.items():  # for the test's own boto3 client as well
        monkeypatch.setenv(key, value)
    return {**env, **credentials}


def test_s3_build_writes_objects_and_resumes_from_one_listing(
    tmp_path: Path, s3: str, aws: dict[str, str]
) -> None:
    client = boto3.client("s3", endpoint_url=s3)
    client.create_bucket(Bucket="cards")
    manifest = tmp_path / "pages.csv"
    manifest.write_text("template,title\narticle,Into the bucket\nminimal,Second\nnope,x\n")
    first = build(aws, str(manifest), "-o", "s3://cards/og/v1", "--s3-endpoint", s3)
    assert first.exit_code == 1, first.output
    assert "pages.csv line 4 (nope): no template named 'nope'" in first.output
    assert "mapping: s3://cards/og/v1/ogshot-build.json" in first.output

    keys = {o["Key"] for o in client.list_objects_v2(Bucket="cards")["Contents"]}
    mapping = json.loads(
        client.get_object(Bucket="cards", Key="og/v1/ogshot-build.json")["Body"].read()
    )
    paths = [e["path"] for e in mapping["images"].values()]
    assert keys == {f"og/v1/{p}" for p in paths} | {"og/v1/ogshot-build.json"}
    assert len(paths) == 2
    obj = client.get_object(Bucket="cards", Key=f"og/v1/{paths[0]}")
    assert obj["ContentType"] == "image/png"
    assert obj["CacheControl"] == "public, max-age=31536000, immutable"
    image = image_of(obj["Body"].read())
    assert (image.width, image.height) == (1200, 630)
    modified = {k: client.head_object(Bucket="cards", Key=k)["LastModified"] for k in keys}

    # The endpoint from the environment this time; everything is already there.
    again = build({**aws, "OGSHOT_S3_ENDPOINT": s3}, str(manifest), "-o", "s3://cards/og/v1")
    assert "skipping 2 of 3 rows" in again.output, again.output
    assert "0 written, 2 skipped (already there), 1 failed of 3 rows" in again.output
    for key in keys - {"og/v1/ogshot-build.json"}:
        assert client.head_object(Bucket="cards", Key=key)["LastModified"] == modified[key]


def test_s3_output_that_cannot_be_listed_is_one_clear_error(s3: str, aws: dict[str, str]) -> None:
    output = open_output("s3://no-such-bucket/x", s3_endpoint=s3)
    with pytest.raises(BadRequest, match="cannot list s3://no-such-bucket/x/"):
        output.existing()


def test_s3_endpoint_from_boto3s_own_variable(
    s3: str, aws: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    boto3.client("s3", endpoint_url=s3).create_bucket(Bucket="from-env")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3)
    output = open_output("s3://from-env/cards")
    output.write("a/b.png", b"x", content_type="image/png", cache_control="no-cache")
    assert output.existing() == {"a/b.png"}
    assert output.location("a/b.png") == "s3://from-env/cards/a/b.png"


def test_a_build_renders_with_a_cache_of_its_own_unless_told(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """A one-shot build neither reads nor fills the server's cache by default, and says which
    cache it uses: with --use-cache it fills the configured one."""
    configured = tmp_path / "server-cache"
    own_env = {**env, "OGSHOT_CACHE_DIR": str(configured)}
    manifest = tmp_path / "pages.csv"
    manifest.write_text("template,title\nminimal,Own cache\n")

    private = build(own_env, str(manifest), "-o", str(tmp_path / "a"))
    assert private.exit_code == 0, private.output
    assert "rendering with a cache of its own" in private.output
    assert "1 written" in private.output
    assert not configured.exists()  # nothing was written where the server keeps its images

    shared = build(own_env, str(manifest), "-o", str(tmp_path / "b"), "--use-cache")
    assert shared.exit_code == 0, shared.output
    assert f"using the configured cache (disk {configured})" in shared.output
    assert any(p.stat().st_size > 0 for p in configured.rglob("*") if p.is_file())


AVATAR = """{#ogshot
[params.src]
type = "url"
required = true
#}
<!doctype html><html><body style="margin:0">
<img src="{{ src }}" style="display:block;width:1200px;height:630px"></body></html>"""


def test_names_follow_the_remote_images_bytes(
    tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file's name holds the key the image was rendered under, remote images' bytes included:
    new bytes at the same URL make a new file, never a skip that keeps the old picture."""
    templates = Path(env["OGSHOT_TEMPLATES_DIR"])
    (templates / "remote-avatar.html").write_text(AVATAR)
    made = RemoteImages.from_settings.__func__  # type: ignore[attr-defined]

    def with_test_dns(cls: type[RemoteImages], settings: Any) -> RemoteImages:
        remote: RemoteImages = made(cls, settings)
        remote.resolver = Resolver({"img.test": [IMAGE_HOST]})  # img.test -> the server below
        remote.address_allowed = only_image_host
        return remote

    monkeypatch.setattr(RemoteImages, "from_settings", classmethod(with_test_dns))
    content = Origin()
    with servers.serve(IMAGE_HOST, answer=content.answer) as server:
        manifest, out = tmp_path / "remote.csv", tmp_path / "out"
        manifest.write_text(
            f"template,src,name\nremote-avatar,http://img.test:{server.port}/ok.png,me\n"
        )
        remote_env = {**env, "OGSHOT_REMOTE_IMAGES": "*.test"}
        content.image = solid_png([255, 0, 0])
        first = build(remote_env, str(manifest), "-o", str(out))
        assert first.exit_code == 0, first.output
        red = json.loads((out / "ogshot-build.json").read_text())["images"]["me"]["path"]

        content.image = solid_png([0, 0, 255])  # new bytes at the same URL
        second = build(remote_env, str(manifest), "-o", str(out))
        assert second.exit_code == 0, second.output
        assert "1 written, 0 skipped" in second.output
        blue = json.loads((out / "ogshot-build.json").read_text())["images"]["me"]["path"]
    assert blue != red
    r, _g, b = pixel((out / blue).read_bytes(), 600, 300)
    assert b > 240 and r < 15
    r, _g, b = pixel((out / red).read_bytes(), 600, 300)
    assert r > 240 and b < 15
