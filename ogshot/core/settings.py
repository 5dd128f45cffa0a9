"""Settings: one frozen, keyword-only object.

Sources, later ones winning: the defaults below, ``playwright.config.json`` (the browser side),
``OGSHOT_*`` environment variables, then keyword overrides from Python or the CLI. A bad value
raises ConfigError naming the key and the value.

Every field is an environment variable, ``OGSHOT_<FIELD>`` unless ``_ENV_NAMES`` gives it its
public name, parsed by the field's type (envvars.py). A new field needs no code here, only its
meaning in docs/hooks/settings_help.toml (the docs build fails without it). ``Settings.to_env`` is
the way back.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ogshot.core.envvars import Bytes, EnvVar, env_var, parse_size
from ogshot.core.errors import ConfigError
from ogshot.core.origins import parse_origin

__all__ = ["ESSENTIAL_ARGS", "Bytes", "EnvVar", "Settings", "env_vars", "parse_size"]

# What any headless Chromium on a server needs: no sandbox (we run as root in containers), and
# none of the background traffic Chromium starts with, which on a closed network it retries at
# every start.
ESSENTIAL_ARGS = (
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)


CONFIG_FILE = "playwright.config.json"

# A count of bytes: its environment variable may say ``500MB`` or ``1GiB`` (see parse_size).

DEFAULT_LAUNCH_ARGS = (
    *ESSENTIAL_ARGS,
    "--disable-gpu",
    "--disable-dev-shm-usage",
    # Frames on demand instead of at 60 Hz: a capture no longer waits for the next vsync tick.
    "--disable-frame-rate-limit",
    "--disable-gpu-vsync",
)

# Always added to Chromium's command line, whatever the config says: they keep a rendering page
# off the network for what the page router never sees (WebSockets, WebRTC, DNS prefetch, ...).
# Every connection goes to a proxy that does not exist (loopback included), no host name
# resolves, and WebRTC may not send UDP around the proxy.
ISOLATION_ARGS = (
    "--proxy-server=http://proxy.invalid:9",
    "--proxy-bypass-list=<-loopback>",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
)
# Switches that would undo the isolation or the same-origin policy: refused in launch_args.
_UNSAFE_ARGS = (
    "--proxy-server",
    "--proxy-bypass-list",
    "--proxy-pac-url",
    "--no-proxy-server",
    "--host-resolver-rules",
    "--force-webrtc-ip-handling-policy",
    "--disable-web-security",
    "--allow-file-access-from-files",
    "--remote-debugging-address",
)


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ogshot"


def _default_pool_size() -> int:
    # Two pages a core: a render spends part of its time in round trips (CDP, the driver, the
    # encode thread) during which its page's renderer is idle, and Chromium's per-frame work is
    # shared by the pages drawing at once. Measured on 2 cores (benchmarks/peers.py, idle, same
    # day): saturated renders/s with 2 / 3 / 4 pages, flat 25.1 / 36.8 / 41.9, gradient 13.6 /
    # 18.5 / 20.6, photo 11.2 / 13.0 / 14.9, and CPU per render fell with them (gradient 117 / 90
    # / 83 ms). Capped at 8: each page is a renderer process (~40-60 MB).
    return max(2, min(8, 2 * (os.cpu_count() or 1)))


@dataclass(frozen=True, kw_only=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    templates_dir: Path = Path("html_templates")
    static_dir: Path = Path("static")
    cache_dir: Path = field(default_factory=_default_cache_dir)
    cache_size: Bytes = 1 << 30
    cache_ttl: int = 7 * 24 * 3600
    # Seconds past cache_ttl that an image may still be served while one refresh runs (and when
    # rendering fails); the disk cache and Redis keep entries this much longer.
    stale_ttl: int = 7 * 24 * 3600
    # Cache-Control of images (see freshness.py): a URL with the template's current version is
    # immutable for versioned_max_age; one without (or with an old version) is kept max_age, then
    # revalidated by ETag, and may be served stale meanwhile or when ogshot fails.
    versioned_max_age: int = 365 * 24 * 3600
    max_age: int = 24 * 3600
    stale_while_revalidate: int = 7 * 24 * 3600  # 0: not said
    stale_if_error: int = 7 * 24 * 3600  # 0: not said
    cache_control: str = ""  # set: this Cache-Control for every image instead of the above
    memory_cache_size: Bytes = 64 << 20  # hot images kept in memory in front of the disk cache
    pool_size: int = field(default_factory=_default_pool_size)
    render_timeout: float = 10.0
    queue_size: int = 0  # 0: 16 waiting requests per page
    queue_timeout: float = 5.0
    secrets: tuple[str, ...] = ()
    # Accepted when verifying a signature, never used to sign: how a new secret reaches every
    # node before any node or app signs with it (docs/operations/secret-rotation.md).
    verify_secrets: tuple[str, ...] = field(default=(), repr=False)
    remote_images: tuple[str, ...] = ()
    dev: bool = False
    executable_path: str | None = None
    launch_args: tuple[str, ...] = DEFAULT_LAUNCH_ARGS
    width: int = 1200
    height: int = 630
    device_scale_factor: float = 1.0
    # Missing glyphs or failed images: 422 Unrenderable (never cached) instead of a warning.
    strict: bool = False
    png_colours: int = 0  # 0: truecolour PNG; 2..256: a palette of that size
    png_compression: int = 6
    jpeg_quality: int = 88
    # "chromium": Chromium encodes the JPEG and libturbojpeg makes it progressive losslessly
    # (engine/jpeg_repack.py): the same pixels and bytes as "vips", 20-40 ms less CPU a miss.
    # "vips": Chromium captures a lossless PNG that pyvips encodes (progressive, optimised tables).
    jpeg_encoder: Literal["vips", "chromium"] = "chromium"
    webp_quality: int = 88
    recycle_after: int = 5000  # renders before Chromium is restarted
    # Chromium's memory (PSS of its processes, MB) above which it is restarted the same way,
    # checked every few seconds while it renders; 0: no ceiling.
    browser_max_mb: int = 0
    # Chromium's CPU priority below ogshot's own (a nice value, 0..19; 0: level): encoding and
    # answering hits come first when the cores are busy, and Chromium takes the rest.
    browser_nice: int = 10
    # Pages draw only the frames a render captures (HeadlessExperimental.beginFrame) instead of
    # drawing on their own clock: less Chromium CPU a render (engine/begin_frame.py).
    begin_frame: bool = False
    health_interval: float = 5.0  # seconds between health probes of Chromium; 0: no probe
    health_timeout: float = 5.0  # a Chromium that does not answer a probe in time is killed
    shutdown_timeout: float = 15.0  # seconds in-flight requests get to finish on SIGTERM
    max_query_length: int = 8192
    max_params: int = 32
    max_param_length: int = 1000
    remote_images_max_size: Bytes = 5_000_000  # bytes per remote image
    remote_images_timeout: float = 5.0  # seconds per remote image, redirects included
    remote_images_ttl: int = 3600  # seconds a fetched remote image is reused
    redis_url: str = ""  # redis://host:6379/0: a second cache level shared by every node
    admin_token: str = field(default="", repr=False)  # POST /admin/purge bearer; empty: off
    metrics: bool = True  # GET /metrics in Prometheus text format
    log_format: Literal["text", "json"] = "text"  # json: a JSON line per request and event
    sentry_dsn: str = ""  # error tracking with sentry-sdk; empty: off
    alert_webhook: str = ""  # URL that gets a JSON POST when an operator must act; empty: off
    alert_window: float = 300.0  # seconds of history each alert condition looks at
    alert_interval: float = 600.0  # seconds before a condition that lasts is posted again
    alert_error_ratio: float = 0.5  # a template failing this share of its requests alerts
    alert_min_requests: int = 10  # ... once it had at least this many in the window
    alert_restarts: int = 3  # Chromium restarts in the window that alert
    alert_check_every: float = 5.0  # seconds between checks of the conditions
    site_name: str = ""  # the studio's og:site_name when a template has no site parameter
    # An image fetched more than once is made again through the warm lane at this fraction of
    # its TTL, so a popular image is never served stale or missed because it aged; 0: off.
    refresh_ahead: float = 0.8
    # GET /shot.{png,jpg,webp}?url=: origins whose pages may be captured (scheme://host[:port]),
    # every request of the page included; empty: /shot answers 404.
    shot_origins: tuple[str, ...] = ()
    shot_ttl: int = 300  # seconds a page screenshot is fresh; then served stale while refreshed
    shot_timeout: float = 15.0  # seconds one page screenshot may take, its page's requests included
    # Purge endpoints of the edge caches in front of the nodes (nginx with the cache-purge
    # module: http://edge/purge), each sent ``PURGE <endpoint><path?query>`` for every URL a purge
    # removes; comma-separated; empty: off.
    edge_purge_url: tuple[str, ...] = ()
    purge_webhook: str = ""  # URL that gets each purge as a JSON POST (CDN glue); empty: off

    def __post_init__(self) -> None:
        _check(self.port, "port", lambda v: 0 <= v <= 65535, "not a TCP port")
        _check(self.pool_size, "pool_size", lambda v: 1 <= v <= 64, "must be 1..64")
        _check(self.render_timeout, "render_timeout", lambda v: 0 < v <= 300, "must be 0..300 s")
        _check(self.queue_size, "queue_size", lambda v: v >= 0, "must be >= 0")
        _check(self.queue_timeout, "queue_timeout", lambda v: v > 0, "must be > 0")
        _check(self.cache_size, "cache_size", lambda v: v >= 0, "must be >= 0")
        _check(self.cache_ttl, "cache_ttl", lambda v: v >= 0, "must be >= 0")
        _check(self.stale_ttl, "stale_ttl", lambda v: v >= 0, "must be >= 0")
        for name in ("versioned_max_age", "max_age", "stale_while_revalidate", "stale_if_error"):
            _check(getattr(self, name), name, lambda v: v >= 0, "must be >= 0")
        _check(self.memory_cache_size, "memory_cache_size", lambda v: v >= 0, "must be >= 0")
        _check(self.width, "width", lambda v: 1 <= v <= 4096, "must be 1..4096")
        _check(self.height, "height", lambda v: 1 <= v <= 4096, "must be 1..4096")
        _check(self.device_scale_factor, "device_scale_factor", lambda v: 0.5 <= v <= 4, "0.5..4")
        _check(self.png_colours, "png_colours", lambda v: v == 0 or 2 <= v <= 256, "0 or 2..256")
        _check(self.png_compression, "png_compression", lambda v: 0 <= v <= 9, "must be 0..9")
        _check(self.jpeg_quality, "jpeg_quality", lambda v: 1 <= v <= 100, "must be 1..100")
        encoders = ("vips", "chromium")
        _check(self.jpeg_encoder, "jpeg_encoder", lambda v: v in encoders, "vips or chromium")
        _check(self.webp_quality, "webp_quality", lambda v: 1 <= v <= 100, "must be 1..100")
        _check(self.recycle_after, "recycle_after", lambda v: v >= 0, "must be >= 0")
        _check(self.browser_max_mb, "browser_max_mb", lambda v: v >= 0, "must be >= 0 (0: off)")
        _check(self.browser_nice, "browser_nice", lambda v: 0 <= v <= 19, "must be 0..19")
        _check(self.health_interval, "health_interval", lambda v: v >= 0, "must be >= 0")
        _check(self.health_timeout, "health_timeout", lambda v: v > 0, "must be > 0")
        _check(self.shutdown_timeout, "shutdown_timeout", lambda v: v >= 0, "must be >= 0")
        _check(self.max_params, "max_params", lambda v: v >= 1, "must be >= 1")
        _check(self.max_param_length, "max_param_length", lambda v: v >= 1, "must be >= 1")
        _check(self.max_query_length, "max_query_length", lambda v: v >= 256, "must be >= 256")
        _check(self.remote_images_max_size, "remote_images_max_size", lambda v: v >= 1, ">= 1")
        _check(self.remote_images_timeout, "remote_images_timeout", lambda v: v > 0, "must be > 0")
        _check(self.remote_images_ttl, "remote_images_ttl", lambda v: v >= 0, "must be >= 0")
        _check(self.log_format, "log_format", lambda v: v in ("text", "json"), "text or json")
        _check(self.alert_webhook, "alert_webhook", _webhook_url, "not an http(s) URL")
        _check(self.alert_window, "alert_window", lambda v: v > 0, "must be > 0")
        _check(self.alert_interval, "alert_interval", lambda v: v >= 0, "must be >= 0")
        _check(self.alert_error_ratio, "alert_error_ratio", lambda v: 0 < v <= 1, "0..1")
        _check(self.alert_min_requests, "alert_min_requests", lambda v: v >= 1, "must be >= 1")
        _check(self.alert_restarts, "alert_restarts", lambda v: v >= 1, "must be >= 1")
        _check(self.alert_check_every, "alert_check_every", lambda v: v > 0, "must be > 0")
        if self.verify_secrets and not self.secrets:
            # Named by its variable and the value hidden: the error is logged, and it is a secret.
            reason = "needs OGSHOT_SECRET: without a signing secret URLs are not checked at all"
            raise ConfigError("OGSHOT_VERIFY_SECRETS", "<hidden>", reason)
        _check(self.refresh_ahead, "refresh_ahead", lambda v: 0 <= v < 1, "must be 0 (off) or <1")
        for base in self.edge_purge_url:
            _check(base, "edge_purge_url", _edge_base, "not an http(s) URL")
        _check(self.purge_webhook, "purge_webhook", _webhook_url, "not an http(s) URL")
        for host in self.remote_images:
            _check(host, "remote_images", _host_pattern, "not a host or *.domain pattern")
        for secret in self.secrets:  # HMAC with an empty key: anyone could sign (JSON array form)
            _check(secret, "secrets", bool, "an empty secret would let anyone sign URLs")
        for origin in self.shot_origins:
            _check(
                origin, "shot_origins", _origin, "not an origin (https://host or http://host:port)"
            )
        _check(self.shot_ttl, "shot_ttl", lambda v: v >= 0, "must be >= 0")
        _check(self.shot_timeout, "shot_timeout", lambda v: 0 < v <= 120, "must be 0..120 s")
        for arg in self.launch_args:
            name = arg.split("=", 1)[0]
            if name in _UNSAFE_ARGS and arg not in ISOLATION_ARGS:
                raise ConfigError("launch_args", arg, "would let pages reach the network")
        isolated = self.launch_args + tuple(a for a in ISOLATION_ARGS if a not in self.launch_args)
        object.__setattr__(self, "launch_args", isolated)

    @property
    def effective_queue_size(self) -> int:
        return self.queue_size or 16 * self.pool_size

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def load(
        cls,
        *,
        environ: Mapping[str, str] | None = None,
        config_file: str | Path | None = None,
        **overrides: Any,
    ) -> Settings:
        """Defaults <- playwright.config.json <- OGSHOT_* <- overrides."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        path = Path(config_file or env.get("OGSHOT_CONFIG") or CONFIG_FILE)
        if path.exists():
            values.update(_from_file(path))
        elif config_file is not None or "OGSHOT_CONFIG" in env:
            raise ConfigError("OGSHOT_CONFIG", str(path), "file does not exist")
        from_env: dict[str, str] = {}  # field -> 'OGSHOT_X=...', to name it in an error
        for var in env_vars():
            raw = env.get(var.name)
            if raw is None or (raw.strip() == "" and not var.empty_ok):
                continue
            try:
                values[var.field] = var.parse(raw.strip())
            except (ValueError, TypeError) as exc:
                shown = _shown(var.field, raw)
                reason = str(exc) if shown is raw and str(exc) else "not a valid value"
                raise ConfigError(var.name, shown, reason) from None
            from_env[var.field] = f"{var.name}={_shown(var.field, raw)!r}"
        for key, value in overrides.items():
            if value is not None:
                values[key] = value
                from_env.pop(key, None)
        try:
            return cls(**values)
        except ConfigError as exc:
            if exc.key not in from_env:
                raise
            reason = f"{exc.reason} (from {from_env[exc.key]})"
            raise ConfigError(exc.key, exc.value, reason) from None

    def to_env(self) -> dict[str, str]:
        """Every field as its ``OGSHOT_*`` variable: ``Settings.load(environ=s.to_env())`` is
        ``s`` again. How ``ogshot serve`` hands its settings to worker processes."""
        return {var.name: var.format(getattr(self, var.field)) for var in env_vars()}


