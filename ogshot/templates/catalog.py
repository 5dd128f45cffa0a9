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

import concurrent.futures
import contextlib
import dataclasses
import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta

from ogshot.core.errors import InvalidParameter, TemplateError, TemplateNotFound
from ogshot.core.suggest import closest
from ogshot.templates.declarations import DECLARATION as _DECLARATION
from ogshot.templates.declarations import DEFAULT_SIZE, Size
from ogshot.templates.declarations import read_declaration as _read_declaration
from ogshot.templates.digests import StaticDigest, file_stats, relative_to
from ogshot.templates.fields import PARAM_NAME_RE, RESERVED_PARAMS, TYPES, Param, json_value
from ogshot.templates.filters import FILTERS
from ogshot.templates.jinja_errors import syntax_error_message
from ogshot.templates.tailwind import Tailwind, inline
from ogshot.templates.tailwind import version as tailwind_version
from ogshot.templates.variants import Variants
from ogshot.templates.versions import version_of

__all__ = [
    "PARAM_NAME_RE",
    "TYPES",
    "Catalog",
    "Param",
    "Size",
    "StaticDigest",
    "Template",
    "file_stats",
]

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_COMPILERS = 4  # Tailwind CLIs run at once when many templates need CSS (a first start)


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
    # The Jinja environment of the same snapshot: renders exactly the sources that were digested.
    environment: jinja2.Environment = field(repr=False, compare=False)
    variants: Variants | None = None  # A/B variants, chosen per page (see variants.py)
    size: Size = DEFAULT_SIZE  # declared in the block, else the settings' size
    # The template file and the partials it references (keys of the snapshot's sources).
    dependencies: tuple[str, ...] = ()
    tailwind: bool = False  # declared ``tailwind = true``: ``css`` is compiled for it
    css: str = field(default="", repr=False)  # inlined into every document it renders
    max_kb: int | None = None  # the declared default byte budget (budgets.py)

    @property
    def version(self) -> str:
        """What versioned URLs carry as ``v`` (freshness.py): changes whenever ``digest`` does."""
        return version_of(self.digest)

    def describe(self) -> dict[str, Any]:
        out = {
            "name": self.name,
            "version": self.version,
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
        if self.variants is not None:
            out["variants"] = self.variants.describe()
        if self.tailwind:
            out["tailwind"] = True
        if self.max_kb is not None:
            out["max_kb"] = self.max_kb
        return out

    def examples(self) -> dict[str, Any]:
        return {
            p.name: p.example if p.example is not None else json_value(p.default)
            for p in self.params.values()
            if p.example is not None or p.default is not None
        }


class _Sources(jinja2.BaseLoader):
    """Jinja's loader over the snapshot's sources in memory: rendering never reads the disk."""

    def __init__(self, root: Path, sources: Mapping[str, str]) -> None:
        self.root = root
        self.sources = sources

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        key = _source_key(template)
        if key is None or key not in self.sources:
            raise jinja2.TemplateNotFound(template)
        return self.sources[key], str(self.root / key), lambda: True

    def list_templates(self) -> list[str]:
        return sorted(self.sources)


@dataclass(frozen=True)
class _Snapshot:
    """The templates folder as read at one moment, parsed and digested; replaced, never mutated."""

    names: tuple[str, ...]
    templates: Mapping[str, Template | TemplateError]


class Catalog:
    """The templates folder: names, parsed declarations, validation and HTML rendering.

    Everything is read ahead of time by :meth:`refresh` (blocking: the server runs it in a thread
    at start and each time the file watcher reports a change), so :meth:`get` on the request path
    only looks in memory. Jinja renders from that same snapshot, never from the disk.
    """

    def __init__(
        self,
        templates_dir: Path,
        static_dir: Path,
        *,
        max_params: int = 32,
        max_param_length: int = 1000,
        size: Size = DEFAULT_SIZE,
        css_cache: Path | None = None,
        compile_css: bool = True,
    ) -> None:
        """``css_cache``: where Tailwind templates' compiled CSS is kept (None: not kept).
        ``compile_css=False``: versions and validation only, no CSS (what ``sign_url`` needs: it
        must not run Tailwind in a web app's process)."""
        self.root = Path(templates_dir)
        self.size = size  # of a template that declares none
        self.max_params = max_params
        self.max_param_length = max_param_length
        self.static = StaticDigest(Path(static_dir))
        self.tailwind = Tailwind(Path(static_dir), css_cache)
        self.compile_css = compile_css
        self._read_snapshot: _Snapshot | None = None  # as read: before digests and CSS
        self._snapshot: _Snapshot | None = None
        self._lock = threading.Lock()  # one refresh at a time
        # Counts the snapshots read: what is derived from the whole catalog (/templates.json) is
        # computed again only when it moves.
        self.generation = 0

    def names(self) -> list[str]:
        return list(self._current().names)

    def get(self, name: str) -> Template:
        snapshot = self._current()
        found = snapshot.templates.get(name) if NAME_RE.match(name) else None
        if found is None:
            raise TemplateNotFound(name, list(snapshot.names))
        if isinstance(found, TemplateError):
            raise found.with_traceback(None)  # the stored error, without the last raise's frames
        return found

    def discover(self, name: str) -> bool:
        """Whether ``name`` is a template written since the last refresh (then it is loaded).

        For a request that arrives before the watcher reports the new file. Blocking."""
        if not NAME_RE.match(name) or name in self._current().templates:
            return False
        if not (self.root / f"{name}.html").is_file():
            return False
        self.refresh([str(self.root / f"{name}.html")])
        return name in self._current().templates

    def refresh(self, changed: Collection[str] | None = None, *, defer_css: bool = False) -> None:
        """Read again what ``changed`` touches (everything when None). Blocking: off the loop.

        ``defer_css``: a Tailwind template whose CSS was never compiled is left without it (a
        server's start, ready sooner): :meth:`compile_pending` compiles it later, and
        :meth:`with_css` at once for a render that needs it first."""
        with self._lock:
            old = self._read_snapshot
            if changed is None or old is None:
                templates_changed = static_changed = True
                named: Collection[str] = ()
            else:
                named = changed
                templates_changed = bool(relative_to(changed, self.root))
                static_changed = bool(relative_to(changed, self.static.root))
            if static_changed:
                self.static.refresh(named)
            if templates_changed or old is None:
                snapshot = self._read()
            elif static_changed:
                snapshot = old
            else:
                return
            self._read_snapshot = snapshot
            self._snapshot = self._finish(snapshot, self.static.digest, defer_css)
            self.generation += 1

    def _current(self) -> _Snapshot:
        snapshot = self._snapshot
        if snapshot is None:  # used before any refresh (the CLI, a script): read it now
            self.refresh()
            snapshot = self._snapshot
            assert snapshot is not None
        return snapshot

    def _read(self) -> _Snapshot:
        sources: dict[str, str] = {}
        unreadable: dict[str, str] = {}
        for full in file_stats(self.root):
            rel = Path(os.path.relpath(full, self.root)).as_posix()
            try:
                sources[rel] = Path(full).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                unreadable[rel] = str(exc)
        loader = _Sources(self.root, sources)
        common: dict[str, Any] = {
            "loader": loader,
            "autoescape": True,
            "auto_reload": False,  # a new snapshot brings new environments
            "cache_size": -1,  # bounded by the folder; a compiled template is never thrown away
        }
        strict = jinja2.Environment(undefined=jinja2.StrictUndefined, **common)
        lenient = jinja2.Environment(**common)
        for env in (strict, lenient):
            env.filters.update(FILTERS)
        names = sorted(
            rel[: -len(".html")]
            for rel in (*sources, *unreadable)
            if "/" not in rel and rel.endswith(".html") and NAME_RE.match(rel[: -len(".html")])
        )
        templates: dict[str, Template | TemplateError] = {}
        for name in names:
            try:
                templates[name] = self._load(name, sources, unreadable, strict, lenient)
            except TemplateError as exc:
                templates[name] = exc
        return _Snapshot(tuple(names), templates)

    def _load(
        self,
        name: str,
        sources: Mapping[str, str],
        unreadable: Mapping[str, str],
        strict: jinja2.Environment,
        lenient: jinja2.Environment,
    ) -> Template:
        file = f"{name}.html"
        if file in unreadable:
            raise TemplateError(f"cannot read {file}: {unreadable[file]}", template=name)
        source = sources[file]
        declaration = _read_declaration(name, source, self.size)
        description, params = declaration.description, declaration.params
        declared = bool(params) or _DECLARATION.match(source) is not None
        environment = strict if declared else lenient
        h = hashlib.sha256()
        dependencies = self._dependencies(file, sources, strict)
        for dep in dependencies:
            if dep in sources:  # a missing partial fails at render time, with its name
                h.update(dep.encode() + b"\0" + sources[dep].encode() + b"\0")
                with contextlib.suppress(Exception):  # reported with its line when rendered
                    environment.get_template(dep)  # compiled now, off the request path
        return Template(
            name=name,
            path=self.root / file,
            description=description,
            params=params,
            declared=declared,
            source_digest=h.hexdigest(),
            environment=environment,
            variants=declaration.variants,
            size=declaration.size,
            dependencies=tuple(dep for dep in dependencies if dep in sources),
            tailwind=declaration.tailwind,
            max_kb=declaration.max_kb,
        )

    @staticmethod
    def _dependencies(file: str, sources: Mapping[str, str], env: jinja2.Environment) -> list[str]:
        """The template file and every partial it references, transitively, in a stable order."""
        order = [file]
        todo = [file]
        while todo:
            current = todo.pop()
            if current not in sources:
                continue
            try:
                ast = env.parse(sources[current])
            except jinja2.TemplateSyntaxError:
                continue  # reported with its line when rendered
            for ref in jinja2.meta.find_referenced_templates(ast):
                key = _source_key(ref) if ref is not None else None
                if key is None or key in order:
                    continue
                order.append(key)
                todo.append(key)
        return order

    def _finish(self, snapshot: _Snapshot, static: str, defer_css: bool = False) -> _Snapshot:
        """The snapshot as read, with each template's digest over the static folder, and the CSS
        of Tailwind templates (compiled only for a digest not seen before: a new version; not at
        all with ``defer_css``, see :meth:`refresh`)."""
        before = self._snapshot.templates if self._snapshot is not None else {}
        templates: dict[str, Template | TemplateError] = {}
        to_compile: list[Template] = []
        for name, found in snapshot.templates.items():
            if isinstance(found, Template):
                digest = _digest(found, static)
                found = dataclasses.replace(found, static_digest=static, digest=digest)
                if found.tailwind and self.compile_css:
                    known = before.get(name)
                    if isinstance(known, Template) and known.digest == digest and known.css:
                        found = dataclasses.replace(found, css=known.css)
                    elif (css := self.tailwind.cached(digest)) is not None:
                        found = dataclasses.replace(found, css=css)
                    elif not defer_css:
                        to_compile.append(found)
            templates[name] = found
        if not to_compile:
            return dataclasses.replace(snapshot, templates=templates)
        # Each compile is a subprocess that mostly waits: several run side by side.
        with concurrent.futures.ThreadPoolExecutor(max_workers=_COMPILERS) as compilers:
            for template, compiled in zip(
                to_compile, compilers.map(self._compiled, to_compile), strict=True
            ):
                templates[template.name] = compiled
        return dataclasses.replace(snapshot, templates=templates)

    def compile_pending(self) -> None:
        """Compile the CSS that :meth:`refresh` deferred, and put it in the snapshot (a template
        that does not compile is replaced by its error, as a refresh would have). Blocking."""
        if not self.compile_css:
            return
        pending = [
            found
            for found in self._current().templates.values()
            if isinstance(found, Template) and found.tailwind and not found.css
        ]
        if not pending:
            return
        with concurrent.futures.ThreadPoolExecutor(max_workers=_COMPILERS) as compilers:
            results = compilers.map(self._compiled, pending)
            compiled = {
                t.name: (t.digest, result) for t, result in zip(pending, results, strict=True)
            }
        with self._lock:
            current = self._snapshot
            assert current is not None  # read above
            templates = dict(current.templates)
            for name, found in current.templates.items():
                digest, result = compiled.get(name, ("", found))
                # Only where a refresh since has not brought another version (or the CSS).
                if isinstance(found, Template) and not found.css and found.digest == digest:
                    templates[name] = result
            self._snapshot = dataclasses.replace(current, templates=templates)
            self.generation += 1  # a template that failed to compile leaves /templates.json

    def css_deferred(self, template: Template) -> bool:
        """Whether :meth:`with_css` has a compile to do (or wait for) for ``template``."""
        return template.tailwind and not template.css and self.compile_css

    def with_css(self, template: Template) -> Template:
        """``template`` with its CSS, compiled now when :meth:`refresh` deferred it (waiting for
        the compile already running, if any). TemplateError when it does not compile. Blocking."""
        if not self.css_deferred(template):
            return template
        css = self.tailwind.css(template.name, template.digest, _sources_of(template))
        return dataclasses.replace(template, css=css)

    def _compiled(self, template: Template) -> Template | TemplateError:
        try:
            css = self.tailwind.css(template.name, template.digest, _sources_of(template))
        except TemplateError as exc:
            return exc
        return dataclasses.replace(template, css=css)

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
            raise InvalidParameter(
                unknown[0],
                f"unknown parameter (this template takes: {known})",
                suggestion=closest(unknown[0], template.params),
            )
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
        """The document. A Tailwind template whose CSS was deferred is compiled first (blocking:
        the server calls :meth:`with_css` in a thread before), so no document goes out unstyled."""
        template = self.with_css(template)
        try:
            html = template.environment.get_template(f"{template.name}.html").render(**values)
            return inline(html, template.css) if template.css else html
        except jinja2.TemplateSyntaxError as exc:
            message, line = syntax_error_message(exc, template.environment, template.name)
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


def _digest(template: Template, static: str) -> str:
    """What the cache key and the version ``v`` use: the sources, the static folder (with
    ``tailwind.css``) and, for a Tailwind template, the Tailwind version (another version may
    generate other CSS from the same classes)."""
    text = f"{template.source_digest}:{static}"
    if template.tailwind:
        text += f":tailwind={tailwind_version() or 'none'}"
    return hashlib.sha256(text.encode()).hexdigest()


def _sources_of(template: Template) -> dict[str, str]:
    """The texts of the template file and its partials, from the snapshot (the template first)."""
    loader = template.environment.loader
    assert isinstance(loader, _Sources)
    return {dep: loader.sources[dep] for dep in template.dependencies if dep in loader.sources}


def canonical_params(values: Mapping[str, Any]) -> str:
    """The stable text form of validated values, for cache keys and signatures."""
    return json.dumps(
        values, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=json_value
    )


def _source_key(name: str) -> str | None:
    """A Jinja template name -> its key among the sources (None: outside the folder)."""
    try:
        return "/".join(jinja2.loaders.split_template_path(name))
    except jinja2.TemplateNotFound:  # ".." in the name
        return None


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
