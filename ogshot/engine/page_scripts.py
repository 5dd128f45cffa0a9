"""Scripts the capture runs in the page: text that fits (``FIT_JS``) and the probe of what a render
could not draw (``PROBE_JS``, read by ``pipeline/warnings.py``).

Text that fits: shrink marked elements until they fit in N lines, then ellipsise.

A template marks an element with ``data-fit-lines="3"`` and optionally ``data-fit-min``, the
smallest font size: px (``"40"``) or a percentage of the start size (``"50%"``, the default). The
start size is the element's own. The ``fit`` macro in
``html_templates/partials/text.html`` writes these attributes. The snippet runs inside the
readiness script, over CDP, after fonts and images are in: a ``<script>`` in the template would
force a navigation (~40 ms) per render instead of a document written in place.

The search is a bisection over whole pixels (6-7 layouts of one element, ~0.1 ms each). The
element's CSS clamps to ``--fit-lines`` lines; while measuring, the clamp is lifted so the natural
height shows. When even the minimum size needs more lines, the clamp stays on: the text ends in an
ellipsis. A line counts as fitting up to half a line over, because a fallback font (CJK, Thai,
emoji) can make a line box a little taller than ``line-height``. The text also has to fit the
height its container leaves it (a flex item shrinks): if even the minimum size does not, the clamp
drops to the lines that box holds.

Text that fits at its own size (most titles) is measured once, with the clamp on, and left as it
is: writing the same size back would cost the capture two more layouts of the element (~1.3 ms of
renderer CPU per render on the minimal card, a tenth of the renders/s at saturation).
"""

from __future__ import annotations

__all__ = ["FIT_JS", "PROBE_JS"]

FIT_JS = r"""
for (const el of document.querySelectorAll("[data-fit-lines]")) {
  const lines = Math.max(1, parseInt(el.dataset.fitLines, 10) || 1);
  const style = getComputedStyle(el);
  const start = parseFloat(style.fontSize);
  const floor = el.dataset.fitMin || "50%";  // px, or a percentage of the start size
  const least = floor.endsWith("%") ? (start * parseFloat(floor)) / 100 : parseFloat(floor);
  const min = Math.min(start, least) || start;
  const ratio = (parseFloat(style.lineHeight) || start * 1.2) / start;
  const padding = parseFloat(style.paddingTop) + parseFloat(style.paddingBottom);
  // Most text fits at its own size: then the page is left untouched (no style written, no
  // layout forced beyond the one the capture needs). Measured with the clamp on, text that runs
  // past its lines still shows: the hidden lines are laid out, and scrollHeight counts them.
  const natural = el.scrollHeight, first = start * ratio;
  const shown = Math.floor((el.clientHeight - padding + 1) / first);
  if (natural - padding <= (lines + 0.5) * first && natural <= el.clientHeight + 0.5 * first
      && el.scrollWidth <= el.clientWidth + 1
      && shown >= Math.min(lines, Math.round((natural - padding) / first))) continue;
  const own = el.style.webkitLineClamp;  // an inline clamp of the template's, put back after
  el.style.webkitLineClamp = "none";
  const fits = (size) => {
    el.style.fontSize = size + "px";
    const height = el.scrollHeight, line = size * ratio;
    // Half a line of slack: an emoji or a fallback font can overflow its line box by a few px.
    return height - padding <= (lines + 0.5) * line && height <= el.clientHeight + 0.5 * line
      && el.scrollWidth <= el.clientWidth + 1;
  };
  let size = start;
  if (!fits(start)) {
    let lo = min, hi = start;  // invariant: hi does not fit; lo fits, or is the floor
    if (fits(min)) {
      while (hi - lo > 1) {
        const mid = Math.floor((lo + hi) / 2);
        if (fits(mid)) lo = mid; else hi = mid;
      }
    }
    size = lo;
  }
  el.style.fontSize = size + "px";
  el.style.webkitLineClamp = own;
  // A box squeezed by its container (a flex column) shows fewer lines: clamp to what it holds,
  // so the last visible line ends in an ellipsis instead of being cut through.
  const room = Math.floor((el.clientHeight - padding + 1) / (size * ratio));
  if (room < lines) el.style.webkitLineClamp = String(Math.max(1, room));
}
"""


# Visible text's distinct non-ASCII code points, and <img> elements that ended without pixels.
# ASCII is skipped in the page: every font Chromium falls back to has it, and skipping it keeps a
# Latin card's probe near zero. checkVisibility() runs only for text that has something to check.
PROBE_JS = r"""(() => {
  const seen = new Set();
  const root = document.body || document.documentElement;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {
    acceptNode: (node) => {
      const tag = node.parentElement && node.parentElement.localName;
      return tag === "script" || tag === "style" || tag === "template" || tag === "noscript"
        ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT;
    },
  });
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.data;
    if (!/[^\x00-\x7f]/.test(text)) continue;
    const parent = node.parentElement;
    if (parent && parent.checkVisibility && !parent.checkVisibility()) continue;
    for (const char of text) {
      const code = char.codePointAt(0);
      if (code > 0x7f) seen.add(code);
    }
  }
  const broken = [];
  for (const img of document.images) {
    const src = img.currentSrc || img.src;
    if (src && img.complete && img.naturalWidth === 0) broken.push(src);
  }
  return { codes: [...seen], broken };
})()"""
