from __future__ import annotations

import pickle
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest

from ogshot.cache.disk import Entry, ImageCache, cache_key
from ogshot.core.settings import Settings


def make_cache(tmp_path: Path) -> ImageCache:
    return ImageCache(Settings.load(environ={}, config_file=None, cache_dir=tmp_path / "c"))


def test_round_trip_and_owner_only_folder(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    assert cache.get("k") is None
    big = bytes(range(256)) * 1000  # large enough to live in a file, not in SQLite
    assert cache.set("k", Entry(b"small", "e1", 1.0)) and cache.set("big", Entry(big, "e2", 1.0))
    assert cache.get("k") == Entry(b"small", "e1", 1.0)
    assert cache.get("big") == Entry(big, "e2", 1.0)
    assert stat.S_IMODE((tmp_path / "c").stat().st_mode) == 0o700


def test_only_bytes_are_stored(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    assert cache._cache is not None
    with pytest.raises(TypeError):
        cache._cache.set("k", {"not": "bytes"})


class Boom:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Path("/tmp/ogshot-pwned").write_text, ("pwned",))


def test_a_tampered_pickle_row_is_never_loaded(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    cache.set("k", Entry(b"image", "etag", 1.0))
    cache.close()
    db = sqlite3.connect(tmp_path / "c" / "cache.db")
    # diskcache's MODE_PICKLE is 4: what an attacker with write access to the folder would write.
    db.execute("UPDATE Cache SET mode = 4, value = ? WHERE key = 'k'", (pickle.dumps(Boom()),))
    db.commit()
    db.close()
    marker = Path("/tmp/ogshot-pwned")
    marker.unlink(missing_ok=True)
    cache = make_cache(tmp_path)
    assert cache.get("k") is None
    assert not marker.exists()
    assert cache.healthy  # a bad row is a miss, not a broken cache


def test_failures_degrade_to_misses_and_recover(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    cache.RETRY_AFTER = 0.0
    big = b"x" * 100_000
    shutil.rmtree(tmp_path / "c")
    (tmp_path / "c").write_text("a file where the folder was")
    assert cache.set("k", Entry(big, "e", 1.0)) is False
    assert cache.get("k") is None
    assert cache.errors >= 1
    (tmp_path / "c").unlink()
    assert cache.set("k", Entry(big, "e", 1.0)) is True  # reopened once the cause went away
    assert cache.get("k") == Entry(big, "e", 1.0)


def test_key_changes_with_every_input() -> None:
    settings = Settings.load(environ={}, config_file=None)
    base = {"template_digest": "t", "params": '{"a":1}', "fmt": "png", "settings": settings}
    key = cache_key(**base)  # type: ignore[arg-type]
    assert cache_key(**base) == key  # type: ignore[arg-type]
    for change in (
        {"template_digest": "u"},
        {"params": '{"a":2}'},
        {"fmt": "jpeg"},
        {"settings": settings.replace(device_scale_factor=2.0)},
        {"settings": settings.replace(jpeg_quality=50)},
    ):
        assert cache_key(**{**base, **change}) != key  # type: ignore[arg-type]
