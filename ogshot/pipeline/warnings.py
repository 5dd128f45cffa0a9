"""What a render could not draw: characters no font has (tofu), images that did not load, and
stylesheets, scripts, fonts or frames that were refused or missing (failed resources).

Missing glyphs are found by a cmap check, not by asking Chromium which fonts it used:

- In the page, one ``Runtime.evaluate`` after the page is ready walks the visible text nodes and
  returns the distinct code points above ASCII (and the ``<img>`` elements that failed to decode).
- Here, each code point is looked up in the union of the character sets of every font Chromium can
  fall back to: the fonts fontconfig knows (read once with ``fc-list``, off the event loop) and the
  font files of the static folder (``fc-query``, again whenever the folder changes). Chromium on
  Linux finds its fallback fonts through fontconfig, so a code point that no font there has is
  exactly one it draws as a missing-glyph box.

``CSS.getPlatformFontsForNode`` cannot tell: for a character with no font it still names the
primary font with a glyph count, and it needs ``DOM.getDocument`` plus one call per element; the
check here is one call per render (measured in the README, "Missing glyphs and images").

Whitespace, controls, format characters (ZWJ, ZWNJ, direction marks), variation selectors and tag
characters are never reported: they have no glyph of their own, and an emoji ZWJ sequence with a
skin tone is drawn from the emoji font's ligatures.

Failed images come from two places: the page's router records every image request it refused or
answered 404 (:meth:`Document.failed_image <ogshot.engine.page.Document.failed_image>`), and the
probe reports ``<img>`` elements that finished without pixels (a file that is not an image).
Failed resources come from the router alone (:meth:`Document.failed_resource
<ogshot.engine.page.Document.failed_resource>`): a ``<link rel=stylesheet>`` to a CDN that network
isolation refuses, a ``/static/`` file that does not exist. Without them the page renders unstyled
with a 200, so they are reported like a failed image, and strict mode refuses the render.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
import os
import re
import subprocess
import threading
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ogshot.core.errors import Unrenderable
from ogshot.core.events import Events
from ogshot.core.settings import Settings

if TYPE_CHECKING:
    from ogshot.engine.capture import Capture
    from ogshot.templates.catalog import Template

__all__ = [
    "KINDS",
    "NO_WARNINGS",
    "PAGE_ORIGIN",
    "Coverage",
    "GlyphCheck",
    "Warnings",
    "dump_warnings",
    "load_warnings",
    "parse_charset",
]

log = logging.getLogger("ogshot")

FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".woff", ".woff2")
MAX_HEADER = 400  # characters of X-Ogshot-Warning
MAX_LISTED = 16  # characters or URLs named in a header or log line
_FC_TIMEOUT = 30.0  # seconds for fc-list / fc-query


def ignorable(code: int) -> bool:
    """A code point that needs no glyph: whitespace, controls, format characters (ZWJ, marks
    of direction), variation selectors, tag characters."""
    if 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF or 0xE0000 <= code <= 0xE007F:
        return True
    return unicodedata.category(chr(code)) in ("Cc", "Cf", "Zs", "Zl", "Zp")


def parse_charset(text: str) -> list[tuple[int, int]]:
    """fontconfig's ``%{charset}`` (``20-7e a0 100-17f``) -> inclusive (first, last) ranges."""
    ranges: list[tuple[int, int]] = []
    for part in text.split():
        first, _, last = part.partition("-")
        try:
            ranges.append((int(first, 16), int(last or first, 16)))
        except ValueError:
            continue
    return ranges


