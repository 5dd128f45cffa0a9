from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from click.testing import CliRunner

from ogshot.cli import cli
from ogshot.core.settings import Settings
from tests.support.helpers import ROOT, SHIPPED, image_of, make_settings
from tests.support.procs import Server, serve_env


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    settings = make_settings(tmp_path)
    return {
        "OGSHOT_TEMPLATES_DIR": str(settings.templates_dir),
        "OGSHOT_STATIC_DIR": str(settings.static_dir),
        "OGSHOT_CACHE_DIR": str(settings.cache_dir),
        "OGSHOT_CONFIG": str(ROOT / "playwright.config.json"),
        "OGSHOT_POOL_SIZE": "1",
    }


def test_render_writes_a_valid_image(tmp_path: Path, env: dict[str, str]) -> None:
    out = tmp_path / "card.webp"
    result = CliRunner().invoke(
        cli, ["render", "article", "title=From the CLI", "tag=cli", "-o", str(out)], env=env
    )
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"  # format from the file name
    image = image_of(data)
    assert (image.width, image.height) == (1200, 630)


def test_render_reports_bad_parameters(tmp_path: Path, env: dict[str, str]) -> None:
    result = CliRunner().invoke(
        cli, ["render", "article", "colour=red", "-o", str(tmp_path / "x.png")], env=env
    )
    assert result.exit_code == 1
    assert "colour" in result.output
    assert not (tmp_path / "x.png").exists()


def test_templates_lists_declared_params(env: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["templates", "--json"], env=env)
    assert result.exit_code == 0, result.output
    listed = {t["name"]: t for t in json.loads(result.output)}
    assert sorted(listed) == SHIPPED
    assert {"title", "accent"} <= {p["name"] for p in listed["article"]["params"]}
    text = CliRunner().invoke(cli, ["templates"], env=env).output
    assert "article" in text and "title: str required" in text


def test_templates_shows_defaults_and_limits_truthfully(env: dict[str, str]) -> None:
    listed = json.loads(CliRunner().invoke(cli, ["templates", "--json"], env=env).output)
    article = {p["name"]: p for t in listed if t["name"] == "article" for p in t["params"]}
    assert article["subtitle"]["default"] == ""  # an empty default, not a missing one
    assert article["site"]["default"] == "ogshot"
    assert "default" not in article["title"]
    by_template: dict[str, dict[str, str]] = {}
    for line in CliRunner().invoke(cli, ["templates"], env=env).output.splitlines():
        if line and not line.startswith(" "):
            current = by_template.setdefault(line.split()[0], {})
        elif line.startswith("    "):
            current[line.split(":")[0].strip()] = line.strip()
    lines = {**by_template["minimal"], **by_template["article"]}  # article's own title wins
    assert lines["subtitle"].startswith('subtitle: str default="" max_length=200')
    assert lines["title"].startswith("title: str required max_length=")
    assert lines["size"].startswith("size: int default=84 min=32 max=120")
    assert lines["theme"].startswith('theme: str default="dark" choices=dark|light')
    assert all("None" not in "\n".join(t.values()) for t in by_template.values())


def test_serve_builds_settings_and_starts_uvicorn(env: dict[str, str]) -> None:
    in_workers: list[Settings] = []

    def run(*args: Any, **kwargs: Any) -> None:
        in_workers.append(Settings.load())  # what app_from_env builds in each worker

    # patch.dict: the command hands its settings to workers through os.environ; put it back.
    with mock.patch("uvicorn.run", side_effect=run) as run_mock, mock.patch.dict(os.environ):
        args = ["serve", "--port", "8123", "--workers", "2", "--dev"]
        result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    kwargs = run_mock.call_args.kwargs
    assert run_mock.call_args.args == ("ogshot.app:app_from_env",)
    assert kwargs["factory"] is True and kwargs["port"] == 8123 and kwargs["workers"] == 2
    expected = Settings.load(environ=env, port=8123, dev=True)
    assert in_workers == [expected]
    assert (in_workers[0].dev, in_workers[0].port, in_workers[0].pool_size) == (True, 8123, 1)


def test_serve_workers_get_the_cli_settings(tmp_path: Path) -> None:
    """A real ``ogshot serve --workers 2 --dev``: /preview exists only if the --dev flag reached
    the worker processes, and the image size comes from the config file the CLI read."""
    make_settings(tmp_path)
    (tmp_path / "playwright.config.json").write_text(
        json.dumps({"viewport": {"width": 600, "height": 315}})
    )
    with Server("--workers", "2", "--dev", env=serve_env(tmp_path), cwd=tmp_path) as server:
        for _ in range(4):  # either worker may answer
            assert server.get("/preview").status_code == 200
            listed = server.get("/preview/_api/templates").json()["templates"]
            article = next(t for t in listed if t["name"] == "article")
            assert (article["width"], article["height"]) == (600, 315)
        image = server.get("/og/minimal.png?title=workers")
        assert image.status_code == 200
        assert (image_of(image.content).width, image_of(image.content).height) == (600, 315)
        assert server.terminate() == 0


def test_config_errors_are_clear(env: dict[str, str]) -> None:
    with mock.patch("uvicorn.run") as run:
        result = CliRunner().invoke(cli, ["serve"], env={**env, "OGSHOT_CACHE_SIZE": "huge"})
    assert result.exit_code == 1
    assert "OGSHOT_CACHE_SIZE" in result.output and "huge" in result.output
    run.assert_not_called()


# -- ogshot init, and what a folder without templates says ---------------------------------------


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_init_writes_the_gallery_then_refuses_to_overwrite(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    result = CliRunner().invoke(cli, ["init", str(project)])
    assert result.exit_code == 0, result.output
    for folder in ("html_templates", "static"):  # the repository's files, byte for byte
        assert _tree(project / folder) == _tree(ROOT / folder)
    assert f"cd {project}" in result.output and "ogshot render article" in result.output

    edited = project / "html_templates" / "article.html"
    edited.write_text("mine")
    again = CliRunner().invoke(cli, ["init", str(project)])
    assert again.exit_code == 1
    assert "already exist" in again.output and "--force" in again.output
    assert edited.read_text() == "mine"  # nothing was written

    forced = CliRunner().invoke(cli, ["init", str(project), "--force"])
    assert forced.exit_code == 0, forced.output
    assert edited.read_bytes() == (ROOT / "html_templates" / "article.html").read_bytes()


def test_without_templates_every_command_says_to_run_init(
    tmp_path: Path, env: dict[str, str]
) -> None:
    missing = tmp_path / "nothing-here"
    env = {**env, "OGSHOT_TEMPLATES_DIR": str(missing)}
    listed = CliRunner().invoke(cli, ["templates"], env=env)
    assert listed.exit_code == 1
    assert f"no templates in {missing} (the folder does not exist)" in listed.output
    assert "ogshot init" in listed.output

    missing.mkdir()
    out = tmp_path / "card.png"
    rendered = CliRunner().invoke(cli, ["render", "article", "title=x", "-o", str(out)], env=env)
    assert rendered.exit_code == 1 and not out.exists()
    assert "no template named 'article'" in rendered.output
    assert f"no templates in {missing}:" in rendered.output and "ogshot init" in rendered.output

    with mock.patch("uvicorn.run") as run_mock, mock.patch.dict(os.environ):
        served = CliRunner().invoke(cli, ["serve"], env=env)
    assert served.exit_code == 0, served.output
    assert run_mock.called  # it starts anyway: templates saved later are picked up
    assert f"warning: no templates in {missing}:" in served.output
