// ogshot-url against a real ogshot server: OGSHOT_TEST_BASE (its URL) and OGSHOT_TEST_SECRET
// (the first of its OGSHOT_SECRET). tests/integration/clients/test_js_client.py starts the server
// and runs these; without the variables they are skipped.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { fetchTemplates, fetchVersions, metaTags, signUrl } from "../index.js";

const base = process.env.OGSHOT_TEST_BASE;
const secret = process.env.OGSHOT_TEST_SECRET;
const skip = base && secret ? false : "set OGSHOT_TEST_BASE and OGSHOT_TEST_SECRET to run against a server";
const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const { vectors } = JSON.parse(readFileSync(new URL("../../signing-vectors.json", import.meta.url), "utf8"));

// The same change as tests/unit/templates/test_signing_vectors.py: the last letter or digit
// before the signature that is not inside a %XX escape.
function tampered(url) {
  const at = url.lastIndexOf("&s=");
  const head = url.slice(0, at);
  for (let i = head.length - 1; i >= 0; i--) {
    if (/[A-Za-z0-9]/.test(head[i]) && !head.slice(Math.max(0, i - 2), i).includes("%")) {
      return head.slice(0, i) + (head[i] === "a" ? "b" : "a") + head.slice(i + 1) + url.slice(at);
    }
  }
  throw new Error(`nothing to change in ${url}`);
}

test("fetchVersions: every template's current version", { skip }, async () => {
  const versions = await fetchVersions(base);
  assert.ok(Object.keys(versions).includes("minimal"), JSON.stringify(versions));
  for (const [name, v] of Object.entries(versions)) assert.match(v, /^[0-9a-f]{10}$/, name);
  const templates = await fetchTemplates(`${base}/`);
  const article = templates.find((t) => t.name === "article");
  assert.deepEqual(article.params.title, { type: "str", required: true });
  assert.equal(article.v, versions.article);
});

test("a signed, versioned URL renders; one byte changed is 403", { skip }, async () => {
  const versions = await fetchVersions(base);
  const url = await signUrl({
    base,
    template: "minimal",
    params: { title: "From JavaScript: it's (really) *signed*!" },
    secret,
    version: versions.minimal,
  });
  const response = await fetch(url);
  assert.equal(response.status, 200, await response.clone().text());
  assert.equal(response.headers.get("content-type"), "image/png");
  assert.match(response.headers.get("cache-control"), /immutable/); // the current version
  const bytes = new Uint8Array(await response.arrayBuffer());
  assert.deepEqual([...bytes.subarray(0, 8)], PNG);

  const wrong = await fetch(tampered(url));
  assert.equal(wrong.status, 403);
  const body = await wrong.json();
  assert.deepEqual(body.detail, { parameter: "s" });
  assert.match(body.error, /signature/);

  const unsigned = await fetch(await signUrl({ base, template: "minimal", params: { title: "x" } }));
  assert.equal(unsigned.status, 403);
});

test("the og:image of metaTags renders", { skip }, async () => {
  const html = await metaTags({ base, template: "article", params: { title: "Meta & tags" }, format: "webp", secret });
  const url = html.match(/property="og:image" content="([^"]+)"/)[1].replaceAll("&amp;", "&");
  const response = await fetch(url);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "image/webp");
});

for (const vector of vectors) {
  test(`the server verifies vector: ${vector.name}`, { skip }, async () => {
    const response = await fetch(`${base}${vector.url}`);
    assert.equal(response.status, 200, await response.clone().text());
    await response.arrayBuffer();
    const wrong = await fetch(`${base}${tampered(vector.url)}`);
    assert.equal(wrong.status, 403, await wrong.clone().text());
  });
}
