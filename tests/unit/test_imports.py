"""What importing ogshot costs: a web app that only builds image URLs loads neither Playwright nor
pyvips. Each check runs in a fresh interpreter, since this one has imported everything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

import ogshot
from ogshot.core.settings import Settings
from ogshot.templates.catalog import Catalog
from ogshot.templates.signing import signed_path
from tests.support.helpers import ROOT

# Python text: the heavy modules the interpreter has loaded.
HEAVY = "[m for m in sys.modules if m.split('.')[0] in ('playwright', 'pyvips')]"


def run(code: str, **env: str) -> Any:
    """Run ``code`` in a new interpreter; it prints one JSON value, returned here."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OGSHOT_")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_import_ogshot_loads_no_browser_and_no_image_library() -> None:
    loaded = run(f"import json, sys, ogshot\nprint(json.dumps({HEAVY}))")
    assert loaded == []


def test_sign_url_loads_no_browser_and_no_image_library() -> None:
    out = run(
        "import json, sys\n"
        "from ogshot import sign_url\n"
        "url = sign_url('article', {'title': 'Hello', 'n': 3}, 'webp', base='https://og.test')\n"
        f"heavy = {HEAVY}\n"
        "print(json.dumps({'url': url, 'heavy': heavy}))",
        OGSHOT_SECRET="first,second",
        OGSHOT_CONFIG=str(ROOT / "playwright.config.json"),
    )
    assert out["heavy"] == []
    settings = Settings.load(environ={}, config_file=None, secrets=("first",))
    version = Catalog(ROOT / "html_templates", ROOT / "static").get("article").version
    expected = signed_path(settings, "article", {"title": "Hello", "n": 3, "v": version}, "webp")
    assert out["url"] == "https://og.test" + expected
    assert "&s=" in out["url"]


def test_the_lazy_names_are_the_real_ones() -> None:
    from ogshot.app import create_app
    from ogshot.core.errors import OgshotError
    from ogshot.pipeline.renderer import Image, Renderer

    assert ogshot.Settings is Settings and ogshot.create_app is create_app
    assert ogshot.Renderer is Renderer and ogshot.Image is Image
    assert ogshot.OgshotError is OgshotError
    assert set(ogshot.__all__) <= set(dir(ogshot))
    for name in ogshot.__all__:
        assert getattr(ogshot, name) is not None
    with pytest.raises(AttributeError, match="no_such_name"):
        ogshot.no_such_name  # noqa: B018


def test_each_public_name_imports_in_a_fresh_interpreter() -> None:
    names = run(
        "import json, ogshot\n"
        "from ogshot import Image, OgshotError, Renderer, Settings, create_app, __version__\n"
        "print(json.dumps([Image.__name__, OgshotError.__name__, Renderer.__name__,"
        " Settings.__name__, create_app.__name__, __version__]))"
    )
    expected = ["Image", "OgshotError", "Renderer", "Settings", "create_app"]
    assert names == [*expected, ogshot.__version__]
