from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path

import hypothesis
import hypothesis.strategies
import pytest

from ogshot.core.errors import InvalidParameter, TemplateError, TemplateNotFound
from ogshot.core.settings import Settings
from ogshot.http.openapi import openapi
from ogshot.templates.catalog import Catalog, canonical_params
from ogshot.templates.fields import COLOUR_PATTERN, Param

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
    assert seen[0][1] == 3 and seen[0][2] == "bad"  # the line of the bad type
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


# -- colours -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("#1A2B3C", "#1a2b3c"),
        ("1a2b3c", "#1a2b3c"),
        ("#abc", "#abc"),
        ("#aabbcc80", "#aabbcc80"),
        (" Tomato ", "tomato"),
        ("RebeccaPurple", "rebeccapurple"),
        ("transparent", "transparent"),
        ("rgb(0,0,0)", "rgb(0,0,0)"),
        ("rgba(255, 0, 0, 0.5)", "rgba(255, 0, 0, 0.5)"),
        ("RGB(0  0   0 / 50%)", "rgb(0 0 0 / 50%)"),
        ("hsl(120deg 50% 50%)", "hsl(120deg 50% 50%)"),
        ("hwb(0 10% 20%)", "hwb(0 10% 20%)"),
        ("lab(50% 40 59.5)", "lab(50% 40 59.5)"),
        ("lch(52.2% 72.2 50)", "lch(52.2% 72.2 50)"),
        ("oklab(0.5 -0.1 0.1)", "oklab(0.5 -0.1 0.1)"),
        ("oklch(0.7 0.1 120 / 0.8)", "oklch(0.7 0.1 120 / 0.8)"),
    ],
)
def test_css_colours_are_accepted_and_normalised(given: str, canonical: str) -> None:
    assert Param(name="c", type="color").convert(given, global_max_length=100) == canonical


def test_a_json_scalar_is_a_colour_or_date_as_its_text() -> None:
    # /og?data={"c": 123} is the same request as c=123 (the signature says so too).
    assert Param(name="c", type="color").convert(123, global_max_length=9) == "#123"
    with pytest.raises(InvalidParameter):
        Param(name="c", type="color").convert(True, global_max_length=9)
    assert Param(name="d", type="date").convert(20261126, global_max_length=9) == dt.date(
        2026, 11, 26
    )


