"""Watch the templates and static folders so /preview can re-render when a file is saved.

A :class:`Watcher` counts changes: each batch of changed files bumps ``version`` and wakes everyone
in :meth:`Watcher.wait`. It uses watchfiles (inotify & co., installed with uvicorn[standard]) and
falls back to polling file sizes and mtimes when watchfiles is missing or cannot watch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Iterable
from pathlib import Path

from .templates import file_stats

__all__ = ["Watcher"]

log = logging.getLogger("ogshot.watch")

# Editors save in bursts (write, rename, chmod): wait this long for quiet before reporting.
QUIET_MS = 40
POLL_INTERVAL = 0.25


class Watcher:
    def __init__(self, roots: Iterable[Path], *, polling: bool = False) -> None:
        self.roots = tuple(dict.fromkeys(Path(r).resolve() for r in roots))
        self.polling = polling
        self.backend = "polling" if polling else "watchfiles"
        self.version = 0
        self.boot = secrets.token_hex(4)  # tells a client that this is a new Watcher
        self.changed: tuple[str, ...] = ()  # the last batch, relative to the parent of its root
        self.released = False  # set when the server stops: nobody should wait any more
        self._wakeup = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ogshot-watcher")

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def __aenter__(self) -> Watcher:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def wait(self, after: int, within: float) -> int:
        """The version once it is greater than ``after``, or the current one after ``within`` s."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while self.version <= after and not self.released:
                    await self._wakeup.wait()
        return self.version

    def release(self) -> None:
        """Wake every waiter, now and from now on (the server is stopping)."""
        self.released = True
        self._wakeup.set()

    def _bump(self, paths: Iterable[str]) -> None:
        self.changed = tuple(sorted({self._display(p) for p in paths}))
        self.version += 1
        # Wake the current waiters; later ones wait on a fresh event.
        wakeup, self._wakeup = self._wakeup, asyncio.Event()
        wakeup.set()

    def _display(self, path: str) -> str:
        full = Path(path)
        for root in self.roots:
            if full.is_relative_to(root):
                return str(full.relative_to(root.parent))
        return full.name

    async def _run(self) -> None:
        if not self.polling:
            try:
                await self._watchfiles()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # ImportError, inotify limits, a folder that vanished...
                log.warning("file watching unavailable (%s); polling every %gs", exc, POLL_INTERVAL)
                self.backend = "polling"
        await self._poll()

    async def _watchfiles(self) -> None:
        import watchfiles

        roots = [str(r) for r in self.roots if r.is_dir()]
        if not roots:
            raise FileNotFoundError("none of the watched folders exists")
        async for changes in watchfiles.awatch(
            *roots, stop_event=self._stop, step=QUIET_MS, debounce=1000, rust_timeout=500
        ):
            self._bump(path for _change, path in changes)

    async def _poll(self) -> None:
        before = await asyncio.to_thread(_snapshot, self.roots)
        while not self._stop.is_set():
            await asyncio.sleep(POLL_INTERVAL)
            after = await asyncio.to_thread(_snapshot, self.roots)
            changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
            if changed:
                self._bump(changed)
            before = after


def _snapshot(roots: Iterable[Path]) -> dict[str, tuple[int, int]]:
    """path -> (mtime_ns, size) of every file under the roots."""
    files: dict[str, tuple[int, int]] = {}
    for root in roots:
        files.update(file_stats(root))
    return files
