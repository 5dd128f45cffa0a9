"""The floor ``ogshot bench`` measures cache hits against: a bare Starlette app answering images
from a diskcache, with none of ogshot's code on the request path.

It is what a cache hit cannot be faster than with this stack: one route, one diskcache read (in the
event loop, where a minimal app would do it), one response with the same bytes and headers
ogshot sends (ETag, Cache-Control, Content-Type). The bench fills its cache with ogshot's answers
and runs it under uvicorn with ogshot's own server options, in a subprocess like ogshot::

    OGSHOT_FLOOR_CACHE_DIR=/tmp/floor python -m ogshot.bench.floor --port 8001
"""

from __future__ import annotations

import argparse
import os

import diskcache
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["app", "store"]


def _key(path: str, query: str) -> str:
    return f"{path}?{query}"


def store(
    directory: str, path: str, query: str, body: bytes, content_type: str, etag: str, cache: str
) -> None:
    """Put ogshot's answer to ``path?query`` (bytes and headers) in the floor's cache."""
    with diskcache.Cache(directory, eviction_policy="least-recently-stored") as disk:
        disk.set(_key(path, query), body, tag=f"{content_type}\n{etag}\n{cache}")


def app(directory: str | None = None) -> Starlette:
    disk = diskcache.Cache(
        directory or os.environ["OGSHOT_FLOOR_CACHE_DIR"],
        eviction_policy="least-recently-stored",
        statistics=False,
        tag_index=False,
    )

    async def image(request: Request) -> Response:
        scope = request.scope
        found = disk.get(_key(scope["path"], scope["query_string"].decode()), tag=True)
        body, tag = found
        if body is None:
            return Response(b"not in the floor's cache", status_code=404)
        content_type, etag, cache = tag.split("\n")
        return Response(
            body, media_type=content_type, headers={"etag": etag, "cache-control": cache}
        )

    async def ready(request: Request) -> Response:
        return Response(b"ok")

    return Starlette(routes=[Route("/og/{name}", image), Route("/readyz", ready)])


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("OGSHOT_PORT", "8001")))
    args = parser.parse_args()
    # ogshot serve's uvicorn options, so that only the application differs.
    uvicorn.run(
        "ogshot.bench.floor:app",
        factory=True,
        host="127.0.0.1",
        port=args.port,
        log_level="info",
        proxy_headers=True,
        access_log=False,
    )


if __name__ == "__main__":
    main()
