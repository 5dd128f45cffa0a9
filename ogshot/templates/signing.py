"""Signed URLs, as imgproxy and thumbor do them. The scheme, for other languages:
docs/reference/signing.md; the vectors every implementation passes: clients/signing-vectors.json.

With ``OGSHOT_SECRET`` set, every /og request carries ``s``: HMAC-SHA256 over the canonical form of
the request, URL-safe base64 without padding. The canonical form is the same for both URL shapes,
so one signature fits ``/og/NAME.EXT?k=v`` and ``/og?template=NAME&data={"k":"v"}&format=EXT``::

    ogshot-url-v1 LF template LF format LF k1=v1&k2=v2 ...

- ``format`` is the canonical name (``jpg`` and ``jpeg`` are one format; missing or empty means
  ``png``);
- the parameters are sorted by name, names and values percent-encoded with only RFC 3986's
  unreserved ``A-Z a-z 0-9 - . _ ~`` left bare (``quote(x, safe="")``, UTF-8, upper-case hex),
  ``s`` itself excluded;
- a value from ``data`` JSON that is not a string is signed as its compact JSON text (``3``,
  ``true``), which is also how the template receives it.

Several secrets may be configured for rotation: the first of ``OGSHOT_SECRET`` signs, every one
of them and of ``OGSHOT_VERIFY_SECRETS`` verifies; a verify-only secret is how a new one reaches
every node before anything signs with it (docs/operations/secret-rotation.md). Comparison is
constant-time.

A parameter whose value is ``None`` is left out of a URL (the template uses its default).

``sign_url`` adds the template's current version ``v`` (freshness.py), which the signature covers
like any parameter: the URL is then immutable for caches, and a redesign makes a new URL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ogshot.core.errors import Forbidden, InvalidFormat, OgshotError, RequestTooLarge
from ogshot.core.formats import normalize_format
from ogshot.core.settings import Settings
from ogshot.templates.budgets import split_budget
from ogshot.templates.versions import VERSION_PARAM, check_version, split_version

if TYPE_CHECKING:
    from ogshot.templates.catalog import Catalog

__all__ = [
    "SHOT",
    "SIGNATURE_PARAM",
    "canonical",
    "check",
    "local_catalog",
    "sign",
    "sign_url",
    "signed_path",
    "signed_shot_path",
    "validate_request",
    "verify",
]

SIGNATURE_PARAM = "s"
# What a /shot URL's signature names instead of a template: no template can be called this (names
# have no "/"), so a signed /og URL never verifies as a /shot URL or the other way round.
SHOT = "/shot"
_VERSION = "ogshot-url-v1"
_warned_unsigned = False  # sign_url warns once per process about unsigned URLs
_warned_unversioned = False  # ... and about URLs without a version
# The templates as sign_url last read them, by folder, with the file stats they were read at: a
# web app building many URLs reads the folder once, and again when a file changes.
_catalogs: dict[tuple[Path, Path, int, int], tuple[dict[str, tuple[int, int]], Catalog]] = {}


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def canonical(template: str, params: Mapping[str, Any], fmt: str) -> bytes:
    """The bytes a signature covers (see the module docstring)."""
    fmt = normalize_format(fmt or "png") or fmt.lower()  # "" is png, as in the URL sign_url writes
    query = "&".join(
        f"{quote(key, safe='')}={quote(_text(value), safe='')}"
        for key, value in sorted(params.items())
        if key != SIGNATURE_PARAM
    )
    return f"{_VERSION}\n{template}\n{fmt}\n{query}".encode()


def sign(secret: str, template: str, params: Mapping[str, Any], fmt: str) -> str:
    digest = hmac.new(secret.encode(), canonical(template, params, fmt), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify(
    secrets: Iterable[str],
    template: str,
    params: Mapping[str, Any],
    fmt: str,
    signature: str,
) -> bool:
    """True when ``signature`` was made with any of ``secrets``. Constant-time per secret."""
    given = signature.encode("utf-8", "replace")
    message = canonical(template, params, fmt)
    ok = False
    for secret in secrets:
        expected = hmac.new(secret.encode(), message, hashlib.sha256).digest()
        wanted = base64.urlsafe_b64encode(expected).rstrip(b"=")
        ok |= hmac.compare_digest(wanted, given)  # no early exit: every secret is tried
    return ok


def check(
    settings: Settings,
    template: str,
    params: Mapping[str, Any],
    fmt: str,
    signature: str | None,
) -> None:
    """Raise Forbidden unless signing is off or ``signature`` is right."""
    if not settings.secrets:
        return
    if not signature:
        raise Forbidden(
            f"this server requires signed URLs: parameter {SIGNATURE_PARAM!r} is missing",
            detail={"parameter": SIGNATURE_PARAM},
        )
    if not verify((*settings.secrets, *settings.verify_secrets), template, params, fmt, signature):
        raise Forbidden(
            f"wrong URL signature (parameter {SIGNATURE_PARAM!r}): it does not match the "
            "template, parameters and format of this URL",
            detail={"parameter": SIGNATURE_PARAM},
        )


def signed_path(
    settings: Settings,
    template: str,
    params: Mapping[str, Any],
    fmt: str,
    *,
    secret: str | None = None,
) -> str:
    """``/og/NAME.EXT?k=v...&s=SIG``, signed with ``secret`` or else the first configured secret
    (no ``s`` when there is neither). ``None`` values are left out."""
    params = {key: value for key, value in params.items() if value is not None}
    items = [
        f"{quote(key, safe='')}={quote(_text(value), safe='')}"
        for key, value in sorted(params.items())
        if key != SIGNATURE_PARAM
    ]
    secret = secret or (settings.secrets[0] if settings.secrets else None)
    if secret:
        items.append(f"{SIGNATURE_PARAM}={sign(secret, template, params, fmt)}")
    ext = fmt.lower() or "png"
    return f"/og/{quote(template, safe='')}.{ext}" + (f"?{'&'.join(items)}" if items else "")


def signed_shot_path(
    settings: Settings, params: Mapping[str, Any], fmt: str = "png", *, secret: str | None = None
) -> str:
    """``/shot.EXT?url=...&s=SIG`` (the same signature as /og, over the name ``/shot``)."""
    path = signed_path(settings, SHOT, params, fmt, secret=secret)
    return "/shot." + path.partition(".")[2]


def sign_url(
    template: str,
    params: Mapping[str, Any],
    format: str = "png",
    *,
    base: str = "",
    secret: str | None = None,
    settings: Settings | None = None,
    validate: bool = False,
    version: str | None = None,
) -> str:
    """The /og URL of ``template`` with ``params``; ``base`` (``https://og.example.com``) is put
    in front.

    Signed with ``secret``, else the first of ``settings.secrets`` (``OGSHOT_SECRET``); without
    either the URL is unsigned, and a warning says so (once per process). ``None`` values are
    left out. ``validate=True`` checks template, format and parameters against the templates in
    ``settings.templates_dir`` exactly as the server will, raising the error the server would
    answer with (TemplateNotFound, InvalidFormat, InvalidParameter, TemplateError).

    The URL carries the template's version ``v``: ``version`` when given (``""``: none), else a
    ``v`` in ``params``, else the current version of the template in ``settings.templates_dir``
    and ``settings.static_dir`` (which must be the server's). When this machine has no such
    template the URL has no version, and a warning says so (once per process): it still works,
    with the short cache policy instead of ``immutable``."""
    settings = settings or Settings.load()
    params = {key: value for key, value in params.items() if value is not None}
    if version is None and VERSION_PARAM in params:
        version = params[VERSION_PARAM]
    if version is None:
        # Quietly none when validating: validate_request then raises the server's answer.
        version = _current_version(settings, template, warn=not validate)
    params.pop(VERSION_PARAM, None)
    if version:
        params[VERSION_PARAM] = check_version(version)
    path = signed_path(settings, template, params, format, secret=secret)
    if validate:  # in the server's order: the query's size, then template, format, values
        query = path.partition("?")[2]
        if len(query) > settings.max_query_length:
            raise RequestTooLarge(
                f"query string is {len(query)} bytes; the limit is {settings.max_query_length}"
            )
        validate_request(settings, template, params, format)
    if not (secret or settings.secrets):
        global _warned_unsigned
        if not _warned_unsigned:
            _warned_unsigned = True
            warnings.warn(
                "ogshot.sign_url: no secret (pass secret= or set OGSHOT_SECRET), so the URL is "
                "not signed; a server with OGSHOT_SECRET set answers it with 403",
                UserWarning,
                stacklevel=2,
            )
    return base.rstrip("/") + path


def _current_version(settings: Settings, template: str, *, warn: bool) -> str:
    """The template's current version; "" when it cannot be read here (and a warning once)."""
    try:
        return local_catalog(settings).get(template).version
    except OgshotError as exc:
        global _warned_unversioned
        if warn and not _warned_unversioned:
            _warned_unversioned = True
            warnings.warn(
                f"ogshot.sign_url: {exc.message} (templates_dir {settings.templates_dir}), so the "
                f"URL carries no version ({VERSION_PARAM}=...): caches keep it only for "
                "OGSHOT_MAX_AGE instead of immutably; pass version= or point templates_dir at "
                "the server's templates",
                UserWarning,
                stacklevel=3,
            )
        return ""


def local_catalog(settings: Settings) -> Catalog:
    """The templates in ``settings.templates_dir`` as the server reads them, read again only when
    a file changed: where sign_url and meta_tags learn a template's version and size. Blocking."""
    from ogshot.templates.catalog import (  # the catalog (Jinja, TOML) only if needed
        Catalog,
        Size,
        file_stats,
    )

    templates, static = Path(settings.templates_dir), Path(settings.static_dir)
    key = (templates.resolve(), static.resolve(), settings.max_params, settings.max_param_length)
    stats = {**file_stats(templates), **file_stats(static)}
    known = _catalogs.get(key)
    if known is not None and known[0] == stats:
        return known[1]
    catalog = Catalog(
        templates,
        static,
        max_params=settings.max_params,
        max_param_length=settings.max_param_length,
        size=Size(settings.width, settings.height, settings.device_scale_factor),
        compile_css=False,  # versions and validation need no CSS
    )
    catalog.refresh()
    _catalogs[key] = (stats, catalog)
    return catalog


def validate_request(
    settings: Settings, template: str, params: Mapping[str, Any], fmt: str
) -> None:
    """Raise what the server would answer a request for this URL with, if anything (4xx, or
    TemplateError for a declaration that does not parse). The values are checked as the text the
    URL carries."""
    catalog = local_catalog(settings)
    found = catalog.get(template)
    if normalize_format(fmt or "png") is None:
        raise InvalidFormat(f"unknown format {fmt!r} (use png, jpg, jpeg or webp)")
    carried = {k: _text(v) for k, v in params.items() if k != SIGNATURE_PARAM}
    values, _requested = split_version(carried)  # any well-formed version is taken
    values, _budget = split_budget(values)  # a byte budget out of range is a 400
    catalog.validate(found, values)
