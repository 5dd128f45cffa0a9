"""Screenshots of web pages (``GET /shot``): a page of an allowlisted origin, captured in a fresh
browser context that keeps nothing, with every request it makes answered by ogshot.

Chromium itself cannot reach the network (``settings.ISOLATION_ARGS``). A route handler on the
shot's context fetches each request the page makes, the navigation, every redirect hop, every
subresource and frame, and refuses (aborts) any that is not:

- http or https, GET or HEAD, to an origin in ``OGSHOT_SHOT_ORIGINS`` (scheme, host and port);
- to a host that resolves, once, to allowed addresses only: public ones, unless the operator
  listed a loopback or private origin explicitly (an IP address, whose requests go to that address
  only, or ``localhost``, whose go to loopback only). The connection is pinned to the address
  that was checked (``egress.py``), so a second lookup cannot point it elsewhere;
- within ``MAX_REQUESTS`` per shot and ``MAX_RESPONSE_BYTES`` per answer.

Redirects are followed here, not by Chromium (which would send the next hop past the handler,
into the isolation proxy): each hop is checked as above before it is fetched, at most
``MAX_REDIRECTS`` of them, and the page gets the last answer (a page reached through a redirect
keeps the URL it asked for, so its relative links resolve against that).

Nothing outlives a shot: ``Set-Cookie`` is dropped, the context blocks service workers and
downloads, ``window.open`` returns null, any other popup (``target=_blank``) is closed as it
opens, and the context is closed after the shot (cookies, storage, cache). ``data:`` URLs never
leave the page and are allowed; ``file:`` and every other scheme are refused.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import re
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

from playwright.async_api import BrowserContext, Page, Request, Route
from playwright.async_api import Error as PlaywrightError

from ogshot.core.errors import (
    BrowserError,
    InvalidParameter,
    OgshotError,
    PageNotCaptured,
    RenderTimeout,
)
from ogshot.core.origins import Origin, origin_of, parse_origin
from ogshot.core.settings import Settings
from ogshot.engine.egress import (
    Address,
    Resolver,
    checked_address,
    is_public_address,
    parse_address,
    pinned_connection,
    system_resolver,
)

__all__ = ["MAX_WAIT_MS", "PageShooter", "ShotOptions", "parse_shot_options"]

MAX_URL_LENGTH = 2000
MAX_WAIT_MS = 5000  # the longest `wait` after the page's load event
MAX_HIDE = 10  # selectors in `hide`
MAX_SELECTOR_LENGTH = 200
MAX_REQUESTS = 300  # requests one page may make; the rest are refused
MAX_RESPONSE_BYTES = 10_000_000  # per answer
MAX_REDIRECTS = 5
MAX_CLIP = 4096  # CSS pixels, each side of an element's box
FETCH_THREADS = 8  # slow origins wait here, not in the threads that encode images
CLOSE_TIMEOUT = 5.0  # seconds a context gets to close (a page in an endless loop included)
SHOT_PARAMS = ("url", "selector", "wait", "hide", "scheme")
# The request headers passed on to the origin; nothing else (no cookies: there are none).
_FORWARDED = ("accept", "accept-language", "user-agent", "range")
# The answer headers passed back to the page (no Set-Cookie, no Alt-Svc, no caching headers).
_KEPT = (
    "location",  # read here to follow redirects; never reaches the page (see _answer)
    "content-type",
    "content-language",
    "content-range",
    "access-control-allow-origin",
    "timing-allow-origin",
)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Characters a selector may not hold here: nothing that ends a rule or starts a comment or markup.
_UNSAFE_SELECTOR = re.compile(r"[{};<\\\x00-\x1f\x7f]|/\*")
_VALIDATE_SELECTORS = """(selectors) => selectors.filter((s) => {
  try { document.querySelectorAll(s); return false; } catch (e) { return true; }
})"""
# window.open refused in every frame before the page's own scripts run: a popup would take the
# foreground, and Chromium throttles the page being captured behind it.
_NO_POPUPS = """Object.defineProperty(window, "open", {
  value: () => null, writable: false, configurable: false });"""
_HIDE = """(elements) => elements.forEach(
  (e) => e.style.setProperty("display", "none", "important"))"""


@dataclass(frozen=True)
class ShotOptions:
    """A validated /shot request: what the page is and how it is captured."""

    url: str
    selector: str = ""
    wait: int = 0  # milliseconds after the load event
    hide: tuple[str, ...] = ()
    scheme: Literal["light", "dark"] = "light"

    def canonical(self) -> str:
        """The stable text of the options, for the cache key."""
        return json.dumps(
            [self.url, self.selector, self.wait, list(self.hide), self.scheme],
            separators=(",", ":"),
            ensure_ascii=False,
        )


def parse_shot_options(params: Mapping[str, Any], origins: Sequence[Origin]) -> ShotOptions:
    """The query of a /shot URL (without ``s`` and ``max_kb``) -> its options, or a 400 naming
    the parameter."""
    for name in params:
        if name not in SHOT_PARAMS:
            raise InvalidParameter(
                name, f"unknown parameter for /shot (it takes: {', '.join(SHOT_PARAMS)}, max_kb)"
            )
    url = _text(params, "url")
    if not url:
        raise InvalidParameter("url", "required: the page to capture (https://...)")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidParameter("url", f"longer than {MAX_URL_LENGTH} characters")
    origin = origin_of(url)
    if origin is None:
        raise InvalidParameter(
            "url",
            "not an http or https URL without credentials (file:, data: and others are refused)",
        )
    if origin not in origins:
        allowed = ", ".join(str(o) for o in origins)
        raise InvalidParameter(
            "url", f"its origin {origin} is not in OGSHOT_SHOT_ORIGINS (allowed: {allowed})"
        )
    selector = _text(params, "selector")
    if selector:
        _check_selector("selector", selector)
    wait_text = _text(params, "wait") or "0"
    if not wait_text.isdigit() or int(wait_text) > MAX_WAIT_MS:
        raise InvalidParameter("wait", f"milliseconds to wait after load, 0..{MAX_WAIT_MS}")
    hide = tuple(part.strip() for part in _text(params, "hide").split(",") if part.strip())
    if len(hide) > MAX_HIDE:
        raise InvalidParameter("hide", f"at most {MAX_HIDE} selectors, got {len(hide)}")
    for item in hide:
        _check_selector("hide", item)
    scheme = _text(params, "scheme") or "light"
    if scheme not in ("light", "dark"):
        raise InvalidParameter("scheme", f"light or dark, got {scheme!r}")
    return ShotOptions(
        url=url,
        selector=selector,
        wait=int(wait_text),
        hide=hide,
        scheme="dark" if scheme == "dark" else "light",
    )


def shot_origins(settings: Settings) -> tuple[Origin, ...]:
    """The settings' origins, parsed (Settings has checked each one)."""
    return tuple(o for o in map(parse_origin, settings.shot_origins) if o is not None)