@pytest.mark.parametrize(
    "given",
    [
        "notacolour",
        "zzzzzz",
        "reds",
        "currentcolor",
        "inherit",
        "initial",
        "",
        "red blue",
        "rgb(0 0 0) red",
        "rgb(0 0)",
        "rgb(10%, 0, 0)",  # legacy syntax: all numbers or all percentages
        "red/**/",
        "r\\65 d",
        "red;}body{x:url(//evil)",
        "#12345",
        "hsl(120 50% 50%",
    ],
)
def test_anything_else_is_refused_naming_the_parameter(given: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        Param(name="accent", type="color").convert(given, global_max_length=100)
    assert info.value.name == "accent"
    assert "CSS colour" in info.value.message


@hypothesis.given(hypothesis.strategies.from_regex(COLOUR_PATTERN, fullmatch=True))
@hypothesis.settings(max_examples=300, deadline=None, database=None, derandomize=True)
def test_every_colour_the_api_description_allows_is_accepted(text: str) -> None:
    # The OpenAPI pattern is what a client or fuzzer believes: each match must be taken.
    Param(name="c", type="color").convert(text, global_max_length=100)


# -- required, dates -----------------------------------------------------------------------------


@pytest.mark.parametrize("empty", ["", "   ", "\t\n"])
def test_required_means_not_empty(catalog: Catalog, empty: str) -> None:
    with pytest.raises(InvalidParameter, match="must not be empty") as info:
        catalog.validate(catalog.get("card"), {"title": empty})
    assert info.value.name == "title"


def test_allow_empty_lets_a_required_parameter_be_empty(tmp_path: Path) -> None:
    catalog = one_template(
        tmp_path,
        "{#ogshot\n[params.note]\nrequired = true\nallow_empty = true\n#}\n{{ note }}",
    )
    note = catalog.get("t")
    assert catalog.validate(note, {"note": ""}) == {"note": ""}
    with pytest.raises(InvalidParameter, match="required"):
        catalog.validate(note, {})
    assert note.describe()["params"][0]["allow_empty"] is True


DATED = """{#ogshot
[params.published]
type = "date"
required = true
[params.updated]
type = "date"
default = 2026-01-02
#}
<p>{{ published }}|{{ published | format_date("long", locale="de") }}|\
{{ published | format_date }}|{{ updated | format_date("d MMM y", "fr") }}|\
{{ published | format_datetime("short", locale="en_GB") }}</p>
"""


def test_a_date_parameter_is_a_date_for_the_template(tmp_path: Path) -> None:
    catalog = one_template(tmp_path, DATED)
    card = catalog.get("t")
    values = catalog.validate(card, {"published": "2026-11-26"})
    assert values == {"published": dt.date(2026, 11, 26), "updated": dt.date(2026, 1, 2)}
    html = catalog.render_html(card, values)
    assert (
        html.strip()
        == "<p>2026-11-26|26. November 2026|Nov 26, 2026|2 janv. 2026|26/11/2026, 00:00</p>"
    )
    assert canonical_params(values) == '{"published":"2026-11-26","updated":"2026-01-02"}'
    moment = catalog.validate(card, {"published": "2026-11-26T09:30:00+01:00"})["published"]
    assert moment == dt.datetime(2026, 11, 26, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert "09:30" in catalog.render_html(card, {"published": moment, "updated": moment})
    assert card.describe()["params"][1]["default"] == "2026-01-02"


@pytest.mark.parametrize("bad", ["26/11/2026", "2026-13-01", "2026-02-30", "yesterday", "2026"])
def test_a_date_that_is_not_iso_8601_is_refused(tmp_path: Path, bad: str) -> None:
    catalog = one_template(tmp_path, DATED)
    with pytest.raises(InvalidParameter, match="ISO 8601") as info:
        catalog.validate(catalog.get("t"), {"published": bad})
    assert info.value.name == "published"


def test_describe_keeps_an_empty_default_apart_from_none(catalog: Catalog, tmp_path: Path) -> None:
    catalog = one_template(
        tmp_path, '{#ogshot\n[params.a]\ndefault = ""\n[params.b]\ntype = "url"\n#}\n{{ a }}{{ b }}'
    )
    a, b = catalog.get("t").describe()["params"]
    assert a["default"] == "" and "default" not in b


# -- declaration mistakes ------------------------------------------------------------------------


def one_template(tmp_path: Path, source: str, name: str = "t") -> Catalog:
    (tmp_path / "t").mkdir(exist_ok=True)
    (tmp_path / "s").mkdir(exist_ok=True)
    (tmp_path / "t" / f"{name}.html").write_text(source)
    return Catalog(tmp_path / "t", tmp_path / "s")


HEAD = '\n\n{#ogshot\ndescription = "x"\n\n[params.title]\ntype = "str"\n'


@pytest.mark.parametrize(
    ("tail", "line", "words"),
    [
        ("max_lenght = 10\n", 8, ["unknown key 'max_lenght'", "did you mean 'max_length'?"]),
        ('\n[params.count]\ntype = "integer"\n', 10, ["'integer'", "did you mean 'int'?"]),
        ('\n[params.c]\ntype = "colour"\n', 10, ["'colour'", "did you mean 'color'?"]),
        ('\n[params.c]\ntype = "boolean"\n', 10, ["did you mean 'bool'?"]),
        ('\n[params.c]\ntype = "strr"\n', 10, ["did you mean 'str'?"]),
        ('\n[params.c]\ntype = "int"\nmin = 1\ndefault = "x"\n', 12, ["default 'x'", "int"]),
        ('\n[params.c]\ntype = "color"\nexample = "nope"\n', 11, ["example 'nope'"]),
        ('max_length = "10"\n', 8, ["max_length must be an integer"]),
        ('required = "yes"\n', 8, ["required must be true or false"]),
        ("max_length = 10\nmax_length = 11\n", 9, ["invalid parameter declaration"]),
        ("title = = 1\n", 8, ["invalid parameter declaration"]),
        ('\n[paramz.x]\ntype = "str"\n', 9, ["unknown key 'paramz'", "did you mean 'params'?"]),
        ('\n[params."bad name"]\ntype = "str"\n', 9, ["not a valid parameter name"]),
    ],
)
def test_declaration_mistakes_are_reported_at_their_line(
    tmp_path: Path, tail: str, line: int, words: list[str]
) -> None:
    catalog = one_template(tmp_path, HEAD + tail + "#}\n<p>{{ title }}</p>\n")
    with pytest.raises(TemplateError) as info:
        catalog.get("t")
    assert info.value.line == line, info.value.message
    assert f"t.html line {line}:" in info.value.message
    for word in words:
        assert word in info.value.message


def test_keys_of_dotted_and_inline_declarations_are_found_too(tmp_path: Path) -> None:
    dotted = one_template(tmp_path, '{#ogshot\nparams.a.type = "str"\nparams.a.maxx = 3\n#}\n')
    with pytest.raises(TemplateError, match="did you mean 'max'") as info:
        dotted.get("t")
    assert info.value.line == 3
    inline = one_template(
        tmp_path, '{#ogshot\n[params]\na = { type = "str" }\nb = { type = "nummber" }\n#}\n', "u"
    )
    with pytest.raises(TemplateError, match="did you mean") as info:
        inline.get("u")
    assert info.value.line == 4


# -- Jinja errors --------------------------------------------------------------------------------


def test_an_unknown_filter_is_not_called_a_syntax_error(tmp_path: Path) -> None:
    catalog = one_template(tmp_path, "<p>\n{{ title | uper }}\n</p>")
    with pytest.raises(TemplateError) as info:
        catalog.render_html(catalog.get("t"), {"title": "x"})
    message = info.value.message
    assert "syntax" not in message
    assert message.startswith("unknown filter 'uper' in t.html line 2")
    assert "did you mean 'upper'?" in message
    assert info.value.line == 2


@pytest.mark.parametrize(
    ("source", "tag", "line"),
    [
        ("<p>\n{% if a %}\nyes\n</p>\n\n", "if", 2),
        ("{% for x in y %}\n{% if x %}{{ x }}{% endif %}\n\n", "for", 1),
        (
            "{% set a = 1 %}\n{% if a %}{% for x in y %}{% endfor %}\n{% set b %}q{% endset %}\n",
            "if",
            2,
        ),
        ("{% block body %}\n{% if a %}\n{% endblock %}\n", "if", 2),
    ],
)
def test_an_unclosed_block_is_reported_where_it_opens(
    tmp_path: Path, source: str, tag: str, line: int
) -> None:
    catalog = one_template(tmp_path, source)
    with pytest.raises(TemplateError) as info:
        catalog.render_html(catalog.get("t"), {})
    assert info.value.line == line, info.value.message
    assert f"unclosed {{% {tag} %}} in t.html: opened at line {line}" in info.value.message


def test_dates_and_required_text_are_described_in_openapi(tmp_path: Path) -> None:
    catalog = one_template(tmp_path, DATED)
    one_template(tmp_path, DECLARED, "card")
    settings = Settings.load(
        environ={}, config_file=None, templates_dir=tmp_path / "t", static_dir=tmp_path / "s"
    )
    document = json.loads(json.dumps(openapi(catalog, settings)))  # JSON all the way down
    dated = {p["name"]: p for p in document["paths"]["/og/t.{format}"]["get"]["parameters"]}
    assert dated["published"]["schema"] == {"type": "string", "format": "date"}
    assert dated["updated"]["schema"]["default"] == "2026-01-02"
    card = {p["name"]: p for p in document["paths"]["/og/card.{format}"]["get"]["parameters"]}
    assert re.search(card["title"]["schema"]["pattern"], "  x ")
    assert not re.search(card["title"]["schema"]["pattern"], " \t ")
    assert card["tint"]["schema"]["pattern"] == COLOUR_PATTERN
    assert json.loads(json.dumps(catalog.get("t").examples())) == {"updated": "2026-01-02"}
