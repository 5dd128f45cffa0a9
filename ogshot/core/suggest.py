"""Near misses: the declared name closest to a mistyped one (``titel`` -> ``title``).

One place for the cut-off, so a template name, a parameter and a declaration key are matched
alike, and one wording, so every message ends the same way (``did you mean 'title'?``)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["closest", "did_you_mean"]

# difflib's default: 'titel' and 'title' (0.8) match, 'zzzzzz' and 'article' (0.0) do not.
CUTOFF = 0.6


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice most like ``word``, or None when none is close enough."""
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=CUTOFF)
    return found[0] if found else None


def did_you_mean(suggestion: str | None) -> str:
    """``"did you mean 'title'?"``, or "" when there is nothing to suggest."""
    return f"did you mean {suggestion!r}?" if suggestion else ""
