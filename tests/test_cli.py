from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import pytest
from click.testing import CliRunner

from ogshot.cli import cli

from .conftest import ROOT, SHIPPED, image_of, make_settings


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


def test_serve_builds_settings_and_starts_uvicorn(env: dict[str, str]) -> None:
    with mock.patch("uvicorn.run") as run:
        result = CliRunner().invoke(cli, ["serve", "--port", "8123", "--workers", "2"], env=env)
    assert result.exit_code == 0, result.output
    kwargs = run.call_args.kwargs
    assert run.call_args.args == ("ogshot.app:app_from_env",)
    assert kwargs["factory"] is True and kwargs["port"] == 8123 and kwargs["workers"] == 2


def test_config_errors_are_clear(env: dict[str, str]) -> None:
    with mock.patch("uvicorn.run") as run:
        result = CliRunner().invoke(cli, ["serve"], env={**env, "OGSHOT_CACHE_SIZE": "huge"})
    assert result.exit_code == 1
    assert "OGSHOT_CACHE_SIZE" in result.output and "huge" in result.output
    run.assert_not_called()
