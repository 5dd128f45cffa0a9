"""Chromium's baseline JPEG -> a progressive JPEG with optimised Huffman tables, losslessly.

Chromium encodes its capture as a baseline JPEG with the standard Huffman tables. libturbojpeg's
lossless transform (what ``jpegtran -progressive -copy none`` does) rewrites the same DCT
coefficients as a progressive scan script, which makes libjpeg optimise the tables: ~10% fewer
bytes, pixels untouched. On the benchmark cards the result decodes to exactly the pixels of
libvips' progressive JPEG of the lossless capture at the same quality, and is byte for byte the
same once the JFIF header (which libvips leaves out) is dropped; it costs ~3-8 ms, where the
PNG capture, its relay and libvips' encode cost 20-40 ms more (benchmarks/peers/FINDINGS.md).

libturbojpeg (Debian ``libturbojpeg0``) is loaded with ctypes when first needed; without it
:func:`available` is false and the renderer encodes JPEGs with libvips. Pure and synchronous:
call it off the event loop. A handle per thread (a turbojpeg handle is not thread-safe).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from functools import lru_cache

__all__ = ["available", "progressive"]

_TJXOPT_PROGRESSIVE = 32
_TJXOPT_COPYNONE = 64
_JFIF = b"\xff\xe0"  # APP0, the JFIF header: libjpeg writes it, libvips does not


class _Region(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int), ("y", ctypes.c_int), ("w", ctypes.c_int), ("h", ctypes.c_int)]


class _Transform(ctypes.Structure):
    _fields_ = [
        ("r", _Region),
        ("op", ctypes.c_int),  # TJXOP_NONE
        ("options", ctypes.c_int),
        ("data", ctypes.c_void_p),
        ("customFilter", ctypes.c_void_p),
    ]


_Buffer = ctypes.POINTER(ctypes.c_ubyte)


@lru_cache(maxsize=1)
def _library() -> ctypes.CDLL | None:
    for name in ("libturbojpeg.so.0", ctypes.util.find_library("turbojpeg")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        lib.tjInitTransform.restype = ctypes.c_void_p
        lib.tjInitTransform.argtypes = []
        lib.tjTransform.restype = ctypes.c_int
        lib.tjTransform.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_ulong,
            ctypes.c_int,
            ctypes.POINTER(_Buffer),
            ctypes.POINTER(ctypes.c_ulong),
            ctypes.POINTER(_Transform),
            ctypes.c_int,
        ]
        lib.tjFree.restype = None
        lib.tjFree.argtypes = [ctypes.c_void_p]
        lib.tjGetErrorStr2.restype = ctypes.c_char_p
        lib.tjGetErrorStr2.argtypes = [ctypes.c_void_p]
        return lib
    return None


def available() -> bool:
    """Whether libturbojpeg can be loaded."""
    return _library() is not None


_local = threading.local()


def _handle(lib: ctypes.CDLL) -> int:
    handle: int | None = getattr(_local, "handle", None)
    if handle is None:
        handle = lib.tjInitTransform()
        if not handle:
            raise RuntimeError("libturbojpeg could not start a transform")
        _local.handle = handle  # one per thread, kept for the thread's life
    return handle


def progressive(jpeg: bytes) -> bytes:
    """``jpeg`` rewritten losslessly as a progressive JPEG (optimised tables, no metadata, no
    JFIF header). Raises ValueError when libturbojpeg refuses the data, RuntimeError when it is
    not installed."""
    lib = _library()
    if lib is None:
        raise RuntimeError("libturbojpeg is not installed")
    handle = _handle(lib)
    out = _Buffer()
    size = ctypes.c_ulong(0)
    transform = _Transform(options=_TJXOPT_PROGRESSIVE | _TJXOPT_COPYNONE)
    status = lib.tjTransform(
        handle, jpeg, len(jpeg), 1, ctypes.byref(out), ctypes.byref(size), transform, 0
    )
    try:
        if status != 0:
            message = (lib.tjGetErrorStr2(handle) or b"unknown error").decode(errors="replace")
            raise ValueError(f"could not rewrite the JPEG: {message}")
        body = ctypes.string_at(out, size.value)
    finally:
        if out:
            lib.tjFree(out)
    if body[2:4] == _JFIF:  # drop it: the same bytes as libvips' JPEG of the same pixels
        body = body[:2] + body[4 + int.from_bytes(body[4:6], "big") :]
    return body
