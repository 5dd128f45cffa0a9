"""Templates: lookup, declared parameters, validation, HTML, and the digest that keys the cache.

A template is ``html_templates/NAME.html``. It may declare its parameters in a TOML block inside a
Jinja comment at the top of the file (see the README, "Writing templates"):

    {#ogshot
    description = "Blog post card"
    [params.title]
    type = "str"          # str | int | float | bool | color | url | date
    required = true
    max_length = 120
    example = "Hello world"
    #}

Files in sub-folders or starting with ``_`` are partials: usable by ``{% include %}`` and
``{% extends %}``, never addressable as templates. This module knows nothing about browsers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta

from .declarations import DECLARATION as _DECLARATION
from .declarations import DEFAULT_SIZE, Size
from .declarations import parse_declaration as _parse_declaration
from .errors import InvalidParameter, TemplateError, TemplateNotFound
from .fields import PARAM_NAME_RE, TYPES, Param, json_value
from .filters import FILTERS
from .jinja_errors import syntax_error_message

__all__ = ["PARAM_NAME_RE", "TYPES", "Catalog", "Param", "Size", "StaticDigest", "Template"]

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
RESERVED_PARAMS = frozenset({"s"})  # the URL signature


@dataclass(frozen=True, kw_only=True)
class Template:
    name: str
    path: Path
    description: str
    params: Mapping[str, Param]  # empty: undeclared, accepts string parameters
    declared: bool
    source_digest: str  # the file and the partials it references
    digest: str = ""  # source_digest + the static folder: what the cache key uses
    static_digest: str = ""
    files: tuple[tuple[str, int, int], ...] = field(repr=False)  # (path, mtime_ns, size)
    size: Size = DEFAULT_SIZE  # declared in the block, else the settings' size

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "declared": self.declared,
            "params": [p.describe() for p in self.params.values()],
            "size": {
                "width": self.size.width,
                "height": self.size.height,
                "scale": self.size.scale,
                "pixels": list(self.size.pixels),
            },
        }

    def examples(self) -> dict[str, Any]:
        return {
            p.name: p.example if p.example is not None else json_value(p.default)
            for p in self.params.values()
            if p.example is not None or p.default is not None
        }


def file_stats(root: Path) -> dict[str, tuple[int, int]]:
    """path -> (mtime_ns, size) of every file under ``root`` (nothing when it does not exist)."""
    files: dict[str, tuple[int, int]] = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            full = os.path.join(dirpath, name)
            try:
                st = os.stat(full)
            except OSError:
                continue
            files[full] = (st.st_mtime_ns, st.st_size)
    return files


class StaticDigest:
    """Content digest of the static folder, rechecked at most every ``interval`` seconds.

    Only files whose size or mtime changed are read again, so the check is a directory walk.
    """

    def __init__(self, root: Path, *, interval: float = 1.0) -> None:
        self.root = root
        self.interval = interval
        self._files: dict[str, tuple[int, int, str]] = {}
        self._digest = ""
        self._checked = -math.inf
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        self._checked = -math.inf

    def get(self) -> str:
        if time.monotonic() - self._checked < self.interval:
            return self._digest
        with self._lock:
            if time.monotonic() - self._checked >= self.interval:
                self._digest = self._scan()
                self._checked = time.monotonic()
        return self._digest

    def _scan(self) -> str:
        seen: dict[str, tuple[int, int, str]] = {}
        for full, (mtime_ns, size) in file_stats(self.root).items():
            rel = os.path.relpath(full, self.root)
            old = self._files.get(rel)
            if old and old[0] == mtime_ns and old[1] == size:
                seen[rel] = old
                continue
            try:
                content_hash = hashlib.sha256(Path(full).read_bytes()).hexdigest()
            except OSError:
                continue
            seen[rel] = (mtime_ns, size, content_hash)
        self._files = seen
        h = hashlib.sha256()
        for rel in sorted(seen):
            h.update(f"{rel}\0{seen[rel][2]}\n".encode())
        return h.hexdigest()


class Catalog:
    """The templates folder: names, parsed declarations, validation and HTML rendering.

    ``get`` is cheap on the hot path: a template is parsed again only when one of its files
    (itself or a partial it references) changes on disk, found by a stat of each.
    """

    def __init__(
        self,
        templates_dir: Path,
        static_dir: Path,
        *,
        max_params: int = 32,
        max_param_length: int = 1000,
        static_interval: float = 1.0,
        size: Size = DEFAULT_SIZE,
    ) -> None:
        self.root = Path(templates_dir)
        self.size = size  # of a template that declares none
        self.max_params = max_params
        self.max_param_length = max_param_length
        self.static = StaticDigest(Path(static_dir), interval=static_interval)
        loader = jinja2.FileSystemLoader(str(self.root))
        common: dict[str, Any] = {"loader": loader, "autoescape": True, "auto_reload": True}
        self._strict = jinja2.Environment(undefined=jinja2.StrictUndefined, **common)
        self._lenient = jinja2.Environment(**common)
        for env in (self._strict, self._lenient):
            env.filters.update(FILTERS)
        self._loaded: dict[str, Template] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.stem for p in self.root.glob("*.html") if p.is_file() and NAME_RE.match(p.stem)
        )

    def get(self, name: str) -> Template:
        if not NAME_RE.match(name):
            raise TemplateNotFound(name, self.names())
        static = self.static.get()
        cached = self._loaded.get(name)
        if cached is None or not _unchanged(cached.files):
            with self._lock:
                cached = self._load(name)
                self._loaded[name] = cached
        if cached.static_digest != static:
            cached = dataclasses.replace(
                cached,
                static_digest=static,
                digest=hashlib.sha256(f"{cached.source_digest}:{static}".encode()).hexdigest(),
            )
            self._loaded[name] = cached
        return cached

    def _load(self, name: str) -> Template:
        path = self.root / f"{name}.html"
        if not path.is_file():
            raise TemplateNotFound(name, self.names())
        source = _read(path, name)
        description, params, size = _parse_declaration(name, source, self.size)
        files: list[tuple[str, int, int]] = []
        h = hashlib.sha256()
        for dep in self._dependencies(name, source):
            dep_path = self.root / dep
            try:
                st = dep_path.stat()
                content = dep_path.read_bytes()
            except OSError:
                continue  # a missing partial fails at render time, with its name
            files.append((str(dep_path), st.st_mtime_ns, st.st_size))
            h.update(dep.encode() + b"\0" + content + b"\0")
        return Template(
            name=name,
            path=path,
            description=description,
            params=params,
            declared=bool(params) or _DECLARATION.match(source) is not None,
            source_digest=h.hexdigest(),
            files=tuple(files),
            size=size,
        )

    def _dependencies(self, name: str, source: str) -> list[str]:
        """The template file and every partial it references, transitively, in a stable order."""
        order = [f"{name}.html"]
        todo = [(order[0], source)]
        while todo:
            _current, text = todo.pop()
            try:
                ast = self._strict.parse(text)
            except jinja2.TemplateSyntaxError:
                continue  # reported with its line when rendered
            for ref in jinja2.meta.find_referenced_templates(ast):
                if ref is None or ref in order:
                    continue
                order.append(ref)
                ref_path = self.root / ref
                if ref_path.is_file():
                    todo.append((ref, ref_path.read_text(errors="replace")))
        return order

    def validate(self, template: Template, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Raw parameters -> the template's variables; InvalidParameter names the culprit."""
        if len(raw) > self.max_params:
            raise InvalidParameter("*", f"too many parameters ({len(raw)} > {self.max_params})")
        for key in raw:
            if not PARAM_NAME_RE.match(key) or key in RESERVED_PARAMS:
                raise InvalidParameter(key, "not a valid parameter name")
        if not template.declared:
            values: dict[str, Any] = {}
            for key, value in raw.items():
                values[key] = Param(name=key).convert(
                    value, global_max_length=self.max_param_length
                )
            return values
        unknown = sorted(set(raw) - set(template.params))
        if unknown:
            known = ", ".join(template.params) or "none"
            raise InvalidParameter(unknown[0], f"unknown parameter (this template takes: {known})")
        values = {}
        for param in template.params.values():
            if param.name in raw:
                values[param.name] = param.convert(
                    raw[param.name], global_max_length=self.max_param_length
                )
            elif param.required:
                raise InvalidParameter(param.name, "required")
            else:
                values[param.name] = param.default
        return values

    def render_html(self, template: Template, values: Mapping[str, Any]) -> str:
        env = self._strict if template.declared else self._lenient
        try:
            return env.get_template(f"{template.name}.html").render(**values)
        except jinja2.TemplateSyntaxError as exc:
            message, line = syntax_error_message(exc, env, template.name)
            raise TemplateError(message, template=template.name, line=line) from exc
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(
                f"template {template.name!r} references missing {exc.name!r}",
                template=template.name,
            ) from exc
        except Exception as exc:  # UndefinedError, errors raised inside the template, ...
            raise TemplateError(
                f"{type(exc).__name__} in {template.name}.html{_line_suffix(exc)}: {exc}",
                template=template.name,
                line=_template_line(exc),
            ) from exc


def canonical_params(values: Mapping[str, Any]) -> str:
    """The stable text form of validated values, for cache keys and signatures."""
    return json.dumps(
        values, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=json_value
    )


def _read(path: Path, name: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"cannot read {path.name}: {exc}", template=name) from exc


def _unchanged(files: tuple[tuple[str, int, int], ...]) -> bool:
    for path, mtime_ns, size in files:
        try:
            st = os.stat(path)
        except OSError:
            return False
        if st.st_mtime_ns != mtime_ns or st.st_size != size:
            return False
    return True


def _template_line(exc: BaseException) -> int | None:
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(".html"):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _line_suffix(exc: BaseException) -> str:
    line = _template_line(exc)
    return f" line {line}" if line else ""
