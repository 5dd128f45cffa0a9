"""The reserved parameter ``max_kb`` and the declaration's ``max_kb = N``: bounds, clear errors,
the signature covering it."""

from __future__ import annotations

import pytest

from ogshot.cache.disk import Entry
from ogshot.core.errors import InvalidParameter, TemplateError
from ogshot.templates.budgets import check_budget, split_budget
from ogshot.templates.declarations import read_declaration
from ogshot.templates.signing import sign, verify


@pytest.mark.parametrize(("raw", "kb"), [("10", 10), ("600", 600), (" 60 ", 60), (10000, 10000)])
def test_a_budget_in_range_is_taken(raw: object, kb: int) -> None:
    assert check_budget(raw) == kb


@pytest.mark.parametrize("raw", ["9", "10001", "0", "-5", "60.5", "6e2", "lots", "", True, 3.0])
def test_a_budget_out_of_range_or_not_whole_is_a_400_naming_it(raw: object) -> None:
    with pytest.raises(InvalidParameter) as caught:
        check_budget(raw)
    assert caught.value.status == 400
    assert caught.value.detail == {"parameter": "max_kb"}
    assert "10..10000" in caught.value.message


def test_split_budget_sets_the_budget_aside() -> None:
    rest, kb = split_budget({"title": "Hi", "max_kb": "300"})
    assert dict(rest) == {"title": "Hi"} and kb == 300
    params = {"title": "Hi"}
    assert split_budget(params) == (params, None)


def test_a_template_declares_its_default_budget() -> None:
    source = '{#ogshot\ndescription = "x"\nmax_kb = 250\n[params.title]\ntype = "str"\n#}\n<p>'
    assert read_declaration("card", source).max_kb == 250
    assert read_declaration("card", "{#ogshot\n#}\n<p>").max_kb is None


@pytest.mark.parametrize("value", ["5", '"600"', "20000", "true"])
def test_a_bad_declared_budget_names_its_line(value: str) -> None:
    source = f'{{#ogshot\ndescription = "x"\nmax_kb = {value}\n#}}\n<p>'
    with pytest.raises(TemplateError) as caught:
        read_declaration("card", source)
    assert caught.value.message.startswith("card.html line 3: max_kb:"), caught.value.message


def test_max_kb_is_no_parameter_name() -> None:
    source = '{#ogshot\n[params.max_kb]\ntype = "int"\n#}\n<p>'
    with pytest.raises(TemplateError, match=r"reserved for every URL.*max_kb: the byte budget"):
        read_declaration("card", source)


def test_a_signature_without_max_kb_does_not_verify_a_url_with_it() -> None:
    params = {"title": "Hello"}
    signature = sign("secret", "photo", params, "jpg")
    assert verify(["secret"], "photo", params, "jpeg", signature)
    assert not verify(["secret"], "photo", {**params, "max_kb": "60"}, "jpeg", signature)
    with_budget = sign("secret", "photo", {**params, "max_kb": "60"}, "jpg")
    assert not verify(["secret"], "photo", {**params, "max_kb": "61"}, "jpeg", with_budget)


@pytest.mark.parametrize(
    ("quality", "warnings"), [("", ""), ("72", ""), ("palette-16", '[[57344],["https://x/a b"]]')]
)
def test_the_chosen_quality_is_kept_with_the_cached_entry(quality: str, warnings: str) -> None:
    entry = Entry(b"img", "e" * 32, 1234.5, warnings=warnings, quality=quality)
    assert Entry.from_tag(b"img", entry.tag) == entry


def test_an_entry_tag_from_before_budgets_still_reads() -> None:
    old = Entry.from_tag(b"img", "abc 1234.500 [[57344],[]]")
    assert (old.etag, old.stored_at, old.warnings, old.quality) == (
        "abc",
        1234.5,
        "[[57344],[]]",
        "",
    )