# Fields whose values are credentials (or may carry one, as a URL's password or token): an error
# about them names the field and the reason, never the value, which would end up in logs.
SECRET_FIELDS = frozenset(
    {"secrets", "verify_secrets", "admin_token", "sentry_dsn", "redis_url", "alert_webhook"}
)


def _shown(key: str, value: object) -> object:
    return f"<{len(str(value))} characters, not shown>" if key in SECRET_FIELDS else value


def _check(value: Any, key: str, ok: Callable[[Any], bool], reason: str) -> None:
    if not ok(value):
        raise ConfigError(key, _shown(key, value), reason)


def _origin(text: str) -> bool:
    return parse_origin(text) is not None


def _webhook_url(text: str) -> bool:
    return text == "" or re.match(r"^https?://[^\s/]+", text) is not None


def _edge_base(text: str) -> bool:
    return re.match(r"^https?://[^\s/?#]+(/[^\s?#]*)?$", text) is not None  # no query


_HOST = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?$")


def _host_pattern(text: str) -> bool:
    """``example.com``, ``img.example.com`` or ``*.example.com`` (no bare ``*``, no port)."""
    return _HOST.match(text.lower()) is not None


# Fields whose public variable is not OGSHOT_<FIELD> (names in CONVENTIONS.md).
_ENV_NAMES = {"secrets": "OGSHOT_SECRET", "executable_path": "OGSHOT_CHROMIUM"}


