"""Environment variables from a dataclass field's type: how each one's text is read, and written
back. ``int``, ``float``, ``str``, ``Path``, ``bool`` (1/0, true/false, yes/no, on/off), ``Bytes``
(``500MB``, ``1GiB``), ``tuple[str, ...]`` (comma-separated, or a JSON array when an item holds a
comma), ``Literal[...]`` and ``X | None`` (empty means None)."""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

__all__ = ["Bytes", "EnvVar", "env_var", "parse_size"]

Bytes = Annotated[int, "bytes"]  # a size in bytes, written 500MB, 1GB or 1GiB too


_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)b?$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """'1048576', '500MB', '1GB' (decimal), '1GiB' (binary) -> bytes."""
    match = _SIZE.match(text.strip())
    if not match:
        raise ValueError("not a size (use bytes, or e.g. 500MB, 1GB, 1GiB)")
    number, prefix, binary = match.groups()
    power = "kmgt".find(prefix.lower()) + 1 if prefix else 0
    return int(float(number) * ((1024 if binary else 1000) ** power))


def _bool(text: str) -> bool:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("not a boolean (use 1/0, true/false, yes/no, on/off)")


def _number(kind: Callable[[str], Any], what: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return kind(text)
        except ValueError:
            raise ValueError(f"not {what}") from None

    return parse


def _strings(text: str) -> tuple[str, ...]:
    if text.startswith("["):
        items = json.loads(text)
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ValueError("a JSON array must hold only strings")
        return tuple(items)
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _format_strings(items: tuple[str, ...]) -> str:
    plain = ",".join(items)
    if all(i and i == i.strip() and "," not in i for i in items) and not plain.startswith("["):
        return plain
    return json.dumps(list(items))


@dataclass(frozen=True)
class EnvVar:
    """One environment variable: its name, the field it sets, and how its text reads and reads
    back. ``empty_ok``: an empty value means something (none, off) instead of "not set"."""

    name: str
    field: str
    parse: Callable[[str], Any]
    format: Callable[[Any], str]
    empty_ok: bool = False


def env_var(name: str, key: str, kind: Any) -> EnvVar:
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in args:
        if len(args) != 2:
            raise TypeError(f"Settings.{key}: one type or None, not {kind!r}")
        inner = env_var(name, key, next(a for a in args if a is not type(None)))

        def parse_optional(text: str) -> Any:
            return inner.parse(text) if text else None

        def format_optional(value: Any) -> str:
            return "" if value is None else inner.format(value)

        return EnvVar(name, key, parse_optional, format_optional, empty_ok=True)
    if kind == Bytes:
        return EnvVar(name, key, parse_size, str)
    if kind is bool:
        return EnvVar(name, key, _bool, lambda v: "1" if v else "0", empty_ok=True)
    if kind in (str, Path):
        return EnvVar(name, key, kind, str)
    if kind is int:
        return EnvVar(name, key, _number(int, "a whole number"), str)
    if kind is float:
        return EnvVar(name, key, _number(float, "a number"), repr)
    if kind == tuple[str, ...]:
        return EnvVar(name, key, _strings, _format_strings, empty_ok=True)
    if typing.get_origin(kind) is Literal and all(isinstance(a, str) for a in args):

        def parse_choice(text: str) -> str:
            if text not in args:
                raise ValueError(f"must be one of {', '.join(args)}")
            return text

        return EnvVar(name, key, parse_choice, str)
    raise TypeError(f"Settings.{key}: no environment variable for type {kind!r}")
