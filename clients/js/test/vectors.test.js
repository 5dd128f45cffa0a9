// ogshot-url against clients/signing-vectors.json, the vectors ogshot's Python signer makes.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { encode, escapeHtml, metaTags, normalizeFormat, sign, signUrl, stringToSign } from "../index.js";

const { vectors } = JSON.parse(readFileSync(new URL("../../signing-vectors.json", import.meta.url), "utf8"));

function signed(vector) {
  return vector.version ? { ...vector.params, v: vector.version } : vector.params;
}

for (const vector of vectors) {
  test(`vector: ${vector.name}`, async () => {
    const message = stringToSign(vector.template, signed(vector), vector.format);
    assert.equal(message, vector.string_to_sign);
    assert.equal(await sign(vector.secret, message), vector.signature);
    if (vector.form === "path") {
      const url = await signUrl({
        template: vector.template,
        params: vector.params,
        format: vector.format,
        secret: vector.secret,
        version: vector.version ?? "",
      });
      assert.equal(url, vector.url);
    }
  });
}

test("encode leaves only the RFC 3986 unreserved characters bare", () => {
  assert.equal(encode("AZaz09-._~"), "AZaz09-._~");
  assert.equal(encode("!'()*"), "%21%27%28%29%2A");
  assert.equal(encode(" +&=#%/?"), "%20%2B%26%3D%23%25%2F%3F");
  assert.equal(encode("é🚀"), "%C3%A9%F0%9F%9A%80");
});

test("the version: given, from params, or none", async () => {
  const base = { template: "minimal", params: { title: "x", v: "old" }, secret: "k" };
  assert.match(await signUrl(base), /&v=old&s=/);
  assert.match(await signUrl({ ...base, version: "new1" }), /&v=new1&s=/);
  assert.doesNotMatch(await signUrl({ ...base, version: "" }), /[?&]v=/);
  await assert.rejects(signUrl({ ...base, version: "not a version" }), /not a template version/);
});

test("bad input is a TypeError naming it", async () => {
  await assert.rejects(signUrl({ template: "Bad Name" }), /not a template name/);
  await assert.rejects(signUrl({ template: "minimal", format: "gif" }), /unknown format "gif"/);
  await assert.rejects(signUrl({ template: "minimal", params: { s: "x" } }), /reserved/);
  await assert.rejects(signUrl({ template: "minimal", params: { title: {} } }), /"title" must be a string/);
  await assert.rejects(signUrl({ template: "minimal", params: { n: NaN } }), /"n" must be/);
});

test("numbers, booleans and null are carried as the URL's text", async () => {
  const url = await signUrl({ template: "minimal", params: { size: 96, on: true, gone: null } });
  assert.equal(url, "/og/minimal.png?on=true&size=96");
  assert.equal(normalizeFormat("JPG"), "jpeg");
  assert.equal(normalizeFormat(""), "png");
});

test("metaTags: every tag, the values escaped", async () => {
  const html = await metaTags({
    base: "https://og.example.com/",
    template: "article",
    params: { title: `Tom & "Jerry" <3 it's` },
    format: "jpg",
    secret: "k",
    version: "abc",
    alt: `Tom & "Jerry" <3 it's`,
  });
  const url = await signUrl({
    base: "https://og.example.com",
    template: "article",
    params: { title: `Tom & "Jerry" <3 it's` },
    format: "jpg",
    secret: "k",
    version: "abc",
  });
  const alt = "Tom &amp; &quot;Jerry&quot; &lt;3 it&#x27;s";
  assert.equal(
    html,
    [
      `<meta property="og:image" content="${escapeHtml(url)}">`,
      `<meta property="og:image:type" content="image/jpeg">`,
      `<meta property="og:image:width" content="1200">`,
      `<meta property="og:image:height" content="630">`,
      `<meta property="og:image:alt" content="${alt}">`,
      `<meta name="twitter:card" content="summary_large_image">`,
      `<meta name="twitter:image" content="${escapeHtml(url)}">`,
      `<meta name="twitter:image:alt" content="${alt}">`,
    ].join("\n"),
  );
  assert.ok(url.startsWith("https://og.example.com/og/article.jpg?title=Tom%20%26%20%22Jerry%22%20%3C3%20it%27s&v=abc&s="));
  assert.ok(html.includes("&amp;v=abc&amp;s="));
});

test("without a global crypto (Node 18) node:crypto's Web Crypto signs alike", async () => {
  const vector = vectors[0];
  const descriptor = Object.getOwnPropertyDescriptor(globalThis, "crypto");
  Object.defineProperty(globalThis, "crypto", { value: undefined, configurable: true, writable: true });
  try {
    assert.equal(globalThis.crypto, undefined);
    assert.equal(await sign(vector.secret, vector.string_to_sign), vector.signature);
  } finally {
    Object.defineProperty(globalThis, "crypto", descriptor);
  }
  assert.ok(globalThis.crypto.subtle);
});
