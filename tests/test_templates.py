from __future__ import annotations

import os
from pathlib import Path

import pytest

from ogshot.errors import InvalidParameter, TemplateError, TemplateNotFound
from ogshot.templates import Catalog

DECLARED = """{#ogshot
description = "test card"
[params.title]
type = "str"
required = true
max_length = 10
[params.count]
type = "int"
min = 1
max = 5
default = 2
[params.on]
type = "bool"
default = false
[params.tint]
type = "color"
default = "#abc"
[params.link]
type = "url"
[params.mode]
choices = ["a", "b"]
default = "a"
#}
{% include "partials/head.html" %}<h1>{{ title }}</h1>{{ count }} {{ on }} {{ tint }} {{ mode }}
"""


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    (tmp_path / "t" / "partials").mkdir(parents=True)
    (tmp_path / "s").mkdir()
    (tmp_path / "t" / "card.html").write_text(DECLARED)
    (tmp_path / "t" / "partials" / "head.html").write_text("<meta charset=utf-8>")
    (tmp_path / "t" / "loose.html").write_text("<p>{{ anything }}</p>")
    (tmp_path / "t" / "_private.html").write_text("x")
    return Catalog(tmp_path / "t", tmp_path / "s")


def test_names_exclude_partials(catalog: Catalog) -> None:
    assert catalog.names() == ["card", "loose"]


def test_declaration_is_parsed(catalog: Catalog) -> None:
    card = catalog.get("card")
    assert card.declared and card.description == "test card"
    assert list(card.params) == ["title", "count", "on", "tint", "link", "mode"]
    assert card.params["title"].required and card.params["title"].max_length == 10


def test_values_are_converted_and_defaults_applied(catalog: Catalog) -> None:
    card = catalog.get("card")
    values = catalog.validate(card, {"title": "Hi", "count": "3", "on": "yes", "tint": "FF8800"})
    assert values == {
        "title": "Hi",
        "count": 3,
        "on": True,
        "tint": "#ff8800",
        "link": None,
        "mode": "a",
    }


@pytest.mark.parametrize(
    ("params", "culprit"),
    [
        ({}, "title"),
        ({"title": "x" * 11}, "title"),
        ({"title": "x", "count": "nine"}, "count"),
        ({"title": "x", "count": "9"}, "count"),
        ({"title": "x", "on": "perhaps"}, "on"),
        ({"title": "x", "tint": "red;}body{x:url(//evil)"}, "tint"),
        ({"title": "x", "link": "javascript:alert(1)"}, "link"),
        ({"title": "x", "link": "http://[x"}, "link"),
        ({"title": "x", "mode": "c"}, "mode"),
        ({"title": "x", "extra": "1"}, "extra"),
        ({"title": "x", "bad-name": "1"}, "bad-name"),
    ],
)
def test_invalid_parameters_are_named(
    catalog: Catalog, params: dict[str, str], culprit: str
) -> None:
    with pytest.raises(InvalidParameter) as info:
        catalog.validate(catalog.get("card"), params)
    assert info.value.name == culprit
    assert culprit in str(info.value)


def test_undeclared_template_takes_strings_within_global_limits(catalog: Catalog) -> None:
    loose = catalog.get("loose")
    assert not loose.declared
    assert catalog.validate(loose, {"anything": "goes"}) == {"anything": "goes"}
    with pytest.raises(InvalidParameter):
        catalog.validate(loose, {"anything": "x" * 1001})
    with pytest.raises(InvalidParameter):
        catalog.validate(loose, {f"p{i}": "x" for i in range(33)})
    assert catalog.render_html(loose, {}) == "<p></p>"


def test_autoescape_is_on(catalog: Catalog) -> None:
    loose = catalog.get("loose")
    html = catalog.render_html(loose, {"anything": "<script>alert(1)</script>"})
    assert "<script>" not in html and "&lt;script&gt;" in html


@pytest.mark.parametrize("name", ["../etc/passwd", "..", "partials/head", "_private", "CARD", ""])
def test_names_outside_the_folder_are_not_found(catalog: Catalog, name: str) -> None:
    with pytest.raises(TemplateNotFound):
        catalog.get(name)


def test_digest_follows_the_template_and_its_partials(catalog: Catalog, tmp_path: Path) -> None:
    first = catalog.get("card").digest
    assert catalog.get("card").digest == first
    partial = tmp_path / "t" / "partials" / "head.html"
    partial.write_text("<meta charset=utf-8><!-- edited -->")
    catalog.refresh([str(partial)])  # what the file watcher does
    second = catalog.get("card").digest
    assert second != first
    style = tmp_path / "s" / "style.css"
    style.write_text("body{}")
    catalog.refresh([str(style)])
    assert catalog.get("card").digest != second


