"""The real nginx (Debian's package) running deploy/nginx.conf, as the system suites start it."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.support.helpers import ROOT
from tests.support.procs import wait_for

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def nginx_conf(nodes: list[int], port: int, base: Path, *, fail_timeout: str = "") -> str:
    """deploy/nginx.conf with this test's ports and paths; every substitution must apply once,
    so the file the test runs stays the file users copy. ``fail_timeout`` (``1s``): how long
    nginx leaves out a node that refused, for suites that restart nodes and wait for nginx to
    send them traffic again (the shipped 10 s is a production pause, not what they test)."""
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
    if fail_timeout:
        shipped = "fail_timeout=10s;"
        assert text.count(shipped) == len(nodes), f"deploy/nginx.conf changed: {shipped!r}"
        text = text.replace(shipped, f"fail_timeout={fail_timeout};")
    return text


def serving(url: str) -> bool:
    """Whether ``url`` answers 200 now (a node or nginx that is up and serving)."""
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def running_nginx(
    nodes: list[int], port: int, edge: Path, *, fail_timeout: str = ""
) -> Iterator[str]:
    """nginx on 127.0.0.1:``port`` with :func:`nginx_conf` in front of ``nodes``, its files in
    ``edge``: the configuration checked (``nginx -t``), the server answering ``/healthz`` (the
    nodes must be up), stopped on exit. Yields its base URL."""
    conf = edge / "nginx.conf"
    conf.write_text(nginx_conf(nodes, port, edge, fail_timeout=fail_timeout))
    command = [NGINX, "-p", str(edge), "-c", str(conf), "-e", str(edge / "error.log")]
    command += ["-g", f"daemon off; pid {edge / 'nginx.pid'};"]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        assert wait_for(lambda: serving(f"{base}/healthz"), timeout=20), (
            edge / "error.log"
        ).read_text()
        yield base
    finally:
        process.terminate()
        process.wait(10)