def _text(params: Mapping[str, Any], name: str) -> str:
    value = params.get(name, "")
    if not isinstance(value, str):
        raise InvalidParameter(name, "must be text")
    return value


def _check_selector(name: str, selector: str) -> None:
    if len(selector) > MAX_SELECTOR_LENGTH:
        raise InvalidParameter(name, f"a selector is at most {MAX_SELECTOR_LENGTH} characters")
    if _UNSAFE_SELECTOR.search(selector):
        raise InvalidParameter(
            name, f"{selector!r} is not a plain CSS selector ({{ }} ; < \\ and /* are refused)"
        )


class Refused(Exception):
    """A request of the page that may not be made; the reason is the message."""


@dataclass
class _Shot:
    """What one shot's route handler saw."""

    requests: int = 0
    # The page's own refused navigations: (url, why), for the error when it is not captured (a
    # refused image, script or frame is what the filter is for, and no reason to fail a shot).
    refused: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class _Fetched:
    status: int
    headers: dict[str, str]
    body: bytes


class PageShooter:
    """Captures pages on the browser that ``browser`` supervises (``new_context``), one fresh
    context per shot, at most ``settings.pool_size`` at a time.

    ``resolver`` and ``address_allowed`` are injectable, so that tests can point a name at a local
    server; the defaults resolve through the system and allow public addresses only."""

    def __init__(
        self,
        browser: Any,
        settings: Settings,
        *,
        resolver: Resolver = system_resolver,
        address_allowed: Callable[[Address], bool] = is_public_address,
    ) -> None:
        self.browser = browser
        self.settings = settings
        self.origins = shot_origins(settings)
        self.resolver = resolver
        self.address_allowed = address_allowed
        self.tls = ssl.create_default_context()
        self._slots = asyncio.Semaphore(settings.pool_size)
        self._threads: concurrent.futures.ThreadPoolExecutor | None = None

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)

    async def shoot(self, options: ShotOptions) -> bytes:
        """The page's PNG (the viewport, or the selector's element). RenderTimeout past the
        deadline, PageNotCaptured when the page cannot be captured as asked."""
        deadline = time.monotonic() + self.settings.shot_timeout
        try:
            async with asyncio.timeout(self.settings.shot_timeout):
                async with self._slots:
                    return await self._shoot(options, deadline)
        except TimeoutError:
            raise RenderTimeout(
                f"the page {options.url} did not finish loading within "
                f"{self.settings.shot_timeout:g} s (OGSHOT_SHOT_TIMEOUT)",
                detail={"url": options.url, "timeout": self.settings.shot_timeout},
            ) from None

    async def _shoot(self, options: ShotOptions, deadline: float) -> bytes:
        settings = self.settings
        context, _generation = await self.browser.new_context(
            viewport={"width": settings.width, "height": settings.height},
            device_scale_factor=settings.device_scale_factor,
            color_scheme=options.scheme,
            java_script_enabled=True,
            service_workers="block",
            accept_downloads=False,
            bypass_csp=False,
        )
        seen = _Shot()
        try:
            await context.route("**/*", lambda route: self._answer(route, seen, deadline))
            await context.add_init_script(_NO_POPUPS)
            page = await context.new_page()
            # Anything else that opens (window.open, target=_blank) is closed at once.
            context.on("page", lambda other: _close_later(other) if other is not page else None)
            return await self._capture(page, options, seen)
        finally:
            await _close_context(context)

    async def _capture(self, page: Page, options: ShotOptions, seen: _Shot) -> bytes:
        try:
            response = await page.goto(options.url, wait_until="load")
        except PlaywrightError as exc:
            why = f"the page did not load ({_first(exc)})"
            raise self._not_captured(options, seen, why) from None
        if response is None or not response.ok:
            status = None if response is None else response.status
            raise self._not_captured(options, seen, f"the page answered {status}")
        if origin_of(page.url) not in self.origins:  # a client-side navigation that was allowed
            raise self._not_captured(options, seen, f"the page went to {page.url}")
        if options.wait:
            await page.wait_for_timeout(options.wait)
        try:
            wanted = [options.selector] if options.selector else []
            invalid = await page.evaluate(_VALIDATE_SELECTORS, [*wanted, *options.hide])
            if invalid:
                name = "selector" if options.selector in invalid else "hide"
                raise InvalidParameter(name, f"{invalid[0]!r} is not a valid CSS selector")
            for selector in options.hide:
                await page.locator(selector).evaluate_all(_HIDE)
            if not options.selector:
                return await page.screenshot(type="png", animations="disabled")
            element = await page.query_selector(options.selector)
            box = await element.bounding_box() if element is not None else None
            if element is None or box is None or box["width"] < 1 or box["height"] < 1:
                raise self._not_captured(
                    options, seen, f"the selector {options.selector!r} matches no visible element"
                )
            if box["width"] > MAX_CLIP or box["height"] > MAX_CLIP:
                size = f"{box['width']:.0f}x{box['height']:.0f}"
                raise self._not_captured(
                    options, seen, f"the element is {size} CSS pixels, over {MAX_CLIP} a side"
                )
            # Scrolled into view and captured on its own box (still within the deadline).
            return await element.screenshot(type="png", animations="disabled")
        except PlaywrightError as exc:
            if page.is_closed():
                raise BrowserError(
                    f"the page closed while it was captured ({_first(exc)})"
                ) from exc
            raise self._not_captured(options, seen, f"capture failed ({_first(exc)})") from exc

    def _not_captured(self, options: ShotOptions, seen: _Shot, why: str) -> OgshotError:
        detail: dict[str, Any] = {"url": options.url}
        if seen.refused:
            refused, reason = seen.refused[0]
            detail.update(refused=refused, reason=reason)
            why = f"{why}; refused {refused}: {reason}"
        return PageNotCaptured(f"{options.url} could not be captured: {why}", detail=detail)

    # -- the route handler: every request of the page ---------------------------------------

    async def _answer(self, route: Route, seen: _Shot, deadline: float) -> None:
        request = route.request
        url = request.url
        try:
            try:
                seen.requests += 1
                headers = {
                    k: v for k, v in (await request.all_headers()).items() if k in _FORWARDED
                }
                for _hop in range(MAX_REDIRECTS + 1):
                    origin = self._check(url, request.method, seen)
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise Refused("the shot's deadline passed")
                    fetched = await asyncio.get_running_loop().run_in_executor(
                        self._executor(), self._fetch, url, request.method, headers, origin, left
                    )
                    location = fetched.headers.get("location")
                    if fetched.status not in _REDIRECTS or not location:
                        break
                    url = urljoin(url, location)
                    seen.requests += 1
                else:
                    raise Refused(f"more than {MAX_REDIRECTS} redirects")
            except Refused as exc:
                if _top_navigation(request):
                    seen.refused.append((url, str(exc)))
                await route.abort("blockedbyclient")
                return
            answer = {k: v for k, v in fetched.headers.items() if k != "location"}
            await route.fulfill(status=fetched.status, headers=answer, body=fetched.body)
        except PlaywrightError:
            pass  # the page or its context went away while we answered

    def _check(self, url: str, method: str, seen: _Shot) -> Origin:
        origin = origin_of(url)
        if origin is None:
            raise Refused("only http and https requests are made")
        if origin not in self.origins:
            raise Refused(f"its origin {origin} is not in OGSHOT_SHOT_ORIGINS")
        if method not in ("GET", "HEAD"):
            raise Refused(f"{method} requests are not made (GET and HEAD only)")
        if seen.requests > MAX_REQUESTS:
            raise Refused(f"the page made more than {MAX_REQUESTS} requests")
        return origin

    def _addresses_for(self, origin: Origin) -> Callable[[Address], bool]:
        """Which addresses a listed origin's host may resolve to (see the module docstring)."""
        literal = parse_address(origin.host)
        if literal is not None:  # listed as an address: that address only
            return lambda address: address == literal
        if origin.host == "localhost":
            return lambda address: address.is_loopback
        return self.address_allowed

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._threads is None:
            self._threads = concurrent.futures.ThreadPoolExecutor(
                max_workers=FETCH_THREADS, thread_name_prefix="ogshot-shot"
            )
        return self._threads

    def _fetch(
        self, url: str, method: str, headers: dict[str, str], origin: Origin, timeout: float
    ) -> _Fetched:
        """One request, on a connection to the address that was checked. Blocking."""
        try:
            host, port, address = checked_address(
                url, [origin.host], self.resolver, self._addresses_for(origin)
            )
        except OgshotError as exc:
            raise Refused(
                exc.message.replace("not a public address", "not an allowed address")
            ) from None
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn = pinned_connection(parts.scheme, host, port, address, timeout, self.tls)
        try:
            conn.request(method, path, headers=headers)
            answer = conn.getresponse()
            body = answer.read(MAX_RESPONSE_BYTES + 1)
            if len(body) > MAX_RESPONSE_BYTES:
                raise Refused(f"the answer is over {MAX_RESPONSE_BYTES} bytes")
            kept = {k.lower(): v for k, v in answer.getheaders() if k.lower() in _KEPT}
            return _Fetched(answer.status, kept, body)
        except (OSError, ValueError) as exc:
            raise Refused(f"fetching it failed ({type(exc).__name__}: {exc})") from None
        finally:
            conn.close()


def _top_navigation(request: Request) -> bool:
    """Whether ``request`` loads the page itself (not a frame, not a subresource)."""
    try:
        return request.is_navigation_request() and request.frame.parent_frame is None
    except PlaywrightError:  # a service worker's request has no frame
        return False


def _close_later(page: Page) -> None:
    task = asyncio.ensure_future(page.close())
    task.add_done_callback(lambda t: t.cancelled() or t.exception())


async def _close_context(context: BrowserContext) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await context.close()


def _first(exc: Exception) -> str:
    return str(exc).strip().split("\n", 1)[0][:200]
