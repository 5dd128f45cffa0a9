"""Process helpers for the tests: a real ``ogshot serve`` (ogshot/serverproc.py, with httpx answers)
and the Chromium processes a test started, found with psutil."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil

from ogshot.bench.servers import ServerProcess, free_port, marked

__all__ = [
    "Server",
    "alive",
    "chromium_children",
    "cmdline",
    "free_port",
    "group_members",
    "marked",
    "serve_env",
    "wait_for",
]


def alive(pid: int) -> bool:
    """True for a live process (a zombie waiting to be reaped counts as dead)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def cmdline(pid: int) -> str:
    try:
        return " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return ""


def group_members(pgid: int) -> set[int]:
    """Live processes in process group ``pgid`` (Chromium leads its own: renderers, zygote)."""
    members = set()
    for process in psutil.process_iter():
        with contextlib.suppress(OSError):
            if os.getpgid(process.pid) == pgid and alive(process.pid):
                members.add(process.pid)
    return members


def chromium_children(pid: int) -> Iterator[int]:
    """Chromium browser processes (not its renderers or zygote) below ``pid``."""
    try:
        below = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return
    for child in sorted(below, key=lambda p: p.pid):
        try:
            argv = child.cmdline()
        except psutil.Error:
            continue
        if (
            argv
            and "chrom" in Path(argv[0]).name.lower()
            and not any(a.startswith("--type=") for a in argv)
            and alive(child.pid)
        ):
            yield child.pid


def wait_for(check: Callable[[], bool], timeout: float = 20.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


class Server(ServerProcess):
    """``ogshot serve`` on 127.0.0.1 and a free port, over the test's own folders (never the
    repository's config file); answers are httpx responses. Its output goes to ``cwd``."""

    def __init__(self, *args: str, env: dict[str, str], cwd: Path) -> None:
        super().__init__(*args, env=env, cwd=cwd)
        self.env.pop("OGSHOT_CONFIG", None)
        self.log = cwd / f"serve-{self.port}.log"
        self.graceful_exit = False  # a test that wants SIGTERM sends it itself

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(f"{self.base}{path}", timeout=60, **kwargs)


def serve_env(base: Path, **extra: str) -> dict[str, str]:
    """Environment for a server over the tmp copies ``make_settings`` made under ``base``."""
    return {
        "OGSHOT_TEMPLATES_DIR": str(base / "html_templates"),
        "OGSHOT_STATIC_DIR": str(base / "static"),
        "OGSHOT_CACHE_DIR": str(base / "cache"),
        "OGSHOT_POOL_SIZE": "1",
        **extra,
    }
