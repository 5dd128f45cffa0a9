"""Manifests for ``ogshot build``: the rows of images to pre-generate, read from a CSV file, a
JSON lines file or a sitemap.

- CSV (``.csv``): a header row; a ``template`` column (or ``--template`` for every row), an
  optional ``name`` and ``format`` column, every other column a parameter. Empty cells are left
  out, so the template's defaults apply.
- JSON lines (``.jsonl``, ``.ndjson``): one object a line,
  ``{"template": "article", "params": {...}, "name": "...", "format": "png"}`` (``template``
  may come from ``--template``; ``name`` and ``format`` are optional).
- Sitemap (``.xml``): every ``<url><loc>`` becomes a row of ``--template`` whose parameters come
  from ``--param key=pattern`` rules; a pattern may use ``{url}``, ``{host}``, ``{path}``,
  ``{slug}`` (the last path segment), ``{title}`` (the slug as words, first letter capitalised)
  and ``{lastmod}``. The page's URL is the row's name.

A row that cannot be read (bad JSON, no template) is kept with its reason and reported with the
others; a manifest that cannot be read at all raises BadRequest.
"""

from __future__ import annotations

import csv
import json
import string
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ogshot.core.errors import BadRequest

__all__ = ["SITEMAP_FIELDS", "Row", "check_rules", "page_fields", "read_manifest"]

SITEMAP_FIELDS = ("url", "host", "path", "slug", "title", "lastmod")
_RESERVED = ("template", "name", "format", "params")
_SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


@dataclass(frozen=True)
class Row:
    source: str  # where the row came from, for messages: "pages.csv line 3"
    template: str
    params: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None  # the row's id in the mapping file; also names its image
    format: str | None = None
    error: str | None = None  # why the row could not be read; such a row is never rendered

    @property
    def id(self) -> str:
        return self.name or self.source


def read_manifest(
    path: Path, *, template: str | None = None, rules: Mapping[str, str] | None = None
) -> list[Row]:
    """The rows of ``path``. ``template`` is the default template; ``rules`` (parameter ->
    pattern) map sitemap pages to parameters and are only valid for a sitemap."""
    kind = path.suffix.lower()
    if kind not in (".csv", ".jsonl", ".ndjson", ".xml"):
        raise BadRequest(f"{path}: unknown manifest type {kind!r} (use .csv, .jsonl or .xml)")
    if rules and kind != ".xml":
        raise BadRequest("--param rules apply to a sitemap (.xml) only")
    try:
        if kind == ".xml":
            if not template:
                raise BadRequest("a sitemap needs --template: the template of every page's image")
            return list(_sitemap_rows(path, template, rules or {}))
        with path.open(encoding="utf-8-sig", newline="") as file:
            if kind == ".csv":
                return list(_csv_rows(file, path.name, template))
            return list(_json_rows(file, path.name, template))
    except OSError as exc:
        raise BadRequest(f"cannot read manifest {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise BadRequest(f"manifest {path} is not UTF-8 text ({exc.reason})") from None


def _csv_rows(lines: Any, label: str, template: str | None) -> Iterator[Row]:
    reader = csv.DictReader(lines)
    header = reader.fieldnames
    if not header:
        raise BadRequest(f"{label} is empty: it needs a header row such as 'template,title'")
    if "template" not in header and not template:
        raise BadRequest(f"{label} has no 'template' column; add one or pass --template")
    for record in reader:
        source = f"{label} line {reader.line_num}"
        if None in record:  # more cells than the header names
            yield Row(source, template or "", error="more cells than the header has columns")
            continue
        cells = {k: v for k, v in record.items() if v not in ("", None)}
        if not cells:
            continue  # a blank line
        name = cells.pop("name", None)
        fmt = cells.pop("format", None)
        tpl = cells.pop("template", None) or template
        if not tpl:
            yield Row(source, "", name=name, error="no template (empty 'template' cell)")
            continue
        yield Row(source, tpl, cells, name=name, format=fmt)


def _json_rows(lines: Any, label: str, template: str | None) -> Iterator[Row]:
    for number, line in enumerate(lines, start=1):
        source = f"{label} line {number}"
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            yield Row(source, template or "", error=f"not valid JSON ({exc})")
            continue
        if not isinstance(item, dict):
            yield Row(source, template or "", error="not a JSON object")
            continue
        yield _json_row(item, source, template)


def _json_row(item: dict[str, Any], source: str, default: str | None) -> Row:
    tpl, params = item.get("template", default), item.get("params", {})
    name, fmt = item.get("name"), item.get("format")
    unknown = sorted(set(item) - set(_RESERVED))
    if unknown:
        error = f"unknown key {unknown[0]!r} (use template, params, name, format)"
    elif not isinstance(tpl, str) or not tpl:
        error = "no template (a 'template' string or --template)"
    elif not isinstance(params, dict):
        error = "'params' must be a JSON object"
    elif not isinstance(name, str | None) or not isinstance(fmt, str | None):
        error = "'name' and 'format' must be strings"
    else:
        return Row(source, tpl, params, name=name, format=fmt)
    return Row(source, tpl if isinstance(tpl, str) else "", error=error)


def check_rules(rules: Mapping[str, str]) -> None:
    """A pattern naming a field that does not exist is an error before any page is read."""
    for key, pattern in rules.items():
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None]
        except ValueError as exc:
            raise BadRequest(f"--param {key}={pattern}: {exc}") from None
        for name in fields:
            if name not in SITEMAP_FIELDS:
                known = ", ".join("{" + f + "}" for f in SITEMAP_FIELDS)
                raise BadRequest(f"--param {key}={pattern}: unknown field {{{name}}} (use {known})")


def _sitemap_rows(path: Path, template: str, rules: Mapping[str, str]) -> Iterator[Row]:
    check_rules(rules)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise BadRequest(f"{path.name} is not valid XML ({exc})") from None
    if root.tag == f"{_SITEMAP_NS}sitemapindex":
        raise BadRequest(f"{path.name} is a sitemap index: pass each sitemap it lists instead")
    if root.tag != f"{_SITEMAP_NS}urlset":
        raise BadRequest(f"{path.name} is not a sitemap (no sitemaps.org <urlset>)")
    for number, entry in enumerate(root.iter(f"{_SITEMAP_NS}url"), start=1):
        source = f"{path.name} url {number}"
        loc = (entry.findtext(f"{_SITEMAP_NS}loc") or "").strip()
        if not loc:
            yield Row(source, template, error="<url> without a <loc>")
            continue
        fields = page_fields(loc, (entry.findtext(f"{_SITEMAP_NS}lastmod") or "").strip())
        params = {key: pattern.format_map(fields) for key, pattern in rules.items()}
        yield Row(source, template, params, name=loc)


def page_fields(url: str, lastmod: str = "") -> dict[str, str]:
    """The values a sitemap rule may use, for one page."""
    parts = urlsplit(url)
    path = unquote(parts.path) or "/"
    slug = path.rstrip("/").rsplit("/", 1)[-1]
    words = slug.rsplit(".", 1)[0].replace("-", " ").replace("_", " ").strip()
    return {
        "url": url,
        "host": parts.hostname or "",
        "path": path,
        "slug": slug,
        "title": words[:1].upper() + words[1:],
        "lastmod": lastmod,
    }
