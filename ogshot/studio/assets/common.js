// Shared by the gallery and the studio: theme, live-reload connection, small helpers.
"use strict";

const ogshot = (() => {
  const THEME_KEY = "ogshot-studio-theme";

  function applyTheme(theme) {
    document.documentElement.dataset.theme = theme;
  }

  function initialTheme() {
    const saved = localStorage.getItem(THEME_KEY);
    if (saved === "light" || saved === "dark") return saved;
    return matchMedia("(prefers-color-scheme: light)").matches ? "light" : "dark";
  }

  applyTheme(initialTheme());

  function bindThemeToggle(button) {
    button.addEventListener("click", () => {
      const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
      localStorage.setItem(THEME_KEY, next);
      applyTheme(next);
    });
  }

  // Live reload: the server sends "change" whenever a template or static file is saved.
  // EventSource reconnects by itself (the server ends each stream after a few seconds).
  function connectLive(indicator, onChange) {
    const label = indicator.querySelector("span");
    const source = new EventSource("/preview/_events");
    const set = (state, text) => {
      indicator.dataset.state = state;
      label.textContent = text;
    };
    source.addEventListener("hello", () => set("live", "Live"));
    source.addEventListener("change", (event) => {
      set("live", "Live");
      onChange(JSON.parse(event.data));
    });
    source.addEventListener("error", () => set("offline", "Reconnecting"));
    return source;
  }

  // The query of an image URL: only values that differ from the declared default.
  function queryOf(values) {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(values)) query.append(key, value);
    return query.toString().replace(/\+/g, "%20");
  }

  function asText(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "boolean") return value ? "true" : "false";
    return String(value);
  }

  // The example parameters of a template, as URL strings (used for thumbnails).
  function exampleQuery(template) {
    const values = {};
    for (const [key, value] of Object.entries(template.examples || {})) {
      values[key] = asText(value);
    }
    return queryOf(values);
  }

  function formatBytes(n) {
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
    return `${(n / 1024 / 1024).toFixed(2)} MB`;
  }

  // Server-Timing "a;dur=1.2, b;dur=3" -> {a: 1.2, b: 3}
  function parseServerTiming(header) {
    const out = {};
    for (const part of (header || "").split(",")) {
      const [name, ...attrs] = part.trim().split(";");
      const dur = attrs.map((a) => a.trim()).find((a) => a.startsWith("dur="));
      if (name && dur) out[name] = parseFloat(dur.slice(4));
    }
    return out;
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "value") node.value = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key in node && typeof value !== "string") node[key] = value;
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  return { bindThemeToggle, connectLive, queryOf, asText, exampleQuery, formatBytes, parseServerTiming, el };
})();
