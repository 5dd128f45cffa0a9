"""A server in a subprocess on a free loopback port, and the memory of its process tree.

One harness for everything that runs a real ``ogshot serve`` from outside: ``ogshot bench``, the
tests and ``benchmarks/soak.py`` (and the floor app the bench compares against). A server is
started with its own settings (as ``OGSHOT_*`` variables) and waited for until its readiness path
answers 200; when it does not come up, the error carries its output. Several can run at once,
each with its own cache folder: ``running(a, b, c)`` starts them side by side.

Every process a server starts carries a unique marker in its environment, so that what it left
behind can be found (and killed) even after it was re-parented to init. Its temporary files
(Chromium's profile, Playwright's artifacts, the metrics and Tailwind folders) go to a folder of
its own (``TMPDIR``), removed once the server and its processes are gone: a server that is killed
cannot remove them itself. Process trees and memory come from psutil: RSS sums count a page once
per process that maps it (Chromium's zygote-forked processes share much of theirs), PSS divides
each shared page among its users, so the PSS sum is what a tree really costs. Both are reported.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import psutil

from ogshot.core.settings import Settings
from ogshot.engine.memory import processes_memory, tree, tree_memory

__all__ = [
    "MARKER_VARIABLE",
    "ServerProcess",
    "family",
    "free_port",
    "marked",
    "memory_sampler",
    "processes_memory",
    "running",
    "settings_env",
    "tree",
    "tree_memory",
]

MARKER_VARIABLE = "OGSHOT_TEST_MARK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def settings_env(settings: Settings, cache_dir: Path | None = None) -> dict[str, str]:
    """The ``OGSHOT_*`` variables that make a server use these folders and this pool size."""
    return {
        "OGSHOT_TEMPLATES_DIR": str(Path(settings.templates_dir).resolve()),
        "OGSHOT_STATIC_DIR": str(Path(settings.static_dir).resolve()),
        "OGSHOT_CACHE_DIR": str(Path(cache_dir or settings.cache_dir).resolve()),
        "OGSHOT_POOL_SIZE": str(settings.pool_size),
    }


@contextlib.contextmanager
def memory_sampler(pid: int, interval: float = 0.2) -> Iterator[dict[str, int]]:
    """Start and peak RSS and PSS of ``pid``'s tree, sampled in a thread while the block runs."""
    rss, pss = tree_memory(pid)
    peak = {"rss_start": rss, "pss_start": pss, "rss_peak": rss, "pss_peak": pss}
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(interval):
            rss, pss = tree_memory(pid)
            peak["rss_peak"] = max(peak["rss_peak"], rss)
            peak["pss_peak"] = max(peak["pss_peak"], pss)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()


