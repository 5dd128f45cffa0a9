"""pipeline/jobs.py: an answer is made one way, from the job and what the cache holds."""

from __future__ import annotations

from ogshot.cache.disk import Entry
from ogshot.pipeline.jobs import Image, Job
from ogshot.pipeline.warnings import Warnings, dump_warnings
from ogshot.templates.catalog import Catalog
from tests.support.helpers import ROOT


def test_an_image_takes_its_format_variant_and_version_from_the_job() -> None:
    template = Catalog(ROOT / "html_templates", ROOT / "static").get("article")
    job = Job(template=template, values={"title": "x"}, format="webp", key="k" * 64, variant="b")
    warnings = Warnings(missing_glyphs=(0x2603,), failed_images=("https://img.example/x.png",))
    entry = Entry(b"RIFF....WEBP", "etag1", 1.0, warnings=dump_warnings(warnings))

    hit = Image.of(job, entry, cached=True, timings={"cache": 0.2}, stale=True)
    assert (hit.body, hit.etag, hit.format, hit.cached, hit.stale) == (
        b"RIFF....WEBP",
        "etag1",
        "webp",
        True,
        True,
    )
    assert (hit.variant, hit.version) == ("b", template.version) and len(hit.version) == 10
    assert hit.warnings == warnings  # read back from what the cache stored
    assert hit.content_type == "image/webp"

    made = Image.of(job, entry, cached=False, timings={}, warnings=warnings)
    assert not made.cached and not made.stale and made.warnings is warnings
