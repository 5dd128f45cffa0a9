// ogshot-url: signed, versioned ogshot image URLs and the meta tags that link them.
//
// The signing scheme is docs/reference/signing.md in the ogshot repository; this file implements
// it with Web Crypto only (no dependencies), and is tested against clients/signing-vectors.json,
// the vectors ogshot's own Python implementation makes.

const SCHEME = "ogshot-url-v1";
const FORMATS = { png: "png", jpg: "jpeg", jpeg: "jpeg", webp: "webp" };
const CONTENT_TYPES = { png: "image/png", jpeg: "image/jpeg", webp: "image/webp" };
const TEMPLATE_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const VERSION = /^[0-9A-Za-z._-]{1,64}$/;
const SIGNATURE_PARAM = "s";
const VERSION_PARAM = "v";

/**
 * RFC 3986 percent-encoding of UTF-8: only A-Z a-z 0-9 - . _ ~ stay bare, hex is upper-case.
 * encodeURIComponent also leaves ! ' ( ) * bare, which the server's canonical form encodes.
 */
export function encode(text) {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase(),
  );
}

/** "png" | "jpg" | "jpeg" | "webp" (any case; "" is png) -> the canonical name, else TypeError. */
export function normalizeFormat(format = "png") {
  const name = FORMATS[String(format || "png").toLowerCase()];
  if (!name) {
    throw new TypeError(`ogshot-url: unknown format ${JSON.stringify(format)} (use png, jpg, jpeg or webp)`);
  }
  return name;
}

// Code point order, which is the order of the names' UTF-8 bytes: the server sorts so.
// (JavaScript's default sort compares UTF-16 code units, which differs above U+FFFF.)
function byCodePoint([a], [b]) {
  const x = Array.from(a, (c) => c.codePointAt(0));
  const y = Array.from(b, (c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i] - y[i];
  }
  return x.length - y.length;
}

function text(name, value) {
  if (typeof value === "string") return value;
  if (typeof value === "boolean" || typeof value === "bigint") return String(value);
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  throw new TypeError(
    `ogshot-url: parameter ${JSON.stringify(name)} must be a string, finite number or boolean, ` +
      `got ${value === null ? "null" : typeof value}`,
  );
}

// The parameters as the URL carries them: text values, null/undefined left out, v set from
// `version` ("" removes it), sorted.
function carried(params, version) {
  const out = [];
  for (const [name, value] of Object.entries(params ?? {})) {
    if (value === null || value === undefined) continue;
    if (name === SIGNATURE_PARAM) {
      throw new TypeError(`ogshot-url: "${SIGNATURE_PARAM}" is reserved for the signature`);
    }
    if (name === VERSION_PARAM && version !== undefined) continue;
    out.push([name, text(name, value)]);
  }
  if (version !== undefined && version !== null && version !== "") {
    if (typeof version !== "string" || !VERSION.test(version)) {
      throw new TypeError(
        `ogshot-url: version ${JSON.stringify(version)} is not a template version ` +
          "(1 to 64 letters, digits, '.', '_' or '-'; fetchVersions(base) gives the current ones)",
      );
    }
    out.push([VERSION_PARAM, version]);
  }
  return out.sort(byCodePoint);
}

function query(pairs) {
  return pairs.map(([k, v]) => `${encode(k)}=${encode(v)}`).join("&");
}

/** The exact text the signature covers: "ogshot-url-v1\n" template "\n" format "\n" query. */
export function stringToSign(template, params, format = "png") {
  const pairs = Array.isArray(params) ? params : carried(params, undefined);
  return `${SCHEME}\n${template}\n${normalizeFormat(format)}\n${query(pairs)}`;
}

async function subtle() {
  if (globalThis.crypto?.subtle) return globalThis.crypto.subtle;
  // Node 18 has Web Crypto, but not yet as a global. The specifier is a variable so that
  // bundlers for browsers and edge runtimes (which all have the global) do not try to resolve it.
  const nodeCrypto = "node:crypto";
  const { webcrypto } = await import(nodeCrypto);
  return webcrypto.subtle;
}

