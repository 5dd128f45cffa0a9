"""Versioned URLs: the reserved parameter ``v``, a short prefix of the template's digest.

A template's *version* is a short prefix of its digest (the template, the partials it uses and the
static folder: everything that decides its pixels). URLs made by ``ogshot url``, ``sign_url`` and
the studio carry it as the reserved parameter ``v``, which every template accepts, the signature
covers, and the template never sees. The image is always the current one; ``v`` only decides how
long a cache may keep it (see :mod:`ogshot.http.cache_control`).
This module is imported by ``sign_url``: it stays light (no Jinja, no browser).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ogshot.core.errors import InvalidParameter

__all__ = [
    "VERSION_PARAM",
    "VERSION_PATTERN",
    "check_version",
    "split_version",
    "version_of",
]

VERSION_PARAM = "v"
VERSION_LENGTH = 10  # hex digits of the template digest: 40 bits, plenty to tell designs apart
# Lenient on purpose: a hand-made cache buster from before versions (v=2, v=2024-05-01) is an old
# version, so pages already shared with it keep working.
VERSION_PATTERN = r"^[0-9A-Za-z._-]{1,64}$"
_VERSION_RE = re.compile(VERSION_PATTERN)


def version_of(digest: str) -> str:
    """The version of a template whose digest is ``digest``."""
    return digest[:VERSION_LENGTH]


def check_version(value: Any) -> str:
    """``value`` when it is a well-formed version; InvalidParameter (400) otherwise."""
    if not isinstance(value, str) or not _VERSION_RE.fullmatch(value):
        raise InvalidParameter(
            VERSION_PARAM,
            "not a template version (1 to 64 letters, digits, '.', '_' or '-'; "
            "`ogshot url` and sign_url write the current one)",
        )
    return value


def split_version(params: Mapping[str, Any]) -> tuple[Mapping[str, Any], str | None]:
    """(the parameters without ``v``, the version asked for or None); a malformed one is a 400."""
    if VERSION_PARAM not in params:
        return params, None
    requested = check_version(params[VERSION_PARAM])
    return {k: v for k, v in params.items() if k != VERSION_PARAM}, requested
