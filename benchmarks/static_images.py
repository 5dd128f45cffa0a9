"""Draws the sample and decorative images in static/img/ (run once; the output is committed).

    .venv/bin/python -m benchmarks.static_images

Decorations are alpha masks (white + alpha) that templates paint in their accent colour with
``mask-image``: one image draw per render instead of per-render gradients or blurs. The people and
the product are flat illustrations drawn here, so the examples work offline and carry no licence.
"""

from __future__ import annotations

import math
from pathlib import Path

import pyvips

IMG = Path(__file__).resolve().parent.parent / "static" / "img"


def svg(width: int, height: int, body: str) -> pyvips.Image:
    source = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">{body}</svg>'
    )
    return pyvips.Image.svgload_buffer(source.encode())


def mask(image: pyvips.Image) -> pyvips.Image:
    """White with the drawing's alpha: a mask for ``mask-image``."""
    alpha = image[3]
    white = (alpha * 0 + 255).cast("uchar")
    return white.bandjoin([white, white, alpha]).copy(interpretation="srgb")


# Faint grid lines fading out from the top right: the texture behind docs, repo and release.
def grid() -> pyvips.Image:
    step, lines = 48, []
    for x in range(0, 1201, step):
        lines.append(f'<line x1="{x}.5" y1="0" x2="{x}.5" y2="630"/>')
    for y in range(0, 631, step):
        lines.append(f'<line x1="0" y1="{y}.5" x2="1200" y2="{y}.5"/>')
    body = (
        '<defs><radialGradient id="f" cx="0.85" cy="0.05" r="0.75">'
        '<stop offset="0" stop-color="#fff" stop-opacity="1"/>'
        '<stop offset="1" stop-color="#fff" stop-opacity="0"/></radialGradient>'
        '<mask id="m"><rect width="1200" height="630" fill="url(#f)"/></mask></defs>'
        '<g mask="url(#m)" stroke="#fff" stroke-opacity="0.5" stroke-width="1">'
        f"{''.join(lines)}</g>"
    )
    return mask(svg(1200, 630, body))


# The launch mesh: where the first colour shows over the second. A diagonal blend with a bright
# pool top left, a dip top right (the second colour's glow) and a soft rise bottom centre.
def mesh() -> pyvips.Image:
    body = (
        '<defs><linearGradient id="d" x1="0" y1="0" x2="1" y2="1">'
        '<stop offset="0" stop-color="#fff" stop-opacity="0.95"/>'
        '<stop offset="1" stop-color="#fff" stop-opacity="0.05"/></linearGradient>'
        '<radialGradient id="a" cx="0.1" cy="0.1" r="0.6">'
        '<stop offset="0" stop-color="#fff" stop-opacity="0.9"/>'
        '<stop offset="1" stop-color="#fff" stop-opacity="0"/></radialGradient>'
        '<radialGradient id="c" cx="0.7" cy="1.1" r="0.6">'
        '<stop offset="0" stop-color="#fff" stop-opacity="0.55"/>'
        '<stop offset="1" stop-color="#fff" stop-opacity="0"/></radialGradient>'
        '<radialGradient id="b" cx="0.9" cy="0.2" r="0.5">'
        '<stop offset="0" stop-color="#000" stop-opacity="1"/>'
        '<stop offset="1" stop-color="#000" stop-opacity="0"/></radialGradient>'
        '<mask id="m"><rect width="600" height="315" fill="#fff"/>'
        '<rect width="600" height="315" fill="url(#b)"/></mask></defs>'
        '<g mask="url(#m)"><rect width="600" height="315" fill="url(#d)"/>'
        '<rect width="600" height="315" fill="url(#a)"/>'
        '<rect width="600" height="315" fill="url(#c)"/></g>'
    )
    return mask(svg(600, 315, body))


# One soft round glow, scaled and placed by CSS.
def glow() -> pyvips.Image:
    body = (
        '<defs><radialGradient id="g"><stop offset="0" stop-color="#fff" stop-opacity="1"/>'
        '<stop offset="0.45" stop-color="#fff" stop-opacity="0.45"/>'
        '<stop offset="1" stop-color="#fff" stop-opacity="0"/></radialGradient></defs>'
        '<rect width="400" height="400" fill="url(#g)"/>'
    )
    return mask(svg(400, 400, body))


# Concentric rings for the podcast cover.
def rings() -> pyvips.Image:
    circles = "".join(
        f'<circle cx="360" cy="360" r="{r}" fill="none" stroke="#fff" '
        f'stroke-opacity="{0.55 - r / 1000:.3f}" stroke-width="10"/>'
        for r in range(40, 520, 44)
    )
    return mask(svg(360, 360, f'<g transform="translate(-40 -40)">{circles}</g>'))


# A waveform strip for the podcast player.
def wave() -> pyvips.Image:
    bars = []
    for i in range(64):
        h = 8 + 52 * abs(math.sin(i * 0.37) * math.cos(i * 0.11 + 0.6)) + 10 * ((i * 7) % 5) / 4
        bars.append(f'<rect x="{i * 12}" y="{40 - h / 2:.1f}" width="6" height="{h:.1f}" rx="3"/>')
    return mask(svg(768, 80, f'<g fill="#fff">{"".join(bars)}</g>'))


