"""Installed, not cloned: the wheel, in a virtualenv of its own and run from a folder that is not
the repository, scaffolds a project with ``ogshot init`` and renders from it.

Offline and honest about what is whose: the wheel is built from a copy of the source (pip's build
isolation takes setuptools from the configured index or pip's cache) and installed with
``--no-deps --no-index`` into a new virtualenv without pip or system site-packages. Its
dependencies (Playwright, pyvips, ...) are not downloaded again: one path line in a ``.pth`` file
lets it import them from this test's own environment, read-only. A path line, unlike that
environment's own ``.pth`` files, does not activate its editable install of ogshot, and the test
checks that ``ogshot`` is imported from the new virtualenv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.support.helpers import ROOT, image_of

# What the build needs: the package (its scaffold/ links to the two folders), its metadata.
SOURCES = ("ogshot", "html_templates", "static", "pyproject.toml", "README.md")


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def test_a_wheel_in_a_fresh_virtualenv_scaffolds_and_renders(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("OGSHOT_")}
    env["OGSHOT_CACHE_DIR"] = str(tmp_path / "cache")

    source = tmp_path / "src"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(ROOT / name, source / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy(ROOT / name, source / name)
    dist = tmp_path / "dist"
    _run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(dist)],
        tmp_path,
        env,
    )
    (wheel,) = dist.glob("ogshot-*.whl")

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path, env)
    python = venv / "bin" / "python"
    install = ["--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)]
    _run([sys.executable, "-m", "pip", *install], tmp_path, env)
    purelib = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        tmp_path,
        env,
    ).strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(purelib) / "ogshot-test-deps.pth").write_text("\n".join(sorted(ours)) + "\n")

    work = tmp_path / "work"
    work.mkdir()
    where = _run([str(python), "-c", "import ogshot; print(ogshot.__file__)"], work, env)
    assert Path(where.strip()).is_relative_to(venv), where

    ogshot = str(venv / "bin" / "ogshot")
    said = _run([ogshot, "init", "proj"], work, env)
    project = work / "proj"
    shipped = sorted(
        p.relative_to(ROOT)
        for d in ("html_templates", "static")
        for p in (ROOT / d).rglob("*")
        if p.is_file()
    )
    written = sorted(p.relative_to(project) for p in project.rglob("*") if p.is_file())
    assert written == shipped
    assert "cd proj" in said and "ogshot templates" in said

    listed = _run([ogshot, "templates"], project, env)
    assert "article" in listed and "quote-square" in listed

    _run([ogshot, "render", "article", "title=From a wheel", "-o", "card.png"], project, env)
    data = (project / "card.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = image_of(data)
    assert (image.width, image.height) == (1200, 630)
