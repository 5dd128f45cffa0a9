"""The memory of a process tree, from psutil: what the browser's ceiling (``browser_max_mb``)
checks, and what the benchmarks report.

RSS sums count a page once per process that maps it (Chromium's zygote-forked processes share
much of theirs); PSS divides each shared page among its users, so the PSS sum is what a tree
really costs. Reading PSS walks ``/proc/PID/smaps_rollup``: a few milliseconds for a Chromium,
so it runs in a thread, never on the event loop.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import psutil

__all__ = ["process_kind", "processes_memory", "tree", "tree_memory"]


def tree(pid: int) -> list[psutil.Process]:
    """A live process and all its descendants (an empty list once it is gone)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def tree_memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in bytes of a process and all its descendants."""
    return processes_memory(tree(pid))


def processes_memory(processes: Sequence[psutil.Process]) -> tuple[int, int]:
    rss = pss = 0
    for process in processes:
        try:
            info = process.memory_full_info()
        except psutil.Error:  # gone meanwhile, or not ours to read
            continue
        rss += info.rss
        pss += info.pss
    return rss, pss


def process_kind(process: psutil.Process) -> str:
    """What a process of an ogshot server is: ``browser``, ``renderer``, ``gpu-process``,
    ``zygote``, ``utility:<service>`` (Chromium's, by its ``--type``), ``driver`` (Playwright's
    node), or ``other``."""
    try:
        argv = process.cmdline()
    except psutil.Error:
        return "other"
    if not argv:
        return "other"
    kind = next((a.split("=", 1)[1] for a in argv if a.startswith("--type=")), None)
    program = os.path.basename(argv[0]).lower()
    if kind is None:
        if "chrom" in program:
            return "browser"
        return "driver" if program == "node" else "other"
    if kind == "utility":
        sub_type = "--utility-sub-type="
        service = next((a[len(sub_type) :] for a in argv if a.startswith(sub_type)), "")
        return f"utility:{service.rsplit('.', 1)[-1]}" if service else "utility"
    return kind