PEOPLE = {
    # name: (background, skin, hair, shirt, hair style)
    "amara": ("#f2c6a0", "#8d5a3b", "#1d1411", "#2f4b7c", "curls"),
    "kenji": ("#b9d7e8", "#e8c39e", "#22201f", "#1f7a6c", "short"),
    "lea": ("#d9cdf2", "#f1d0b5", "#b5562d", "#7c2f5a", "long"),
}


def person(background: str, skin: str, hair: str, shirt: str, style: str) -> pyvips.Image:
    behind = {
        "long": f'<path d="M150 230 C150 120 330 120 330 230 L345 400 L135 400 Z" fill="{hair}"/>',
        "curls": "".join(
            f'<circle cx="{240 + 95 * math.cos(a / 7 * math.pi)}" '
            f'cy="{205 - 80 * math.sin(a / 7 * math.pi)}" r="46" fill="{hair}"/>'
            for a in range(8)
        ),
        "short": "",
    }[style]
    fringe = {
        "long": "M162 215 C170 130 310 120 322 215 C290 170 220 160 162 215 Z",
        "curls": "M168 200 C180 130 300 130 312 200 C280 160 200 160 168 200 Z",
        "short": "M166 212 C160 130 320 120 316 212 C300 165 250 178 205 168 "
        "C185 175 172 190 166 212 Z",
    }[style]
    top = f'<path d="{fringe}" fill="{hair}"/>'
    body = (
        f'<rect width="480" height="480" fill="{background}"/>'
        f'<circle cx="380" cy="90" r="140" fill="#fff" fill-opacity="0.22"/>'
        f"{behind}"
        f'<path d="M60 480 C70 380 150 340 240 340 C330 340 410 380 420 480 Z" fill="{shirt}"/>'
        f'<path d="M205 290 L275 290 L270 352 C255 366 225 366 210 352 Z" fill="{skin}"/>'
        f'<path d="M205 330 C225 350 255 350 275 330 L272 345 C255 362 225 362 208 345 Z" '
        f'fill="#000" fill-opacity="0.12"/>'
        f'<ellipse cx="240" cy="230" rx="78" ry="92" fill="{skin}"/>'
        f'<ellipse cx="162" cy="238" rx="12" ry="20" fill="{skin}"/>'
        f'<ellipse cx="318" cy="238" rx="12" ry="20" fill="{skin}"/>'
        f"{top}"
        f'<path d="M212 232 q10 -8 20 0 M248 232 q10 -8 20 0" stroke="#2a1d17" stroke-width="5" '
        f'fill="none" stroke-linecap="round"/>'
        f'<path d="M222 272 q18 14 36 0" stroke="#7a3b2e" stroke-width="5" fill="none" '
        f'stroke-linecap="round"/>'
    )
    return svg(480, 480, body)


def mug() -> pyvips.Image:
    body = (
        '<defs><linearGradient id="b" x1="0" x2="1"><stop offset="0" stop-color="#f4efe8"/>'
        '<stop offset="0.55" stop-color="#ffffff"/><stop offset="1" stop-color="#d9d2c8"/>'
        '</linearGradient><radialGradient id="s"><stop offset="0" stop-color="#000" '
        'stop-opacity="0.28"/><stop offset="1" stop-color="#000" stop-opacity="0"/>'
        "</radialGradient></defs>"
        '<ellipse cx="270" cy="478" rx="210" ry="34" fill="url(#s)"/>'
        '<path d="M368 220 C470 215 475 380 360 380" stroke="#e6dfd6" stroke-width="34" '
        'fill="none"/><path d="M368 220 C470 215 475 380 360 380" stroke="#cfc6bb" '
        'stroke-width="6" fill="none"/>'
        '<path d="M120 150 L400 150 L380 440 C378 462 360 476 336 476 L184 476 '
        'C160 476 142 462 140 440 Z" fill="url(#b)"/>'
        '<ellipse cx="260" cy="150" rx="140" ry="26" fill="#e9e3da"/>'
        '<ellipse cx="260" cy="152" rx="124" ry="19" fill="#5a3a26"/>'
        '<ellipse cx="240" cy="149" rx="46" ry="6" fill="#8a6146" fill-opacity="0.7"/>'
        '<path d="M146 300 L376 300 L372 340 L150 340 Z" fill="#1f2937" fill-opacity="0.9"/>'
        '<path d="M210 110 c-20 -30 20 -40 0 -80 M260 105 c-20 -30 20 -40 0 -80 '
        'M310 110 c-20 -30 20 -40 0 -80" stroke="#fff" stroke-opacity="0.7" stroke-width="8" '
        'fill="none" stroke-linecap="round"/>'
    )
    return svg(540, 540, body)


def main() -> None:
    (IMG / "people").mkdir(parents=True, exist_ok=True)
    (IMG / "products").mkdir(parents=True, exist_ok=True)
    grid().pngsave(str(IMG / "grid.png"), compression=9, palette=False)
    glow().pngsave(str(IMG / "glow.png"), compression=9)
    mesh().pngsave(str(IMG / "mesh.png"), compression=9)
    rings().pngsave(str(IMG / "rings.png"), compression=9)
    wave().pngsave(str(IMG / "wave.png"), compression=9)
    for name, colours in PEOPLE.items():
        person(*colours).flatten().jpegsave(str(IMG / "people" / f"{name}.jpg"), Q=86)
    mug().pngsave(str(IMG / "products" / "mug.png"), compression=9)


if __name__ == "__main__":
    main()
