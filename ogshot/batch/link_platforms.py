"""What each platform that unfurls links needs from a page's card, and the judging of one page
against it. Pure: the page's tags and what was learnt about its image go in, findings come out.

The facts are those of the platform table (``OG-PLATFORMS.md``, the docs' "Link check" guide):
documented limits fail a card, third-party reports and recommendations warn. Byte limits are
decimal (``600 KB`` = 600,000 bytes): the stricter reading of the platforms' own words.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

__all__ = [
    "PLATFORMS",
    "Finding",
    "ImageFacts",
    "Platform",
    "Verdict",
    "image_url",
    "judge",
]

Level = Literal["fail", "warn"]
Say = Callable[[str, str], None]  # (code, message): records a finding of one level


@dataclass(frozen=True)
class Finding:
    """One problem: ``fail`` means the platform would not show the card (or shows no image)."""

    level: Level
    code: str  # stable snake_case name, for scripts (--json) and tests
    message: str


@dataclass(frozen=True, kw_only=True)
class ImageFacts:
    """What fetching the image found. ``error``: it could not be fetched at all."""

    url: str
    status: int | None = None
    content_type: str = ""
    size: int | None = None  # bytes read
    truncated: bool = False  # more than the fetch's cap: ``size`` is a lower bound
    format: str | None = None  # decoded: jpeg png webp gif avif svg ...; None: not an image
    width: int | None = None
    height: int | None = None
    error: str = ""


@dataclass(frozen=True, kw_only=True)
class Platform:
    name: str
    max_bytes: int | None = None  # documented; over it the image is not shown
    formats: frozenset[str] | None = None  # documented as shown; None: not documented
    reported_unshown: frozenset[str] = frozenset()  # reported not shown (third parties)
    min_width: int = 0  # below: no image
    min_height: int = 0
    max_side: int | None = None
    max_aspect: float | None = None  # width / height above this: no image
    large_card: tuple[int, int] | None = None  # below: a small card only
    shown_aspect: float | None = None  # shown at this aspect, centre-cropped
    reads_size_tags: bool = False  # lays the card out from og:image:width/height
    twitter_card: Literal["required", "large_only", "ignored"] = "ignored"
    prefers_twitter_tags: bool = False  # twitter:image before og:image
    alt_max: int | None = None
    soft_bytes: int | None = None  # over it: a warning (see the platform's note)


KB, MB = 1000, 1000 * 1000

PLATFORMS: tuple[Platform, ...] = (
    Platform(
        name="X",
        max_bytes=5 * MB,
        formats=frozenset({"jpeg", "png", "webp", "gif"}),
        min_width=300,
        min_height=157,
        max_side=4096,
        shown_aspect=2.0,
        twitter_card="required",
        prefers_twitter_tags=True,
        alt_max=420,
    ),
    Platform(
        name="Facebook",
        max_bytes=8 * MB,
        formats=frozenset({"jpeg", "png", "gif", "webp"}),  # WebP: shown, though undocumented
        large_card=(600, 315),
        reads_size_tags=True,
    ),
    Platform(
        name="LinkedIn",
        max_bytes=5 * MB,
        reported_unshown=frozenset({"webp"}),
        large_card=(1200, 627),
    ),
    Platform(name="Slack"),
    Platform(
        name="Discord",
        max_bytes=50 * MB,
        formats=frozenset({"png", "gif", "jpeg", "webp", "avif"}),
        reads_size_tags=True,
        twitter_card="large_only",
    ),
    # Meta documents < 600 KB; previews above ~300 KB are widely reported to fail on slow
    # phones (the image is fetched by the sender's phone), so that is a warning.
    Platform(
        name="WhatsApp",
        max_bytes=600 * KB,
        soft_bytes=300 * KB,
        min_width=300,
        max_aspect=4.0,
    ),
    Platform(name="Telegram", reported_unshown=frozenset({"avif"})),
    Platform(name="iMessage", max_bytes=10 * MB, large_card=(900, 0)),
    Platform(
        name="Mastodon",
        max_bytes=8 * MB,  # 8 MB on servers with libvips, 2 MB on the others
        soft_bytes=2 * MB,
        formats=frozenset({"jpeg", "png", "gif", "webp"}),
    ),
    Platform(name="Bluesky", max_bytes=1_000_000),
)


@dataclass(frozen=True)
class Verdict:
    platform: str
    findings: tuple[Finding, ...]

    @property
    def shows(self) -> bool:
        return not any(f.level == "fail" for f in self.findings)


def image_url(tags: Mapping[str, str], platform: Platform) -> tuple[str, str] | None:
    """(the tag, its value) the platform takes the image from; None when there is none."""
    order: tuple[str, ...] = ("og:image", "og:image:url")
    if platform.prefers_twitter_tags:
        order = ("twitter:image", "og:image")
    for tag in order:
        if tags.get(tag):
            return tag, tags[tag]
    return None


def judge(platform: Platform, tags: Mapping[str, str], images: Mapping[str, ImageFacts]) -> Verdict:
    """The platform's verdict on a page with these tags; ``images``: what each image URL (as
    the page wrote it) gave when fetched."""
    found: list[Finding] = []

    def fail(code: str, text: str) -> None:
        found.append(Finding("fail", code, text))

    def warn(code: str, text: str) -> None:
        found.append(Finding("warn", code, text))

    source = image_url(tags, platform)
    if source is None:
        fail("no_image", "no og:image tag: no picture")
        return Verdict(platform.name, tuple(found))
    tag, url = source
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        what = "a relative URL" if not scheme else f"a {scheme}: URL"
        code = "relative_url" if not scheme else "bad_scheme"
        fail(code, f"{tag} is {what} ({url}); use an absolute https:// URL")
        return Verdict(platform.name, tuple(found))
    if scheme == "http":
        warn("http_image", f"{tag} is http, not https")
    image = images.get(url)
    if image is None or image.error:
        fail("unreachable", f"image could not be fetched: {image.error if image else 'not tried'}")
        return Verdict(platform.name, tuple(found))
    if image.status not in (200, 206):
        fail("unreachable", f"image answered {image.status}")
        return Verdict(platform.name, tuple(found))
    _judge_bytes(platform, image, fail, warn)
    if not image.content_type.startswith("image/"):
        fail("content_type", f"image is served as {image.content_type or 'no type'}, not image/*")
    if image.format is None:
        fail("not_an_image", "the image's bytes are not an image")
        return Verdict(platform.name, tuple(found))
    _judge_format(platform, image, fail, warn)
    _judge_size(platform, image, fail, warn)
    _judge_tags(platform, tags, image, fail, warn)
    return Verdict(platform.name, tuple(found))


def _judge_bytes(platform: Platform, image: ImageFacts, fail: Say, warn: Say) -> None:
    size = image.size or 0
    more = "more than " if image.truncated else ""
    if platform.max_bytes is not None and size > platform.max_bytes:
        fail(
            "too_large",
            f"image is {more}{size:,} bytes; {platform.name} takes at most {platform.max_bytes:,}",
        )
    elif platform.soft_bytes is not None and size > platform.soft_bytes:
        warn(
            "large",
            f"image is {size:,} bytes; over {platform.soft_bytes:,} it is often not shown",
        )


def _judge_format(platform: Platform, image: ImageFacts, fail: Say, warn: Say) -> None:
    fmt = image.format or ""
    declared = image.content_type.split(";")[0].strip().lower()
    if declared.startswith("image/") and _FORMAT_OF_TYPE.get(declared, declared[6:]) != fmt:
        warn("type_mismatch", f"served as {declared} but the bytes are {fmt}")
    if fmt == "svg":
        fail("format", "SVG images are not shown; use PNG or JPEG")
    elif fmt in platform.reported_unshown:
        fail("format", f"{fmt} images are reported not to be shown (third parties); use PNG, JPEG")
    elif platform.formats is not None and fmt not in platform.formats:
        shown = ", ".join(sorted(platform.formats))
        fail("format", f"{fmt} is not a format {platform.name} shows ({shown})")


def _judge_size(platform: Platform, image: ImageFacts, fail: Say, warn: Say) -> None:
    width, height = image.width or 0, image.height or 0
    if not (width and height):
        warn("no_size", "the image's dimensions could not be read")
        return
    if width < platform.min_width or height < platform.min_height:
        fail(
            "too_small",
            f"image is {width}x{height}; at least {platform.min_width}x{platform.min_height}",
        )
    if platform.max_side is not None and max(width, height) > platform.max_side:
        fail("too_big", f"image is {width}x{height}; at most {platform.max_side} a side")
    if platform.max_aspect is not None and width / height > platform.max_aspect:
        fail("aspect", f"image is {width}x{height}, wider than {platform.max_aspect:g}:1")
    if platform.large_card is not None:
        min_w, min_h = platform.large_card
        if width < min_w or height < min_h:
            least = f"{min_w} px wide" if not min_h else f"{min_w}x{min_h}"
            warn("small_card", f"image is {width}x{height}; below {least} a small card is shown")
    if platform.shown_aspect is not None:
        lost = _cropped(width, height, platform.shown_aspect)
        if lost >= 0.05:
            warn(
                "cropped",
                f"shown at {platform.shown_aspect:g}:1, centre-cropped: {lost:.0%} of it is cut",
            )


def _judge_tags(
    platform: Platform, tags: Mapping[str, str], image: ImageFacts, fail: Say, warn: Say
) -> None:
    for axis, actual in (("width", image.width), ("height", image.height)):
        declared = tags.get(f"og:image:{axis}")
        if declared is None:
            if platform.reads_size_tags:
                warn("no_size_tags", f"no og:image:{axis}: the image is measured before shown")
            continue
        if declared.strip() != str(actual):
            say = fail if platform.reads_size_tags else warn
            say(f"{axis}_mismatch", f"og:image:{axis} says {declared}, the image is {actual}")
    alt = (platform.prefers_twitter_tags and tags.get("twitter:image:alt")) or tags.get(
        "og:image:alt"
    )
    if not alt:
        warn("no_alt", "no og:image:alt: the image has no description for screen readers")
    elif platform.alt_max is not None and len(alt) > platform.alt_max:
        warn("alt_too_long", f"image alt is {len(alt)} characters; {platform.alt_max} are kept")
    card = tags.get("twitter:card")
    if platform.twitter_card == "required" and not card:
        fail("twitter_card_missing", "no twitter:card: X shows no card; add summary_large_image")
    elif platform.twitter_card != "ignored" and card != "summary_large_image":
        warn(
            "small_twitter_card",
            f"twitter:card is {card or 'missing'}: only a thumbnail; use summary_large_image",
        )


def _cropped(width: int, height: int, aspect: float) -> float:
    """The share of the image cut off when it is centre-cropped to ``aspect``."""
    ratio = width / height
    return 1 - min(ratio, aspect) / max(ratio, aspect)


_FORMAT_OF_TYPE = {"image/jpg": "jpeg", "image/svg+xml": "svg", "image/x-png": "png"}
