"""fit.py's shrink-to-fit, run on its own in real Chromium: text that fits is left untouched (no
style written, so no extra layout before the capture), long text shrinks to its lines, text that
cannot fit ends in an ellipsis, and a box squeezed by its container is clamped to what it holds."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page

from ogshot.engine.page_scripts import FIT_JS

CLAMP = "display: -webkit-box; -webkit-box-orient: vertical; overflow: hidden;"
LONG = "A much longer title that keeps going well past three lines at its starting size " * 2

# What a fit element looks like after FIT_JS: its own inline styles, and what is drawn.
STATE_JS = """() => Array.from(document.querySelectorAll("[data-fit-lines]"), (el) => ({
  writes: window.writes + window.watcher.takeRecords().length,
  inlineSize: el.style.fontSize,
  inlineClamp: el.style.webkitLineClamp,
  size: parseFloat(getComputedStyle(el).fontSize),
  clamp: getComputedStyle(el).webkitLineClamp,
  lines: Math.floor(el.scrollHeight / parseFloat(getComputedStyle(el).lineHeight)),  // + ink
  clipped: el.scrollHeight > el.clientHeight + 0.5 * parseFloat(getComputedStyle(el).lineHeight),
}))"""


# Counts attribute writes (inline styles) on the page from here on.
WATCH_JS = """() => {
  window.writes = 0;
  window.watcher = new MutationObserver((records) => { window.writes += records.length; });
  window.watcher.observe(document.body, { attributes: true, subtree: true });
}"""

COLUMN = "display: flex; flex-direction: column"


def fit(page: Page, body: str) -> list[dict[str, Any]]:
    page.set_viewport_size({"width": 1200, "height": 630})
    page.set_content(
        f"<!doctype html><html><body style='margin: 0; font: 700 80px/1.1 sans-serif'>"
        f"{body}</body></html>"
    )
    page.evaluate(WATCH_JS)
    page.evaluate(f"() => {{ {FIT_JS} }}")
    found: list[dict[str, Any]] = page.evaluate(STATE_JS)
    return found


def title(text: str, *, lines: int = 3, minimum: str = "40", box: str = "") -> str:
    return (
        f"<div style='width: 1000px; {box}'><h1 data-fit-lines='{lines}' data-fit-min='{minimum}'"
        f" style='margin: 0; {CLAMP} -webkit-line-clamp: {lines}; font-size: 80px'>{text}</h1>"
        "</div>"
    )


def test_text_that_fits_is_left_untouched(page: Page) -> None:
    (short,) = fit(page, title("A short title"))
    assert short["writes"] == 0
    assert short["inlineSize"] == "80px"  # the template's own, not rewritten
    assert short["inlineClamp"] == "3"
    assert (short["size"], short["lines"], short["clipped"]) == (80, 1, False)
    # ...and so is a title that takes all three of its lines
    (full,) = fit(page, title("A title that runs onto a second line and then a third one"))
    assert (full["writes"], full["inlineSize"], full["inlineClamp"]) == (0, "80px", "3")
    assert full["lines"] == 3 and not full["clipped"]


def test_long_text_shrinks_until_it_fits_its_lines(page: Page) -> None:
    (long,) = fit(page, title(LONG[:110]))
    assert long["writes"] > 0
    assert 40 <= long["size"] < 80
    assert long["lines"] <= 3 and not long["clipped"]
    assert long["inlineClamp"] == "3"  # the template's own clamp put back


def test_text_that_cannot_fit_at_the_minimum_is_clamped(page: Page) -> None:
    (clamped,) = fit(page, title(LONG * 3, minimum="60"))
    assert clamped["size"] == 60
    assert clamped["clamp"] == "3" and clamped["clipped"]  # three lines, then an ellipsis


def test_a_squeezed_box_is_clamped_to_the_lines_it_holds(page: Page) -> None:
    # A fixed 130 px box holds one 88 px line and a half: two lines of text at the minimum size
    # would be cut through the middle, so the clamp drops to one line.
    body = title(
        LONG[:120], minimum="80", box="height: 130px; display: flex; flex-direction: column"
    )
    (squeezed,) = fit(page, body)
    assert squeezed["size"] == 80
    assert squeezed["inlineClamp"] == "1"
    # two lines that fit the box as they are: nothing to clamp, nothing written
    body = title(
        "A title on two lines at eighty px",
        box="height: 200px; display: flex; flex-direction: column",
    )
    (roomy,) = fit(page, body)
    assert (roomy["writes"], roomy["inlineClamp"], roomy["clipped"]) == (0, "3", False)
