"""The real nginx (Debian's package) running deploy/nginx.conf, as the system suites start it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx

from tests.support.helpers import ROOT

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def nginx_conf(nodes: list[int], port: int, base: Path) -> str:
    """deploy/nginx.conf with this test's ports and paths; every substitution must apply once,
    so the file the test runs stays the file users copy."""
    text = (ROOT / "deploy" / "nginx.conf").read_text()
    changes = [
        ("user www-data;", "user root;" if os.geteuid() == 0 else ""),
        ("worker_processes auto;", "worker_processes 1;"),
        ("access_log /var/log/nginx/ogshot.access.log", f"access_log {base / 'access.log'}"),
        ("proxy_cache_path /var/cache/nginx/ogshot", f"proxy_cache_path {base / 'cache'}"),
        ("server 127.0.0.1:8001", f"server 127.0.0.1:{nodes[0]}"),
        ("server 127.0.0.1:8002", f"server 127.0.0.1:{nodes[1]}"),
        ("listen 80;", f"listen 127.0.0.1:{port};"),
    ]
    for old, new in changes:
        assert text.count(old) == 1, f"deploy/nginx.conf changed: {old!r} is not there once"
        text = text.replace(old, new)
    return text


def serving(url: str) -> bool:
    """Whether ``url`` answers 200 now (a node or nginx that is up and serving)."""
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
