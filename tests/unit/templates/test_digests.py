"""The static folder's content digest: what decides a template's version besides its own source."""

from __future__ import annotations

import os
from pathlib import Path

from ogshot.templates.digests import StaticDigest, file_stats, relative_to


def test_the_digest_follows_content_names_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "css").mkdir()
    css = tmp_path / "css" / "a.css"
    css.write_text("body { color: red }")
    digest = StaticDigest(tmp_path)
    first = digest.refresh()
    assert len(first) == 64 and first == digest.digest

    os.utime(css, ns=(1, 1))  # a touch is not a change
    assert digest.refresh() == first
    css.write_text("body { color: blue }")
    changed = digest.refresh()
    assert changed != first
    css.write_text("body { color: red }")  # back to the same bytes: back to the same digest
    assert digest.refresh() == first
    css.rename(tmp_path / "css" / "b.css")  # same bytes, another name: another picture
    assert digest.refresh() not in (first, changed)


def test_a_same_size_edit_within_the_mtime_is_seen_when_the_watcher_names_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "logo.svg"
    path.write_text("<svg>1</svg>")
    digest = StaticDigest(tmp_path)
    first = digest.refresh()
    stat = path.stat()
    path.write_text("<svg>2</svg>")  # same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime: a stat cannot tell
    assert digest.refresh() == first
    assert digest.refresh(changed=[str(path)]) != first


def test_file_stats_and_relative_paths(tmp_path: Path) -> None:
    assert file_stats(tmp_path / "missing") == {}
    (tmp_path / "a").write_bytes(b"12345")
    stats = file_stats(tmp_path)
    assert list(stats) == [str(tmp_path / "a")]
    assert stats[str(tmp_path / "a")][1] == 5
    outside = tmp_path.parent / "elsewhere.txt"
    assert relative_to([str(tmp_path / "a"), str(tmp_path), str(outside)], tmp_path) == {"a", "."}
