"""ogshot's one change detector: a watch over the templates and static folders.

Each batch of changed files first runs ``on_change(paths)`` in a thread (the Catalog reads again
what changed), then bumps ``version`` and wakes everyone in :meth:`Watcher.wait` (the studio's live
reload). In that order, so a browser told about a change never gets the image from before it.

watchfiles (installed with uvicorn[standard]) does the watching: inotify & co., or its own polling
with ``polling=True``, with ``WATCHFILES_FORCE_POLLING=1`` in the environment, or by itself when
the native watcher cannot start (inotify limits reached in a container, a network file system).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Collection, Iterable
from pathlib import Path

import watchfiles

__all__ = ["Watcher"]

log = logging.getLogger("ogshot.watch")

# Editors save in bursts (write, rename, chmod): wait this long for quiet before reporting.
QUIET_MS = 40
POLL_MS = 250


class Watcher:
    def __init__(
        self,
        roots: Iterable[Path],
        *,
        on_change: Callable[[Collection[str]], None] | None = None,
        polling: bool | None = None,
    ) -> None:
        self.roots = tuple(dict.fromkeys(Path(r).resolve() for r in roots))
        self.on_change = on_change
        self.polling = polling  # None: watchfiles decides (WATCHFILES_FORCE_POLLING, WSL)
        self.backend = "polling" if polling else "watchfiles"
        self.version = 0
        self.boot = secrets.token_hex(4)  # tells a client that this is a new Watcher
        self.changed: tuple[str, ...] = ()  # the last batch, relative to the parent of its root
        self.released = False  # set when the server stops: nobody should wait any more
        self._wakeup = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start watching; changes made after this returns are reported."""
        roots = await asyncio.to_thread(lambda: [r for r in self.roots if r.is_dir()])
        missing = [str(r) for r in self.roots if r not in roots]
        if missing:
            log.warning("not watching %s: no such folder", ", ".join(missing))
        if not roots:
            return
        self._task = asyncio.create_task(self._run(roots), name="ogshot-watcher")
        # One turn of the loop lets the task create its watch: awatch sets it up before its
        # first await, so nothing saved from now on is missed.
        await asyncio.sleep(0)

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

    async def _run(self, roots: list[Path]) -> None:
        polling = self.polling
        while not self._stop.is_set():
            try:
                async for changes in watchfiles.awatch(
                    *roots,
                    stop_event=self._stop,
                    force_polling=polling,
                    poll_delay_ms=POLL_MS,
                    step=QUIET_MS,
                    debounce=1000,
                    rust_timeout=500,
                ):
                    await self._report({path for _change, path in changes})
                return
            except (OSError, RuntimeError) as exc:  # inotify limits, a watched folder removed...
                if polling:
                    log.error("file watching stopped (%s): restart to see changes", exc)
                    return
                log.warning("file watching unavailable (%s); polling every %d ms", exc, POLL_MS)
                polling, self.backend = True, "polling"

    async def _report(self, paths: set[str]) -> None:
        if self.on_change is not None:
            try:
                await asyncio.to_thread(self.on_change, paths)
            except Exception:  # never stop watching; the next save tries again
                log.exception("reloading after a change to %s failed", ", ".join(sorted(paths)))
        self._bump(paths)

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
