"""Writes clients/signing-vectors.json: test vectors of ogshot's URL signing scheme
(docs/reference/signing.md), made by ogshot's own Python implementation.

Every client (clients/js, and any other) must turn each vector's inputs into exactly its
``string_to_sign``, ``signature`` and ``url``; tests/unit/templates/test_signing_vectors.py checks
that the server answers each ``url`` with 200 and with 403 once a byte of it changes.

Run from the repository root after a change to the scheme (never by hand-editing the JSON):

    PYTHONPATH=. python clients/make_vectors.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ogshot.core.settings import Settings
from ogshot.templates.signing import canonical, sign, sign_url
from ogshot.templates.versions import VERSION_PARAM

OUT = Path(__file__).resolve().parent / "signing-vectors.json"
# OGSHOT_SECRET="vector-secret-new,vector-secret-old": the first signs, both verify.
SECRETS = ["vector-secret-new", "vector-secret-old"]
NEW, OLD = SECRETS
VERSION = "3f9a1c0b7e"  # any well-formed version renders; this one looks like a real one

# (name, template, params, format, version or None, form, secret)
CASES: list[tuple[str, str, dict[str, Any], str, str | None, str, str]] = [
    ("plain", "minimal", {"title": "Hello, world"}, "png", None, "path", NEW),
    (
        "apostrophes and !*() (left bare by JavaScript's encodeURIComponent)",
        "article",
        {"title": "It's a dog's life (isn't it?) *really*!"},
        "png",
        VERSION,
        "path",
        NEW,
    ),
    (
        "reserved characters +&=#% and friends",
        "article",
        {"title": "1+1=2 & 100% #1", "subtitle": "a;b/c?d@e$f,g:h[i]j"},
        "png",
        VERSION,
        "path",
        NEW,
    ),
    (
        "unreserved characters stay bare",
        "minimal",
        {"title": "AZaz09-._~"},
        "png",
        None,
        "path",
        NEW,
    ),
    (
        "emoji (4 bytes of UTF-8) and CJK",
        "article",
        {"title": "Rendering 🚀 日本語のタイトル", "author": "李小龙"},
        "webp",
        VERSION,
        "path",
        NEW,
    ),
    (
        "no Unicode normalisation: a decomposed é is signed as its own bytes",
        "minimal",
        {"title": "Cafe\u0301 vs Caf\u00e9"},
        "png",
        None,
        "path",
        NEW,
    ),
    (
        "leading and trailing spaces are kept (%20, never +)",
        "article",
        {"title": "  padded title  ", "tag": " x "},
        "png",
        VERSION,
        "path",
        NEW,
    ),
    (
        "empty values are signed as name=",
        "article",
        {"title": "Empty extras", "subtitle": "", "author": "", "tag": ""},
        "png",
        VERSION,
        "path",
        NEW,
    ),
    (
        "parameters sorted by name, v among them",
        "article",
        {"title": "Sorted", "theme": "light", "accent": "#ff5500", "site": "example.com"},
        "png",
        VERSION,
        "path",
        NEW,
    ),
    (
        "jpg: signed as jpeg",
        "minimal",
        {"title": "Same picture"},
        "jpg",
        VERSION,
        "path",
        NEW,
    ),
    (
        "jpeg: the same signature as jpg",
        "minimal",
        {"title": "Same picture"},
        "jpeg",
        VERSION,
        "path",
        NEW,
    ),
    (
        "rotation: signed with the second secret, still verified",
        "minimal",
        {"title": "Signed before the rotation"},
        "png",
        None,
        "path",
        OLD,
    ),
    (
        "the /og?template=&data= form: the same string to sign",
        "minimal",
        {"title": 'Data form: it\'s "quoted" & 100%', "size": 96},
        "jpg",
        VERSION,
        "query",
        NEW,
    ),
    (
        "the /og?template=&data= form without format: png",
        "minimal",
        {"title": "Data form, png"},
        "png",
        None,
        "query",
        NEW,
    ),
]


def _query_url(
    template: str, params: dict[str, Any], fmt: str, version: str | None, sig: str
) -> str:
    data = json.dumps(params, ensure_ascii=False, separators=(",", ":"))
    parts = [f"template={quote(template, safe='')}", f"data={quote(data, safe='')}"]
    if fmt != "png":
        parts.append(f"format={quote(fmt, safe='')}")
    if version:
        parts.append(f"{VERSION_PARAM}={quote(version, safe='')}")
    parts.append(f"s={sig}")
    return "/og?" + "&".join(parts)


def vectors() -> dict[str, Any]:
    settings = Settings.load(environ={}, config_file=None)
    out = []
    for name, template, params, fmt, version, form, secret in CASES:
        signed = dict(params)
        if version:
            signed[VERSION_PARAM] = version
        sig = sign(secret, template, signed, fmt)
        if form == "path":
            url = sign_url(
                template, params, fmt, secret=secret, version=version or "", settings=settings
            )
        else:
            url = _query_url(template, params, fmt, version, sig)
        out.append(
            {
                "name": name,
                "form": form,
                "secret": secret,
                "template": template,
                "params": params,
                "format": fmt,
                "version": version,
                "string_to_sign": canonical(template, signed, fmt).decode(),
                "signature": sig,
                "url": url,
            }
        )
    return {
        "scheme": "ogshot-url-v1",
        "about": "Made by clients/make_vectors.py; the scheme is docs/reference/signing.md. "
        "The server that verifies these has OGSHOT_SECRET set to both secrets, in this order.",
        "secrets": SECRETS,
        "vectors": out,
    }


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


if __name__ == "__main__":
    OUT.write_text(render(vectors()), encoding="utf-8")
    print(f"wrote {len(vectors()['vectors'])} vectors to {OUT}")
