// Types of ogshot-url (index.js). The signing scheme: docs/reference/signing.md.

/** A parameter value as a URL carries it; null and undefined are left out (template default). */
export type ParamValue = string | number | boolean | bigint | null | undefined;

export type Format = "png" | "jpg" | "jpeg" | "webp" | "PNG" | "JPG" | "JPEG" | "WEBP";

export interface SignUrlOptions {
  /** Where ogshot answers, e.g. "https://og.example.com" ("" for a relative URL). */
  base?: string;
  /** The template's name (a-z, 0-9, _ and -). */
  template: string;
  params?: Record<string, ParamValue>;
  /** Default "png"; "jpg" and "jpeg" are one format and sign alike. */
  format?: Format | string;
  /** The first of the server's OGSHOT_SECRET; without it the URL is unsigned. */
  secret?: string;
  /** The template's current version (fetchVersions); "" or null for none. Default: params.v. */
  version?: string | null;
}

export interface MetaTagsOptions extends SignUrlOptions {
  /** og:image:alt and twitter:image:alt; left out when empty. */
  alt?: string;
  /** The image's pixel width (default 1200). */
  width?: number;
  /** The image's pixel height (default 630). */
  height?: number;
}

export interface TemplateParam {
  type: "str" | "int" | "float" | "bool" | "color" | "url" | "date" | string;
  required: boolean;
  default?: unknown;
}

export interface TemplateInfo {
  name: string;
  /** The current version: pass it as signUrl's `version`. */
  v: string;
  description: string;
  size: { width: number; height: number; scale: number };
  formats: string[];
  /** false: the template declares no parameters and takes any string parameters. */
  declared: boolean;
  params: Record<string, TemplateParam>;
}

export interface FetchOptions extends RequestInit {
  fetch?: typeof fetch;
}

/** RFC 3986 percent-encoding of UTF-8 (only A-Z a-z 0-9 - . _ ~ bare, upper-case hex). */
export function encode(text: string): string;
/** The canonical format name: "png" | "jpeg" | "webp"; TypeError for another. */
export function normalizeFormat(format?: string): "png" | "jpeg" | "webp";
/** The exact text a signature covers. */
export function stringToSign(
  template: string,
  params: Record<string, ParamValue> | Array<[string, string]>,
  format?: string,
): string;
/** HMAC-SHA256, URL-safe base64 without padding. */
export function sign(secret: string, message: string): Promise<string>;
/** The signed, versioned /og URL. */
export function signUrl(options: SignUrlOptions): Promise<string>;
/** The value escaped for an HTML attribute. */
export function escapeHtml(text: string): string;
/** og:image, og:image:type|width|height|alt, twitter:card, twitter:image(:alt) tags. */
export function metaTags(options: MetaTagsOptions): Promise<string>;
/** The entries of the server's /templates.json. */
export function fetchTemplates(base: string, options?: FetchOptions): Promise<TemplateInfo[]>;
/** { templateName: currentVersion } from the server's /templates.json. */
export function fetchVersions(base: string, options?: FetchOptions): Promise<Record<string, string>>;
