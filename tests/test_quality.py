"""The project's own checks, so CI runs them: ruff, strict mypy and the import layers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.helpers import ROOT


def test_ruff() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "ogshot", "tests", "benchmarks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_mypy() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_import_layers() -> None:
    """The contracts in pyproject.toml: each layer imports only what is below it, and core and
    templates import neither Playwright nor pyvips (import-linter)."""
    run = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout
