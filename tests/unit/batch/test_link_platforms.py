"""The platforms' rules on their own: tags and image facts in, findings out."""

from __future__ import annotations

from ogshot.batch.link_platforms import PLATFORMS, ImageFacts, Platform, judge

URL = "https://cdn.example.com/card.png"
TAGS = {
    "og:image": URL,
    "og:image:width": "1200",
    "og:image:height": "630",
    "og:image:alt": "A card",
    "twitter:card": "summary_large_image",
}
BY_NAME = {p.name: p for p in PLATFORMS}


def image(**facts: object) -> ImageFacts:
    values: dict[str, object] = {
        "url": URL,
        "status": 200,
        "content_type": "image/png",
        "size": 90_000,
        "format": "png",
        "width": 1200,
        "height": 630,
    }
    values.update(facts)
    return ImageFacts(**values)  # type: ignore[arg-type]


def codes(platform: Platform, facts: ImageFacts, **tags: str) -> list[tuple[str, str]]:
    verdict = judge(platform, {**TAGS, **tags}, {URL: facts})
    return [(f.level, f.code) for f in verdict.findings]


def test_an_ogshot_default_image_passes_every_platform_without_a_word() -> None:
    for platform in PLATFORMS:
        assert codes(platform, image()) == [], platform.name


def test_whatsapp_fails_at_its_documented_600_kb_and_warns_from_300_kb() -> None:
    whatsapp = BY_NAME["WhatsApp"]
    assert codes(whatsapp, image(size=600_000)) == [("warn", "large")]
    assert codes(whatsapp, image(size=600_001)) == [("fail", "too_large")]
    assert codes(whatsapp, image(size=300_000)) == []


def test_formats_and_shapes() -> None:
    webp = image(format="webp", content_type="image/webp")
    assert codes(BY_NAME["LinkedIn"], webp) == [("fail", "format")]  # reported, third parties
    assert codes(BY_NAME["X"], webp) == []
    svg = image(format="svg", content_type="image/svg+xml")
    assert ("fail", "format") in codes(BY_NAME["Discord"], svg)
    strip = image(width=1300, height=300)
    assert ("fail", "aspect") in codes(BY_NAME["WhatsApp"], strip)
    square = image(width=630, height=630)
    assert ("warn", "cropped") in codes(BY_NAME["X"], square)
    small = image(width=400, height=210)
    assert ("warn", "small_card") in codes(BY_NAME["Facebook"], small)
    assert ("fail", "too_small") not in codes(BY_NAME["X"], small)


def test_the_served_type_must_be_an_image() -> None:
    html = image(content_type="text/html")
    assert ("fail", "content_type") in codes(BY_NAME["Slack"], html)
    assert codes(BY_NAME["Slack"], image(content_type="image/jpeg")) == [("warn", "type_mismatch")]