def test_get_and_render_read_memory_only_until_a_refresh(catalog: Catalog, tmp_path: Path) -> None:
    """The request path never looks at the disk: an edit counts once the watcher reports it."""
    loose = catalog.get("loose")
    source = tmp_path / "t" / "loose.html"
    source.write_text("<p>edited {{ anything }}</p>")
    assert catalog.get("loose").digest == loose.digest
    assert catalog.render_html(catalog.get("loose"), {"anything": "x"}) == "<p>x</p>"
    source.unlink()  # even a deleted file renders from the snapshot
    assert catalog.render_html(catalog.get("loose"), {"anything": "x"}) == "<p>x</p>"
    source.write_text("<p>edited {{ anything }}</p>")
    catalog.refresh([str(source)])
    edited = catalog.get("loose")
    assert edited.digest != loose.digest
    assert catalog.render_html(edited, {"anything": "x"}) == "<p>edited x</p>"


def test_a_rendered_template_and_its_digest_come_from_one_snapshot(
    catalog: Catalog, tmp_path: Path
) -> None:
    """A Template validated before a refresh renders the sources its digest was made of."""
    before = catalog.get("card")
    values = catalog.validate(before, {"title": "a"})
    partial = tmp_path / "t" / "partials" / "head.html"
    partial.write_text("<meta name=edited>")
    catalog.refresh([str(partial)])
    assert "<meta charset=utf-8>" in catalog.render_html(before, values)
    after = catalog.get("card")
    assert "<meta name=edited>" in catalog.render_html(after, values)


def test_a_static_edit_the_mtime_cannot_show_still_changes_the_digest(
    catalog: Catalog, tmp_path: Path
) -> None:
    style = tmp_path / "s" / "style.css"
    style.write_text("body{color:red}")
    os.utime(style, ns=(1, 1))
    catalog.refresh([str(style)])
    first = catalog.get("card").digest
    style.write_text("body{color:tan}")  # same size, and the same mtime put back
    os.utime(style, ns=(1, 1))
    catalog.refresh([str(style)])  # the watcher names the file: it is read again
    assert catalog.get("card").digest != first


def test_a_template_saved_after_the_last_refresh_is_discovered(
    catalog: Catalog, tmp_path: Path
) -> None:
    assert "late" not in catalog.names()  # the first read
    (tmp_path / "t" / "late.html").write_text("<p>late</p>")
    with pytest.raises(TemplateNotFound):
        catalog.get("late")
    assert catalog.discover("late")
    assert catalog.render_html(catalog.get("late"), {}) == "<p>late</p>"
    assert "late" in catalog.names()
    assert not catalog.discover("absent")
    assert not catalog.discover("../t/late")


def test_a_broken_template_keeps_raising_its_error(tmp_path: Path) -> None:
    """The error is read once, with the folder, and raised whole on each lookup."""
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "bad.html").write_text('{#ogshot\n[params.x]\ntype = "colour"\n#}')
    catalog = Catalog(tmp_path / "t", tmp_path / "s")
    seen = []
    for _ in range(3):
        with pytest.raises(TemplateError, match=r"params\.x") as info:
            catalog.get("bad")
        seen.append((str(info.value), info.value.line, info.value.template))
    assert seen[0][1] is not None and seen[0][2] == "bad"
    assert seen == [seen[0]] * 3


def test_template_errors_carry_the_line(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "broken.html").write_text("<p>\n{% if %}\n</p>")
    (tmp_path / "t" / "raises.html").write_text("{#ogshot\n#}\n<p>\n{{ missing_var }}</p>")
    catalog = Catalog(tmp_path / "t", tmp_path / "s")
    with pytest.raises(TemplateError) as info:
        catalog.render_html(catalog.get("broken"), {})
    assert info.value.line == 2
    with pytest.raises(TemplateError, match="missing_var") as info:
        catalog.render_html(catalog.get("raises"), {})
    assert info.value.line == 4


def test_bad_declaration_is_a_template_error(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "bad.html").write_text('{#ogshot\n[params.x]\ntype = "colour"\n#}')
    catalog = Catalog(tmp_path / "t", tmp_path / "s")
    with pytest.raises(TemplateError, match=r"params\.x"):
        catalog.get("bad")