@functools.cache
def env_vars() -> tuple[EnvVar, ...]:
    """The environment variables, one per Settings field, derived from the fields' types."""
    hints = typing.get_type_hints(Settings, include_extras=True)
    return tuple(
        env_var(_ENV_NAMES.get(f.name, f"OGSHOT_{f.name.upper()}"), f.name, hints[f.name])
        for f in dataclasses.fields(Settings)
    )


# playwright.config.json keys -> Settings fields.
_FILE_KEYS: dict[str, tuple[str, type | tuple[type, ...]]] = {
    "executable_path": ("executable_path", (str, type(None))),
    "launch_args": ("launch_args", list),
    "pool_size": ("pool_size", (int, type(None))),
    "device_scale_factor": ("device_scale_factor", (int, float)),
    "render_timeout": ("render_timeout", (int, float)),
    "queue_size": ("queue_size", int),
    "queue_timeout": ("queue_timeout", (int, float)),
    "recycle_after": ("recycle_after", int),
    "browser_nice": ("browser_nice", int),
}


def _from_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(str(path), "<file>", f"not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(str(path), type(data).__name__, "must be a JSON object")
    values: dict[str, Any] = {}
    for key, raw in data.items():
        if key == "viewport":
            if not (
                isinstance(raw, dict)
                and isinstance(raw.get("width"), int)
                and isinstance(raw.get("height"), int)
            ):
                raise ConfigError(f"{path.name}: viewport", raw, "needs integer width and height")
            values["width"], values["height"] = raw["width"], raw["height"]
            continue
        if key not in _FILE_KEYS:
            raise ConfigError(
                f"{path.name}: {key}", raw, f"unknown key (known: {sorted(_FILE_KEYS)})"
            )
        field_name, kind = _FILE_KEYS[key]
        if isinstance(raw, bool) or not isinstance(raw, kind):
            raise ConfigError(f"{path.name}: {key}", raw, "wrong type")
        if raw is None:
            continue
        if isinstance(raw, list):  # launch_args
            if not all(isinstance(a, str) for a in raw):
                raise ConfigError(f"{path.name}: {key}", raw, "must be a list of strings")
            raw = tuple(raw)
        values[field_name] = raw
    return values