/** HMAC-SHA256 of `message` with `secret` (both UTF-8), URL-safe base64 without padding. */
export async function sign(secret, message) {
  const crypto = await subtle();
  const utf8 = new TextEncoder();
  const key = await crypto.importKey("raw", utf8.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const mac = new Uint8Array(await crypto.sign("HMAC", key, utf8.encode(message)));
  let binary = "";
  for (const byte of mac) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * The /og URL of `template` with `params`: `${base}/og/NAME.EXT?k=v...&v=VERSION&s=SIGNATURE`.
 * Without `secret` the URL is unsigned (a server with OGSHOT_SECRET answers it with 403).
 * `version`: the template's current version (fetchVersions); "" for none; when not given, a `v`
 * in `params` is used.
 */
export async function signUrl({ base = "", template, params = {}, format = "png", secret, version } = {}) {
  if (typeof template !== "string" || !TEMPLATE_NAME.test(template)) {
    throw new TypeError(`ogshot-url: ${JSON.stringify(template)} is not a template name (a-z, 0-9, _ and -)`);
  }
  const canonicalFormat = normalizeFormat(format);
  const pairs = carried(params, version);
  let q = query(pairs);
  if (secret) {
    const signature = await sign(secret, stringToSign(template, pairs, canonicalFormat));
    q = q ? `${q}&${SIGNATURE_PARAM}=${signature}` : `${SIGNATURE_PARAM}=${signature}`;
  }
  const ext = String(format || "png").toLowerCase();
  return `${String(base).replace(/\/+$/, "")}/og/${encode(template)}.${ext}${q ? `?${q}` : ""}`;
}

/** `text` escaped for an HTML attribute value (the same five characters as Python's html.escape). */
export function escapeHtml(text) {
  return String(text)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#x27;");
}

/**
 * The <meta> tags that make `template` the page's link preview: og:image (signed, versioned),
 * og:image:type, og:image:width, og:image:height, og:image:alt, twitter:card
 * (summary_large_image), twitter:image, twitter:image:alt; one per line, values escaped.
 * `width`/`height`: the image's pixels (default 1200x630; fetchTemplates gives a template's).
 */
export async function metaTags({ alt, width = 1200, height = 630, ...options } = {}) {
  const url = await signUrl(options);
  const type = CONTENT_TYPES[normalizeFormat(options.format)];
  const tags = [
    ["property", "og:image", url],
    ["property", "og:image:type", type],
    ["property", "og:image:width", String(width)],
    ["property", "og:image:height", String(height)],
  ];
  if (alt) tags.push(["property", "og:image:alt", alt]);
  tags.push(["name", "twitter:card", "summary_large_image"], ["name", "twitter:image", url]);
  if (alt) tags.push(["name", "twitter:image:alt", alt]);
  return tags.map(([attr, key, value]) => `<meta ${attr}="${key}" content="${escapeHtml(value)}">`).join("\n");
}

/**
 * The server's templates from `${base}/templates.json`: [{name, v, size, formats, declared, params}].
 * `fetch`: another fetch function (a Worker's service binding, a test's).
 */
export async function fetchTemplates(base, { fetch: fetchFn = globalThis.fetch, ...init } = {}) {
  const url = `${String(base).replace(/\/+$/, "")}/templates.json`;
  const response = await fetchFn(url, { headers: { accept: "application/json" }, ...init });
  if (!response.ok) {
    throw new Error(`ogshot-url: GET ${url} answered ${response.status}`);
  }
  const body = await response.json();
  return body.templates;
}

/** { templateName: currentVersion } from `${base}/templates.json`, for signUrl's `version`. */
export async function fetchVersions(base, options = {}) {
  const templates = await fetchTemplates(base, options);
  return Object.fromEntries(templates.map((t) => [t.name, t.v]));
}
