"""``ogshot warm``: send URLs and manifest rows to a running node's ``POST /admin/warm``, in
batches of at most ``MAX_ITEMS``, and add up what was queued and what was refused and why."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from ogshot.batch.manifests import Row
from ogshot.core.errors import OgshotError
from ogshot.pipeline.warm import MAX_ITEMS

__all__ = ["WarmResult", "send_warm"]

TIMEOUT = 120.0  # seconds per batch: the node validates every item (remote images included)


@dataclass
class WarmResult:
    sent: int = 0
    queued: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)  # (source, reason)
    lane: str = ""  # "fleet" (Redis) or "node"


def send_warm(
    server: str,
    token: str,
    *,
    urls: Sequence[str] = (),
    rows: Sequence[Row] = (),
    format: str = "png",
) -> WarmResult:
    """Queue ``urls`` and ``rows`` on ``server``; raises OgshotError when it cannot be asked
    (unreachable, wrong token, a malformed request)."""
    result = WarmResult()
    items: list[tuple[str, dict[str, Any]]] = []
    for row in rows:
        result.sent += 1
        if row.error is not None:
            result.refused.append((row.source, row.error))
            continue
        entry = {"template": row.template, "params": dict(row.params)}
        items.append((row.source, {**entry, "format": row.format or format}))
    with httpx.Client(base_url=server.rstrip("/"), timeout=TIMEOUT) as client:
        for start in range(0, len(urls), MAX_ITEMS):
            batch = list(urls[start : start + MAX_ITEMS])
            result.sent += len(batch)
            _post(client, token, {"urls": batch}, batch, result)
        for start in range(0, len(items), MAX_ITEMS):
            chunk = items[start : start + MAX_ITEMS]
            sources = [source for source, _ in chunk]
            _post(client, token, {"items": [item for _, item in chunk]}, sources, result)
    return result


def _post(
    client: httpx.Client,
    token: str,
    body: dict[str, Any],
    sources: list[str],
    result: WarmResult,
) -> None:
    try:
        response = client.post(
            "/admin/warm", json=body, headers={"authorization": f"Bearer {token}"}
        )
    except httpx.HTTPError as exc:
        raise OgshotError(f"{client.base_url}: {type(exc).__name__}: {exc}") from None
    if response.status_code != 202:
        try:
            reason = response.json().get("error", response.text)
        except ValueError:
            reason = response.text
        raise OgshotError(f"{client.base_url} answered {response.status_code}: {reason}")
    answer = response.json()
    result.lane = answer.get("lane", "")
    result.queued += len(answer.get("queued", []))
    for refused in answer.get("refused", []):
        result.refused.append((sources[refused["index"]], refused["error"]))
