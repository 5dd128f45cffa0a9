"""The documentation site builds with ``mkdocs build --strict``: a link to a missing page or
anchor fails, and the generated reference pages hold every setting, command and metric."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from ogshot.cli import cli
from ogshot.core.settings import env_vars

ROOT = Path(__file__).resolve().parent.parent


def _mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = _mkdocs_build(ROOT / "mkdocs.yml", out)
    assert result.returncode == 0, result.stderr
    return out


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


def test_every_environment_variable_is_in_the_configuration_reference(site: Path) -> None:
    page = _text((site / "reference" / "configuration" / "index.html").read_text())
    missing = {var.name for var in env_vars()} - set(re.findall(r"OGSHOT_[A-Z0-9_]+", page))
    assert not missing, f"add these to docs/hooks/settings_help.toml: {sorted(missing)}"


def test_every_command_and_option_is_in_the_cli_reference(site: Path) -> None:
    page = _text((site / "reference" / "cli" / "index.html").read_text())
    context = click.Context(cli, info_name="ogshot")
    for name in cli.list_commands(context):
        assert f"ogshot {name}" in page
        command = cli.get_command(context, name)
        assert command is not None
        for param in command.params:
            if isinstance(param, click.Option):
                assert all(opt in page for opt in param.opts), (name, param.opts)


def test_every_metric_is_in_the_metrics_reference(site: Path) -> None:
    from prometheus_client import CollectorRegistry

    from ogshot.ops.metrics import Metrics

    metrics = Metrics()
    assert isinstance(metrics.registry, CollectorRegistry)
    # A scrape names a counter family NAME_total.
    exposed = {
        family.name + ("_total" if family.type == "counter" else "")
        for family in metrics.registry.collect()
    }
    page = _text((site / "reference" / "metrics" / "index.html").read_text())
    assert len(exposed) > 10
    assert exposed <= set(re.findall(r"ogshot_[a-z_]+", page))


def test_every_route_is_in_the_http_reference(site: Path) -> None:
    from starlette.routing import BaseRoute

    from ogshot.app import create_app
    from ogshot.core.settings import Settings

    app = create_app(Settings(dev=True, metrics=True))  # built, never started
    routes: list[BaseRoute] = app.routes
    paths = {re.sub(r":\w+}", "}", getattr(route, "path", "")) for route in routes}
    page = _text((site / "reference" / "http" / "index.html").read_text())
    assert "/og/{file}" in paths and "/preview/_events" in paths
    assert not {path for path in paths if path not in page}


def test_a_broken_anchor_fails_the_strict_build(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    index = tmp_path / "docs" / "index.md"
    index.write_text(index.read_text() + "\n[gone](architecture.md#no-such-heading)\n")
    result = _mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0
    assert "no-such-heading" in result.stderr


def test_no_absolute_path_of_a_machine_in_the_docs() -> None:
    pages = [ROOT / "README.md", ROOT / "mkdocs.yml", *sorted((ROOT / "docs").rglob("*.md"))]
    for page in pages:
        found = re.findall(r"(?<![\w.~])/(?:work|home|root|Users)/\S*", page.read_text())
        assert not found, f"{page.relative_to(ROOT)}: {found}"
