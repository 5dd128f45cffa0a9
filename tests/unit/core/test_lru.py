from __future__ import annotations

from ogshot.core.lru import LRU


def test_evicts_least_recently_used_by_count() -> None:
    lru: LRU[str] = LRU(max_entries=2)
    lru.set("a", "1")
    lru.set("b", "2")
    assert lru.get("a") == "1"  # "b" is now the oldest
    lru.set("c", "3")
    assert lru.get("b") is None
    assert (lru.get("a"), lru.get("c")) == ("1", "3")


def test_evicts_by_size_and_refuses_oversized_values() -> None:
    lru: LRU[bytes] = LRU(max_entries=100, max_size=10, size_of=len)
    lru.set("a", b"12345")
    lru.set("b", b"12345")
    lru.set("c", b"1")
    assert lru.get("a") is None and lru.size == 6
    lru.set("huge", b"x" * 11)
    assert lru.get("huge") is None and lru.get("b") == b"12345"
    lru.set("b", b"1")  # replacing an entry accounts for the old size
    assert lru.size == 2


def test_zero_entries_disables_it() -> None:
    lru: LRU[str] = LRU(max_entries=0)
    lru.set("a", "1")
    assert lru.get("a") is None and len(lru) == 0


def test_pop_returns_the_value_and_frees_its_size() -> None:
    lru: LRU[bytes] = LRU(max_entries=10, max_size=100, size_of=len)
    lru.set("a", b"123")
    assert lru.pop("a") == b"123" and lru.size == 0 and lru.get("a") is None
    assert lru.pop("a") is None