class ServerProcess:
    """A server command on 127.0.0.1 and a free port (``ogshot serve`` unless ``command`` says
    otherwise; the port goes in as ``OGSHOT_PORT`` and ``{port}`` in ``command``)."""

    def __init__(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        command: Sequence[str] | None = None,
        ready_path: str = "/readyz",
        log: Path | None = None,
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.marker = f"{MARKER_VARIABLE}={uuid.uuid4().hex}"
        key, _, value = self.marker.partition("=")
        self.env = {**os.environ, **(env or {}), key: value}
        self._own_tmpdir = "TMPDIR" in (env or {})  # the caller's choice stands
        self._temp: list[str] = []  # the TMPDIR of each spawn, removed by kill()
        self.env.update(OGSHOT_HOST="127.0.0.1", OGSHOT_PORT=str(self.port))
        base_command = command or [sys.executable, "-m", "ogshot", "serve"]
        self.args = [part.replace("{port}", str(self.port)) for part in base_command] + list(args)
        self.cwd = cwd
        self.ready_path = ready_path
        self.log = log
        self._log_file: IO[bytes] | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.spawned_at = 0.0
        self.graceful_exit = True  # leaving a ``with`` block: SIGTERM first (False: SIGKILL)

    # -- starting ------------------------------------------------------------------------------

    def spawn(self) -> Self:
        """Start the process without waiting for it to be ready."""
        if self.log is not None:
            self._log_file = open(self.log, "a+b")  # noqa: SIM115 - lives as long as the server
        else:
            self._log_file = tempfile.TemporaryFile("a+b")  # noqa: SIM115
        env = self.env
        if not self._own_tmpdir:
            self._temp.append(tempfile.mkdtemp(prefix="ogshot-serve-"))
            env = {**env, "TMPDIR": self._temp[-1]}
        self.spawned_at = time.perf_counter()
        self.process = subprocess.Popen(
            self.args, cwd=self.cwd, env=env, stdout=self._log_file, stderr=subprocess.STDOUT
        )
        return self

    def wait_ready(self, timeout: float = 60.0, path: str | None = None) -> float:
        """Poll until ``path`` (the readiness path) answers 200: seconds since the spawn. If the
        process exits or the time runs out, it is killed and the error shows its output."""
        assert self.process is not None, "spawn() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            with contextlib.suppress(OSError):
                if self.fetch(path or self.ready_path, timeout=5)[0] == 200:
                    return time.perf_counter() - self.spawned_at
            time.sleep(0.02)
        code = self.process.poll()
        self.kill()
        state = f"exited with {code}" if code is not None else f"not ready after {timeout:g} s"
        raise RuntimeError(f"{' '.join(self.args)} {state}; its output:\n{self.output()}")

    def start(self, timeout: float = 60.0) -> Self:
        self.spawn()
        self.wait_ready(timeout)
        return self

    # -- talking to it -------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def fetch(self, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
        """(status, body) of a GET, error statuses included."""
        try:
            with urllib.request.urlopen(self.base + path, timeout=timeout) as response:
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read()

    def output(self) -> str:
        if self._log_file is None:
            return ""
        # pread leaves the offset alone: the server writes through the same open file.
        fd = self._log_file.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")

    # -- its processes -------------------------------------------------------------------------

    def marked(self) -> set[int]:
        return marked(self.marker)

    def family(self) -> set[int]:
        return family(self.marker)

    def memory(self) -> tuple[int, int]:
        """(RSS, PSS) in bytes of the server's process tree."""
        return tree_memory(self.pid) if self.process is not None else (0, 0)

    # -- stopping ------------------------------------------------------------------------------

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM, as a process manager would; the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL if it does not end in time; then whatever it left behind."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.terminate(timeout)
        self.kill()

    def kill(self) -> None:
        """Last resort: the server and anything it started; then its temporary files."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        left = self.family()
        for pid in left:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5  # gone before their files are removed under them
        while left and time.monotonic() < deadline:
            time.sleep(0.02)
            left = self.family()
        while self._temp:
            shutil.rmtree(self._temp.pop(), ignore_errors=True)

    def close(self) -> None:
        self.kill()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.graceful_exit:
            self.stop()
        else:
            self.kill()


@contextlib.contextmanager
def running(*servers: ServerProcess, timeout: float = 60.0) -> Iterator[tuple[ServerProcess, ...]]:
    """Start several servers side by side (their start-ups overlap), stop them all at the end."""
    try:
        for server in servers:
            server.spawn()
        for server in servers:
            server.wait_ready(timeout)
        yield servers
    finally:
        for server in servers:
            if server.process is not None:
                server.stop()


def marked(marker: str) -> set[int]:
    """Live processes whose environment holds ``marker`` (``NAME=value``): everything a server
    started with it, even re-parented to init after its parent died."""
    name, _, value = marker.partition("=")
    found = set()
    for process in psutil.process_iter():
        try:
            if process.environ().get(name) == value and _alive(process):
                found.add(process.pid)
        except psutil.Error:
            continue
    return found


def family(marker: str) -> set[int]:
    """The marked processes and the members of their process groups: Chromium's zygotes and
    renderers do not inherit its environment, but stay in the browser's group."""
    found = marked(marker)
    groups = set()
    for pid in found:
        with contextlib.suppress(OSError):
            groups.add(os.getpgid(pid))
    groups.discard(os.getpgrp())
    for process in psutil.process_iter():
        with contextlib.suppress(OSError, psutil.Error):
            if os.getpgid(process.pid) in groups and _alive(process):
                found.add(process.pid)
    return found


def _alive(process: psutil.Process) -> bool:
    """True for a live process (a zombie waiting to be reaped counts as dead)."""
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
