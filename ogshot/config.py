"""Settings: one frozen, keyword-only object.

Sources, later ones winning: the defaults below, ``playwright.config.json`` (the browser side),
``OGSHOT_*`` environment variables, then keyword overrides from Python or the CLI. A bad value
raises ConfigError naming the key and the value.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .chromium import ESSENTIAL_ARGS
from .errors import ConfigError

__all__ = ["Settings", "parse_size"]

CONFIG_FILE = "playwright.config.json"

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
    # Each page's renderer and the compositor share the cores; more pages than cores only queue
    # inside Chromium instead of in ogshot, where the queue is bounded and visible.
    return max(2, min(8, os.cpu_count() or 2))


@dataclass(frozen=True, kw_only=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    templates_dir: Path = Path("html_templates")
    static_dir: Path = Path("static")
    cache_dir: Path = field(default_factory=_default_cache_dir)
    cache_size: int = 1 << 30
    cache_ttl: int = 7 * 24 * 3600
    cache_control: str = ""  # empty: "public, max-age=<cache_ttl>, immutable"
    memory_cache_size: int = 64 << 20  # hot images kept in memory in front of the disk cache
    pool_size: int = field(default_factory=_default_pool_size)
    render_timeout: float = 10.0
    queue_size: int = 0  # 0: 16 waiting requests per page
    queue_timeout: float = 5.0
    secrets: tuple[str, ...] = ()
    remote_images: tuple[str, ...] = ()
    dev: bool = False
    executable_path: str | None = None
    launch_args: tuple[str, ...] = DEFAULT_LAUNCH_ARGS
    width: int = 1200
    height: int = 630
    device_scale_factor: float = 1.0
    png_colours: int = 0  # 0: truecolour PNG; 2..256: a palette of that size
    png_compression: int = 6
    jpeg_quality: int = 88
    # "vips": Chromium captures a lossless PNG that pyvips encodes (progressive, optimised Huffman
    # tables); "chromium": Chromium encodes a baseline JPEG itself, ~20 ms faster a miss, same
    # SSIM, ~10% more bytes.
    jpeg_encoder: str = "vips"
    webp_quality: int = 88
    recycle_after: int = 5000  # renders before Chromium is restarted
    health_interval: float = 5.0  # seconds between health probes of Chromium; 0: no probe
    health_timeout: float = 5.0  # a Chromium that does not answer a probe in time is killed
    shutdown_timeout: float = 15.0  # seconds in-flight requests get to finish on SIGTERM
    max_query_length: int = 8192
    max_params: int = 32
    max_param_length: int = 1000
    remote_images_max_size: int = 5_000_000  # bytes per remote image
    remote_images_timeout: float = 5.0  # seconds per remote image, redirects included
    remote_images_ttl: int = 3600  # seconds a fetched remote image is reused

    def __post_init__(self) -> None:
        _check(self.port, "port", lambda v: 0 <= v <= 65535, "not a TCP port")
        _check(self.pool_size, "pool_size", lambda v: 1 <= v <= 64, "must be 1..64")
        _check(self.render_timeout, "render_timeout", lambda v: 0 < v <= 300, "must be 0..300 s")
        _check(self.queue_size, "queue_size", lambda v: v >= 0, "must be >= 0")
        _check(self.queue_timeout, "queue_timeout", lambda v: v > 0, "must be > 0")
        _check(self.cache_size, "cache_size", lambda v: v >= 0, "must be >= 0")
        _check(self.cache_ttl, "cache_ttl", lambda v: v >= 0, "must be >= 0")
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
        _check(self.health_interval, "health_interval", lambda v: v >= 0, "must be >= 0")
        _check(self.health_timeout, "health_timeout", lambda v: v > 0, "must be > 0")
        _check(self.shutdown_timeout, "shutdown_timeout", lambda v: v >= 0, "must be >= 0")
        _check(self.max_params, "max_params", lambda v: v >= 1, "must be >= 1")
        _check(self.max_param_length, "max_param_length", lambda v: v >= 1, "must be >= 1")
        _check(self.max_query_length, "max_query_length", lambda v: v >= 256, "must be >= 256")
        _check(self.remote_images_max_size, "remote_images_max_size", lambda v: v >= 1, ">= 1")
        _check(self.remote_images_timeout, "remote_images_timeout", lambda v: v > 0, "must be > 0")
        _check(self.remote_images_ttl, "remote_images_ttl", lambda v: v >= 0, "must be >= 0")
        for host in self.remote_images:
            _check(host, "remote_images", _host_pattern, "not a host or *.domain pattern")
        for arg in self.launch_args:
            name = arg.split("=", 1)[0]
            if name in _UNSAFE_ARGS and arg not in ISOLATION_ARGS:
                raise ConfigError("launch_args", arg, "would let pages reach the network")
        isolated = self.launch_args + tuple(a for a in ISOLATION_ARGS if a not in self.launch_args)
        object.__setattr__(self, "launch_args", isolated)

    @property
    def effective_cache_control(self) -> str:
        return self.cache_control or f"public, max-age={self.cache_ttl}, immutable"

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
        for var, (key, parse) in _ENV.items():
            raw = env.get(var)
            if raw is None or (raw.strip() == "" and key not in _EMPTY_OK):
                continue
            try:
                values[key] = parse(raw.strip())
            except (ValueError, TypeError) as exc:
                raise ConfigError(var, raw, str(exc) or "not a valid value") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _check(value: Any, key: str, ok: Callable[[Any], bool], reason: str) -> None:
    if not ok(value):
        raise ConfigError(key, value, reason)


_HOST = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?$")


def _host_pattern(text: str) -> bool:
    """``example.com``, ``img.example.com`` or ``*.example.com`` (no bare ``*``, no port)."""
    return _HOST.match(text.lower()) is not None


_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)b?$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """'1048576', '500MB', '1GB' (decimal), '1GiB' (binary) -> bytes."""
    match = _SIZE.match(text.strip())
    if not match:
        raise ValueError("not a size (use bytes, or e.g. 500MB, 1GB, 1GiB)")
    number, prefix, binary = match.groups()
    power = "kmgt".find(prefix.lower()) + 1 if prefix else 0
    return int(float(number) * ((1024 if binary else 1000) ** power))


def _bool(text: str) -> bool:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("not a boolean (use 1/0, true/false, yes/no, on/off)")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


_EMPTY_OK = {"secrets", "remote_images", "dev"}

_ENV: dict[str, tuple[str, Callable[[str], Any]]] = {
    "OGSHOT_HOST": ("host", str),
    "OGSHOT_PORT": ("port", int),
    "OGSHOT_TEMPLATES_DIR": ("templates_dir", Path),
    "OGSHOT_STATIC_DIR": ("static_dir", Path),
    "OGSHOT_CACHE_DIR": ("cache_dir", Path),
    "OGSHOT_CACHE_SIZE": ("cache_size", parse_size),
    "OGSHOT_CACHE_TTL": ("cache_ttl", _positive_int),
    "OGSHOT_CACHE_CONTROL": ("cache_control", str),
    "OGSHOT_MEMORY_CACHE_SIZE": ("memory_cache_size", parse_size),
    "OGSHOT_POOL_SIZE": ("pool_size", int),
    "OGSHOT_RENDER_TIMEOUT": ("render_timeout", float),
    "OGSHOT_QUEUE_SIZE": ("queue_size", int),
    "OGSHOT_QUEUE_TIMEOUT": ("queue_timeout", float),
    "OGSHOT_SECRET": ("secrets", _csv),
    "OGSHOT_REMOTE_IMAGES": ("remote_images", _csv),
    "OGSHOT_REMOTE_IMAGES_MAX_SIZE": ("remote_images_max_size", parse_size),
    "OGSHOT_REMOTE_IMAGES_TIMEOUT": ("remote_images_timeout", float),
    "OGSHOT_REMOTE_IMAGES_TTL": ("remote_images_ttl", _positive_int),
    "OGSHOT_DEV": ("dev", _bool),
    "OGSHOT_CHROMIUM": ("executable_path", str),
    "OGSHOT_PNG_COLOURS": ("png_colours", int),
    "OGSHOT_PNG_COMPRESSION": ("png_compression", int),
    "OGSHOT_JPEG_QUALITY": ("jpeg_quality", int),
    "OGSHOT_JPEG_ENCODER": ("jpeg_encoder", str),
    "OGSHOT_WEBP_QUALITY": ("webp_quality", int),
    "OGSHOT_RECYCLE_AFTER": ("recycle_after", _positive_int),
    "OGSHOT_HEALTH_INTERVAL": ("health_interval", float),
    "OGSHOT_HEALTH_TIMEOUT": ("health_timeout", float),
    "OGSHOT_SHUTDOWN_TIMEOUT": ("shutdown_timeout", float),
}

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
