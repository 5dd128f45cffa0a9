"""Renders every shipped template at its examples through ogshot itself and tiles the results
into the README's gallery picture.

    .venv/bin/python -m benchmarks.gallery            # writes docs/gallery.png
    .venv/bin/python -m benchmarks.gallery --out DIR  # also keeps each template's PNG in DIR
    .venv/bin/python -m benchmarks.gallery --templates T --static S --picture x.png  # your own

A template that cannot be drawn at its examples (a required parameter without an ``example``) is
left out of the picture, with the reason printed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pyvips
from starlette.testclient import TestClient

from ogshot.app import create_app
from ogshot.core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COLUMNS, TILE_WIDTH, TILE_HEIGHT, GAP = 3, 600, 315, 24
BACKDROP = [236, 238, 243]


def render_examples(client: TestClient) -> tuple[dict[str, bytes], dict[str, str]]:
    """Each template's image at its examples, and why each one that could not be drawn was not."""
    catalog = client.app.state.renderer.catalog  # type: ignore[attr-defined]
    shots: dict[str, bytes] = {}
    skipped: dict[str, str] = {}
    for name in catalog.names():
        params = {
            k: str(v).lower() if isinstance(v, bool) else str(v)
            for k, v in catalog.get(name).examples().items()
        }
        response = client.get(f"/og/{name}.png", params=params)
        if response.status_code == 200:
            shots[name] = response.content
        else:
            try:
                reason = str(response.json()["error"])
            except (ValueError, KeyError, TypeError):
                reason = f"HTTP {response.status_code}"
            skipped[name] = f"{reason} (declare an example for each required parameter)"
    return shots, skipped


def tile(shots: dict[str, bytes]) -> pyvips.Image:
    tiles = []
    for data in shots.values():
        image = pyvips.Image.new_from_buffer(data, "")[:3]
        # Every card at one height, centred in its cell: a square post stays square.
        image = image.resize(
            min(TILE_WIDTH / image.width, TILE_HEIGHT / image.height), kernel="lanczos3"
        )
        left = GAP // 2 + (TILE_WIDTH - image.width) // 2
        top = GAP // 2 + (TILE_HEIGHT - image.height) // 2
        tiles.append(
            image.embed(
                left,
                top,
                TILE_WIDTH + GAP,
                TILE_HEIGHT + GAP,
                extend="background",
                background=BACKDROP,
            )
        )
    grid = pyvips.Image.arrayjoin(tiles, across=COLUMNS, background=BACKDROP)
    return grid.embed(
        GAP // 2,
        GAP // 2,
        grid.width + GAP,
        grid.height + GAP,
        extend="background",
        background=BACKDROP,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--picture", type=Path, default=ROOT / "docs" / "gallery.png")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--templates", type=Path, default=ROOT / "html_templates")
    parser.add_argument("--static", type=Path, default=ROOT / "static")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        settings = Settings(
            templates_dir=args.templates,
            static_dir=args.static,
            cache_dir=Path(cache),
            pool_size=1,
        )
        with TestClient(create_app(settings)) as client:
            shots, skipped = render_examples(client)
    for name, reason in skipped.items():
        print(f"left out {name}: {reason}", file=sys.stderr)
    if not shots:
        raise SystemExit(f"no template in {args.templates} could be drawn at its examples")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for name, data in shots.items():
            (args.out / f"{name}.png").write_bytes(data)
    tile(shots).pngsave(str(args.picture), compression=9, palette=True, Q=90)
    print(f"{len(shots)} templates -> {args.picture}")


if __name__ == "__main__":
    main()
