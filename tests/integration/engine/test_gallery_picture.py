"""benchmarks/gallery.py over a user's templates: one that cannot be drawn at its examples is left
out with the reason, never a traceback that loses the others."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from benchmarks.gallery import render_examples
from ogshot.app import create_app
from tests.support.helpers import image_of, make_settings

NO_EXAMPLE = """{#ogshot
[params.title]
type = "str"
required = true
#}<html><body style="margin:0;background:#123456"><h1>{{ title }}</h1></body></html>
"""


def test_a_template_without_examples_is_left_out_with_its_reason(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    (settings.templates_dir / "mine.html").write_text(NO_EXAMPLE)
    with TestClient(create_app(settings)) as client:
        shots, skipped = render_examples(client)
    assert set(skipped) == {"mine"}
    assert "title" in skipped["mine"] and "example" in skipped["mine"]
    assert "article" in shots and "mine" not in shots
    assert (image_of(shots["article"]).width, image_of(shots["article"]).height) == (1200, 630)