class Coverage:
    """The code points some font Chromium can use has a glyph for."""

    def __init__(self, ranges: Iterable[tuple[int, int]] = ()) -> None:
        self._system = _merge(ranges)
        self._static: list[tuple[int, int]] = []
        self._static_key: tuple[tuple[str, int, int], ...] = ()
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._lock = threading.Lock()
        self._rebuild()

    @classmethod
    def installed(cls) -> Coverage:
        """Every font fontconfig lists. Blocking (~50-200 ms): call it in a thread, once."""
        try:
            result = subprocess.run(
                ["fc-list", "--format", "%{charset}\n"],
                capture_output=True,
                text=True,
                timeout=_FC_TIMEOUT,
                check=True,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("cannot list the installed fonts (%s): missing glyphs go unreported", exc)
            return cls(_EVERYTHING)
        return cls(r for line in result.stdout.splitlines() for r in parse_charset(line))

    def use_static(self, static_dir: Path) -> None:
        """Add the font files of the static folder (web fonts a template loads with @font-face);
        re-read only when a font file changed. Blocking: call it in a thread."""
        files = []
        for dirpath, _dirs, names in os.walk(static_dir):
            for name in names:
                if name.lower().endswith(FONT_SUFFIXES):
                    path = os.path.join(dirpath, name)
                    try:
                        st = os.stat(path)
                    except OSError:
                        continue
                    files.append((path, st.st_mtime_ns, st.st_size))
        key = tuple(sorted(files))
        if key == self._static_key:
            return
        ranges: list[tuple[int, int]] = []
        for path, _mtime, _size in key:
            ranges.extend(_query(path))
        with self._lock:
            self._static = _merge(ranges)
            self._static_key = key
            self._rebuild()

    def covers(self, code: int) -> bool:
        at = bisect.bisect_right(self._starts, code) - 1
        return at >= 0 and code <= self._ends[at]

    def missing(self, codes: Iterable[int]) -> list[int]:
        """The code points of ``codes`` that would be drawn as tofu, sorted."""
        return sorted(c for c in set(codes) if not ignorable(c) and not self.covers(c))

    def _rebuild(self) -> None:
        merged = _merge([*self._system, *self._static])
        self._starts = [first for first, _ in merged]
        self._ends = [last for _, last in merged]


_EVERYTHING = [(0, 0x10FFFF)]  # without fontconfig nothing is known: report nothing


def _merge(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            if last > merged[-1][1]:
                merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return merged


def _query(path: str) -> list[tuple[int, int]]:
    try:
        result = subprocess.run(
            ["fc-query", "--format", "%{charset}\n", path],
            capture_output=True,
            text=True,
            timeout=_FC_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("cannot read the font %s: %s", path, exc)
        return []
    return [r for line in result.stdout.splitlines() for r in parse_charset(line)]


# -- what a render reports -----------------------------------------------------------------------


@dataclass(frozen=True)
class Warnings:
    """What one render could not draw. Empty (false) for a clean render."""

    missing_glyphs: tuple[int, ...] = ()  # code points, sorted
    failed_images: tuple[str, ...] = ()  # URLs, in the order they failed
    failed_resources: tuple[str, ...] = ()  # stylesheets, scripts, fonts, frames: URLs

    def __bool__(self) -> bool:
        return bool(self.missing_glyphs or self.failed_images or self.failed_resources)

    @property
    def kinds(self) -> list[str]:
        """Metric labels: ``missing_glyphs``, ``failed_images``, ``failed_resources``."""
        return [k for k in KINDS if getattr(self, k)]

    def header(self) -> str:
        """``missing-glyphs U+E000 U+17000; failed-images /static/img/nope.png``: ASCII, one
        line, at most MAX_HEADER characters."""
        parts = []
        if self.missing_glyphs:
            glyphs = _listed([_u(c) for c in self.missing_glyphs])
            parts.append("missing-glyphs " + " ".join(glyphs))
        if self.failed_images:
            images = _listed([_url(u) for u in self.failed_images])
            parts.append("failed-images " + " ".join(images))
        if self.failed_resources:
            resources = _listed([_url(u) for u in self.failed_resources])
            parts.append("failed-resources " + " ".join(resources))
        text = "; ".join(parts)
        return text if len(text) <= MAX_HEADER else text[: MAX_HEADER - 3] + "..."

    def by_parameter(self, values: Mapping[str, Any]) -> dict[str, list[str]]:
        """parameter -> what its value holds of the warnings: the missing characters (``U+E000``)
        in its text, or the failed image URL it gave."""
        found: dict[str, list[str]] = {}
        for name, value in values.items():
            if not isinstance(value, str) or not value:
                continue
            hits = [_u(c) for c in self.missing_glyphs if chr(c) in value]
            if "/" in value:  # a URL or path parameter: the image or resource it named
                failed = (*self.failed_images, *self.failed_resources)
                hits += [u for u in failed if u == value or u.endswith(value)]
            if hits:
                found[name] = hits
        return found

    def to_json(self, values: Mapping[str, Any] | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "missing_glyphs": [_u(c) for c in self.missing_glyphs][: MAX_LISTED * 4],
            "failed_images": [u[:300] for u in self.failed_images][:MAX_LISTED],
            "failed_resources": [u[:300] for u in self.failed_resources][:MAX_LISTED],
        }
        if values is not None:
            data["parameters"] = self.by_parameter(values)
        return data

    def message(self) -> str:
        parts = []
        if self.missing_glyphs:
            listed = ", ".join(_listed([_u(c) for c in self.missing_glyphs]))
            parts.append(f"no installed font can draw {listed}")
        if self.failed_images:
            parts.append(f"images failed to load: {', '.join(_listed(list(self.failed_images)))}")
        if self.failed_resources:
            listed = ", ".join(_listed(list(self.failed_resources)))
            parts.append(
                f"stylesheets, scripts, fonts or frames were refused or not found: {listed} "
                "(pages reach no network: put the file in the static folder)"
            )
        return "; ".join(parts)


NO_WARNINGS = Warnings()
KINDS = ("missing_glyphs", "failed_images", "failed_resources")  # bounded metric label values


def dump_warnings(warnings: Warnings) -> str:
    """Warnings as compact text, kept with the cached image in every cache layer ("" if none)."""
    if not warnings:
        return ""
    return json.dumps(
        [
            list(warnings.missing_glyphs),
            list(warnings.failed_images),
            list(warnings.failed_resources),
        ],
        separators=(",", ":"),
    )


def load_warnings(text: str) -> Warnings:
    if not text:
        return NO_WARNINGS
    try:
        glyphs, images, *rest = json.loads(text)  # entries from before resources have two
        resources = rest[0] if rest else []
        return Warnings(
            missing_glyphs=tuple(int(c) for c in glyphs),
            failed_images=tuple(map(str, images)),
            failed_resources=tuple(map(str, resources)),
        )
    except (ValueError, TypeError):
        return NO_WARNINGS


def _u(code: int) -> str:
    return f"U+{code:04X}"


def _listed(items: list[str]) -> list[str]:
    if len(items) <= MAX_LISTED:
        return items
    return [*items[:MAX_LISTED], f"(+{len(items) - MAX_LISTED} more)"]


PAGE_ORIGIN = re.compile(r"^https?://ogshot\.invalid(?=/)")  # left out of URLs shown


def _url(url: str) -> str:
    """A URL for a header: the page's own origin left out, ASCII only, no spaces or ``;``."""
    short = PAGE_ORIGIN.sub("", url)
    if short.startswith("data:"):
        short = short[:40] + "..."
    ascii_only = short.encode("ascii", "backslashreplace").decode()
    return ascii_only.replace(" ", "%20").replace(";", "%3B")


class GlyphCheck:
    """Per render: what no font could draw and which images failed, logged and counted; with
    ``strict`` an :class:`~ogshot.core.errors.Unrenderable` instead of an image."""

    def __init__(self, settings: Settings, metrics: Events | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.coverage: Coverage | None = None  # read by start(), off the loop
        self._fonts_digest: str | None = None

    async def start(self) -> None:
        self.coverage = await asyncio.to_thread(Coverage.installed)

    async def check(self, template: Template, values: Mapping[str, Any], shot: Capture) -> Warnings:
        if self.coverage is None:
            return Warnings(
                failed_images=tuple(shot.failed_images),
                failed_resources=tuple(shot.failed_resources),
            )
        if shot.codes and self._fonts_digest != template.static_digest:
            # The static folder changed: its web fonts may draw other characters now.
            await asyncio.to_thread(self.coverage.use_static, self.settings.static_dir)
            self._fonts_digest = template.static_digest
        warnings = Warnings(
            missing_glyphs=tuple(self.coverage.missing(shot.codes)),
            failed_images=tuple(shot.failed_images),
            failed_resources=tuple(shot.failed_resources),
        )
        if not warnings:
            return warnings
        name = template.name
        log.warning("render of template %r: %s", name, warnings.message())
        if self.metrics is not None:
            for kind in warnings.kinds:
                self.metrics.render_warning(name, kind)
        if self.settings.strict:
            detail: dict[str, Any] = {"template": name, **warnings.to_json(values)}
            culprits = detail["parameters"]
            if culprits:
                detail["parameter"] = next(iter(culprits))
            if self.metrics is not None:
                self.metrics.render_failed(name, Unrenderable.kind)
            raise Unrenderable(f"template {name!r}: {warnings.message()}", detail=detail)
        return warnings
