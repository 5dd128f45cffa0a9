"""Process helpers for the chaos tests: find the Chromium processes a test started (through /proc),
and run a real ``ogshot serve`` in a subprocess on a free port."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from ogshot.bench import free_port

__all__ = [
    "Server",
    "alive",
    "chromium_children",
    "cmdline",
    "descendants",
    "free_port",
    "group_members",
    "is_chromium",
    "marked",
    "serve_env",
    "wait_for",
]


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
    return text[text.rindex(")") + 2 :].split()


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def alive(pid: int) -> bool:
    """True for a live process (a zombie waiting to be reaped counts as dead)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def is_chromium(pid: int) -> bool:
    return "chrom" in cmdline(pid).split(" ", 1)[0].lower()


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` in the process tree."""
    children: dict[int, list[int]] = {}
    for child in _pids():
        fields = _stat(child)
        if fields is not None and fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(child)
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def group_members(pgid: int) -> set[int]:
    """Live processes in process group ``pgid`` (Chromium leads its own: renderers, zygote)."""
    members = set()
    for pid in _pids():
        fields = _stat(pid)
        if fields is not None and fields[0] != "Z" and int(fields[2]) == pgid:
            members.add(pid)
    return members


def marked(marker: str) -> set[int]:
    """Live processes whose environment holds ``marker``: everything a server started with it
    spawned, even when re-parented to init after its parent died."""
    needle = marker.encode()
    found = set()
    for pid in _pids():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if needle in environ and alive(pid):
            found.add(pid)
    return found


def wait_for(check: Callable[[], bool], timeout: float = 20.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


class Server:
    """``ogshot serve`` in a subprocess on 127.0.0.1 and a free port; its output is printed when
    it fails to start. Every process it starts carries a unique marker in its environment."""

    def __init__(self, *args: str, env: dict[str, str], cwd: Path) -> None:
        self.port = free_port()
        self.marker = f"OGSHOT_TEST_MARK={uuid.uuid4().hex}"
        key, _, value = self.marker.partition("=")
        self.env = {**os.environ, **env, key: value, "OGSHOT_PORT": str(self.port)}
        self.env.pop("OGSHOT_CONFIG", None)
        self.args = [sys.executable, "-m", "ogshot", "serve", *args]
        self.cwd = cwd
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = cwd / f"serve-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> Server:
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                self.args, cwd=self.cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        output = self.output()
        self.kill()
        raise RuntimeError(f"ogshot serve did not become ready:\n{output}")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(f"{self.base}{path}", timeout=60, **kwargs)

    def terminate(self, timeout: float = 60.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """Last resort: the server and anything it started (by marker)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        for pid in marked(self.marker):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()


def serve_env(base: Path, **extra: str) -> dict[str, str]:
    """Environment for a server over the tmp copies ``make_settings`` made under ``base``."""
    return {
        "OGSHOT_TEMPLATES_DIR": str(base / "html_templates"),
        "OGSHOT_STATIC_DIR": str(base / "static"),
        "OGSHOT_CACHE_DIR": str(base / "cache"),
        "OGSHOT_POOL_SIZE": "1",
        **extra,
    }


def chromium_children(pid: int) -> Iterator[int]:
    """Chromium browser processes (not its renderers or zygote) below ``pid``."""
    for child in sorted(descendants(pid)):
        line = cmdline(child)
        if is_chromium(child) and "--type=" not in line:
            yield child
