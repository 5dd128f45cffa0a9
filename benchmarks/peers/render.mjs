// Satori + resvg-js (what @vercel/og runs) as a warm worker for benchmarks/peers.py.
//
// One JSON request per stdin line: {"card": "gradient", "params": {...}, "png": false}.
// One JSON answer per stdout line: {"ms", "satori_ms", "resvg_ms", "bytes", "png"?: base64} or
// {"error": "..."}. Fonts, images and card modules are loaded once, as in a warm function.
import { readFileSync, readdirSync } from "node:fs";
import { createInterface } from "node:readline";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import satori from "satori";
import { Resvg } from "@resvg/resvg-js";

const here = dirname(fileURLToPath(import.meta.url));
const cardsDir = process.env.OGSHOT_CARDS_DIR || join(here, "..", "cards");
const fontDir = process.env.OGSHOT_INTER_DIR || "/usr/share/fonts/opentype/inter";

// Satori takes TTF/OTF/WOFF files per weight; the same system Inter that Chromium uses.
const fonts = [
  [400, "Inter-Regular.otf"],
  [600, "Inter-SemiBold.otf"],
  [700, "Inter-Bold.otf"],
  [800, "Inter-ExtraBold.otf"],
].map(([weight, file]) => ({ name: "Inter", weight, style: "normal", data: readFileSync(join(fontDir, file)) }));

const mime = { ".jpg": "image/jpeg", ".png": "image/png", ".svg": "image/svg+xml" };
const assets = {};
for (const file of readdirSync(join(cardsDir, "static"))) {
  const type = mime[file.slice(file.lastIndexOf("."))];
  if (type) assets[file] = `data:${type};base64,${readFileSync(join(cardsDir, "static", file)).toString("base64")}`;
}

const cards = {};
for (const file of readdirSync(cardsDir)) {
  if (file.endsWith(".satori.mjs")) {
    cards[file.slice(0, -".satori.mjs".length)] = (await import(join(cardsDir, file))).default;
  }
}

async function render(card, params, withPng) {
  const draw = cards[card];
  if (!draw) throw new Error(`no Satori version of card ${card}`);
  const t0 = performance.now();
  const svg = await satori(draw(params, assets), { width: 1200, height: 630, fonts });
  const t1 = performance.now();
  const png = new Resvg(svg, { fitTo: { mode: "width", value: 1200 } }).render().asPng();
  const t2 = performance.now();
  return {
    ms: t2 - t0, satori_ms: t1 - t0, resvg_ms: t2 - t1, bytes: png.length,
    ...(withPng ? { png: Buffer.from(png).toString("base64") } : {}),
  };
}

const lines = createInterface({ input: process.stdin });
process.stdout.write(JSON.stringify({ ready: Object.keys(cards) }) + "\n");
for await (const line of lines) {
  if (!line.trim()) continue;
  let answer;
  try {
    const request = JSON.parse(line);
    answer = await render(request.card, request.params || {}, Boolean(request.png));
  } catch (error) {
    answer = { error: String(error && error.stack || error) };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
}
