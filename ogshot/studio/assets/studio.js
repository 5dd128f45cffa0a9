// The studio: a form from the template's declared parameters, the live image, share mocks, embed code.
"use strict";

(() => {
  const { el, asText } = ogshot;
  const $ = (id) => document.getElementById(id);
  const name = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
  const FORMATS = { png: "PNG", jpg: "JPEG", webp: "WebP" };
  const DEBOUNCE_MS = 160;
  // The page's own query string holds the form (values that differ from where the form starts)
  // and the format: reloading keeps them and a link shares them. No parameter name has a dot.
  const FORMAT_KEY = ".format";
  const linked = new URLSearchParams(location.search);
  const savedFormat = linked.get(FORMAT_KEY) || localStorage.getItem("ogshot-studio-format");

  const state = {
    template: null, // what /preview/_api/templates/{name} says
    schema: "", // the params as JSON: the form is rebuilt only when they change
    format: FORMATS[savedFormat] ? savedFormat : "png",
    linked: true, // the first form is filled from the page's URL
    seq: 0, // every render request gets the next number; only the newest may touch the page
    controller: null,
    timer: 0,
    objectUrl: null,
    ogPath: "",
    width: 0,
    height: 0,
    contentType: "",
  };

  // -- the template and its form ------------------------------------------------------------

  async function loadTemplate() {
    let response, body;
    try {
      response = await fetch(`/preview/_api/templates/${encodeURIComponent(name)}`, { cache: "no-store" });
      body = await response.json();
    } catch (err) {
      showFailure({ error: `Cannot reach the server (${err.message})`, detail: { kind: "network" } });
      return false;
    }
    if (!response.ok) {
      state.seq++; // a render still in flight would hide this error
      showFailure(body);
      return false;
    }
    const previous = state.template ? formStrings() : null;
    state.template = body;
    // The frame takes the template's own shape (1200x630, 1080x1080, 1600x900, ...).
    if (body.width && body.height) $("canvas").style.aspectRatio = `${body.width} / ${body.height}`;
    $("template-description").textContent =
      body.description || (body.declared ? "" : "This template declares no parameters: add any as key=value lines.");
    $("signed-note").textContent = body.signed ? "Signed URLs" : "Unsigned: set OGSHOT_SECRET to sign URLs";
    const schema = JSON.stringify([body.declared, body.params]);
    if (schema !== state.schema) {
      state.schema = schema;
      buildForm(body, previous || (state.linked ? linkedStrings(body) : null));
      state.linked = false;
    }
    return true;
  }

  function initialValue(param, previous) {
    if (previous && param.name in previous) return previous[param.name];
    if (param.example !== undefined) return asText(param.example);
    if (param.default !== undefined) return asText(param.default);
    return "";
  }

  // What a fresh form holds for a parameter, as formStrings() reads it back.
  function startValue(param) {
    const value = initialValue(param, null);
    if (param.type !== "bool") return value;
    return ["true", "1", "yes", "on"].includes(value.toLowerCase()) ? "true" : "false";
  }

  // The form's values from the page's URL; names the template does not declare are ignored.
  function linkedStrings(template) {
    const out = {};
    if (!template.declared) {
      const lines = [...linked].filter(([key]) => key !== FORMAT_KEY).map(([k, v]) => `${k}=${v}`);
      return lines.length ? { __free: lines.join("\n") } : null;
    }
    for (const param of template.params) if (linked.has(param.name)) out[param.name] = linked.get(param.name);
    return out;
  }

  // The page's URL for the current form and format (replaced, not pushed: no history per keystroke).
  function saveUrl() {
    const values = {};
    const strings = namedStrings();
    if (state.template.declared) {
      for (const param of state.template.params) {
        const value = strings[param.name] ?? "";
        if (value !== startValue(param)) values[param.name] = value;
      }
    } else {
      Object.assign(values, strings);
    }
    if (state.format !== "png") values[FORMAT_KEY] = state.format;
    const query = ogshot.queryOf(values);
    const url = `${location.pathname}${query ? `?${query}` : ""}`;
    if (url !== location.pathname + location.search) history.replaceState(null, "", url);
  }

  function buildForm(template, previous) {
    const form = $("params-form");
    form.replaceChildren();
    if (!template.declared) {
      const text = previous && "__free" in previous ? previous.__free : "title=Hello world";
      form.append(
        field({ name: "__free", label: "parameters", type: "key=value lines" }, el("textarea", { id: "p-__free", class: "input mono", rows: 6, name: "__free", value: text })),
      );
      return;
    }
    for (const param of template.params) {
      form.append(field(param, control(param, initialValue(param, previous))));
    }
  }

  function field(param, input) {
    const label = el(
      "label",
      { class: "field-label", for: `p-${param.name}` },
      el("span", { class: "param-name", text: param.label || param.name }),
      param.required ? el("span", { class: "required", title: "required", text: "*" }) : null,
      el("span", { class: "param-type", text: param.type }),
    );
    return el(
      "div",
      { class: "field", "data-param": param.name },
      label,
      input,
      param.description ? el("div", { class: "help", text: param.description }) : null,
      el("div", { class: "field-error" }),
    );
  }

  function control(param, value) {
    const id = `p-${param.name}`;
    const attrs = { id, name: param.name, class: "input", "data-type": param.type };
    if (param.choices) {
      const select = el("select", attrs, param.choices.map((c) => el("option", { value: asText(c), text: asText(c) })));
      select.value = value;
      return select;
    }
    if (param.type === "bool") {
      const box = el("input", { ...attrs, class: "", type: "checkbox" });
      box.checked = ["true", "1", "yes", "on"].includes(value.toLowerCase());
      box.setAttribute("role", "switch");
      return el("label", { class: "switch" }, box, el("em", { class: "switch-text", text: box.checked ? "on" : "off" }));
    }
    if (param.type === "color") {
      const text = el("input", { ...attrs, value, spellcheck: "false", class: "input mono" });
      const picker = el("input", { type: "color", class: "swatch", "aria-label": `${param.name} picker`, tabindex: "-1" });
      const sync = () => {
        const hex = toHex6(text.value);
        if (hex) picker.value = hex;
      };
      picker.addEventListener("input", () => {
        text.value = picker.value;
        text.dispatchEvent(new Event("input", { bubbles: true }));
      });
      text.addEventListener("input", sync);
      sync();
      return el("div", { class: "color-row" }, picker, text);
    }
    if (param.type === "int" || param.type === "float") {
      return el("input", {
        ...attrs,
        type: "number",
        value,
        min: param.min ?? undefined,
        max: param.max ?? undefined,
        step: param.type === "int" ? "1" : "any",
      });
    }
    if (param.type === "url") return el("input", { ...attrs, type: "url", value, spellcheck: "false" });
    const limit = param.max_length;
    const long = !limit || limit > 80;
    const input = long
      ? el("textarea", { ...attrs, rows: 2, maxlength: limit ?? undefined, value })
      : el("input", { ...attrs, type: "text", value, maxlength: limit ?? undefined });
    if (!limit) return input;
    const counter = el("span", { class: "counter" });
    const count = () => {
      counter.textContent = `${input.value.length}/${limit}`;
    };
    input.addEventListener("input", count);
    count();
    return el("div", { class: "with-counter" }, input, counter);
  }

  function toHex6(text) {
    const m = /^#?([0-9a-f]{3}|[0-9a-f]{6})([0-9a-f]{2})?$/i.exec(text.trim());
    if (!m) return null;
    const hex = m[1].length === 3 ? [...m[1]].map((c) => c + c).join("") : m[1];
    return `#${hex.toLowerCase()}`;
  }

  // name -> what the field holds, as text (kept when the form is rebuilt after a reload)
  function formStrings() {
    const out = {};
    for (const input of $("params-form").querySelectorAll("[name]")) {
      out[input.name] = input.type === "checkbox" ? (input.checked ? "true" : "false") : input.value;
    }
    return out;
  }

  // name -> text, for every parameter the form holds (an undeclared template's key=value lines too)
  function namedStrings() {
    const strings = formStrings();
    if (!("__free" in strings)) return strings;
    const out = {};
    for (const line of strings.__free.split("\n")) {
      const at = line.indexOf("=");
      if (at > 0) out[line.slice(0, at).trim()] = line.slice(at + 1);
    }
    return out;
  }

  // The parameters to send: those that differ from the declared default, plus the required ones.
  function paramValues() {
    const strings = namedStrings();
    if (!state.template.declared) return strings;
    const out = {};
    for (const param of state.template.params) {
      const value = strings[param.name] ?? "";
      const fallback = param.type === "bool" ? asText(param.default ?? false) : asText(param.default);
      if (value === "" && !param.required && (param.type !== "str" || param.default === undefined)) {
        continue; // an emptied number, colour or URL field means "use the default"
      }
      if (param.required || value !== fallback) out[param.name] = value;
    }
    return out;
  }

  // -- rendering ----------------------------------------------------------------------------

  function schedule(delay = DEBOUNCE_MS) {
    clearTimeout(state.timer);
    state.timer = setTimeout(render, delay);
  }

  async function render() {
    clearTimeout(state.timer);
    if (!state.template) return;
    const seq = ++state.seq;
    if (state.controller) state.controller.abort(); // the older request can no longer win
    const controller = (state.controller = new AbortController());
    const query = ogshot.queryOf(paramValues());
    const url = `/preview/_render/${encodeURIComponent(name)}.${state.format}${query ? `?${query}` : ""}`;
    saveUrl();
    $("open-html").href = `/preview/_html/${encodeURIComponent(name)}${query ? `?${query}` : ""}`;
    document.body.dataset.state = "loading";
    const started = performance.now();
    let response, blob;
    try {
      response = await fetch(url, { signal: controller.signal, cache: "no-store" });
      if (!response.ok) {
        const body = await response.json();
        if (seq === state.seq) showFailure(body);
        return;
      }
      blob = await response.blob();
    } catch (err) {
      if (seq === state.seq && err.name !== "AbortError") {
        showFailure({ error: `Cannot reach the server (${err.message})`, detail: { kind: "network" } });
      }
      return;
    }
    if (seq !== state.seq) return;
    const objectUrl = URL.createObjectURL(blob);
    const probe = new Image();
    probe.src = objectUrl;
    try {
      await probe.decode(); // swap only decoded pixels in: no flash of an empty frame
    } catch {
      /* shown below anyway; the browser reports a broken image */
    }
    if (seq !== state.seq) {
      URL.revokeObjectURL(objectUrl);
      return;
    }
    showImage(objectUrl, blob, response, probe, performance.now() - started, seq);
    // variants.js renders the template's A/B variants with the same parameters.
    document.dispatchEvent(new CustomEvent("ogshot:rendered", { detail: { name, format: state.format, query, variant: response.headers.get("x-ogshot-variant") } }));
  }

  function showImage(objectUrl, blob, response, probe, elapsed, seq) {
    const old = state.objectUrl;
    state.objectUrl = objectUrl;
    state.width = probe.naturalWidth;
    state.height = probe.naturalHeight;
    state.contentType = blob.type;
    state.ogPath = response.headers.get("x-ogshot-url") || "";
    const image = $("image");
    image.src = objectUrl;
    image.dataset.etag = response.headers.get("etag") || "";
    image.dataset.seq = String(seq);
    for (const img of document.querySelectorAll(".mock-img img")) img.src = objectUrl;
    if (old) setTimeout(() => URL.revokeObjectURL(old), 1000);

    const timing = ogshot.parseServerTiming(response.headers.get("server-timing"));
    const cache = response.headers.get("x-ogshot-cache") || "";
    const server = timing.total ?? Object.values(timing).reduce((a, b) => a + b, 0);
    const ms = server < 1 ? "<1 ms" : `${server.toFixed(0)} ms`;
    $("stat-time").textContent = cache === "hit" ? ms : `rendered in ${ms}`;
    $("stat-time").parentElement.title =
      Object.entries(timing).map(([k, v]) => `${k}: ${v.toFixed(1)} ms`).join("\n") +
      `\nround trip: ${elapsed.toFixed(0)} ms`;
    $("stat-bytes").textContent = ogshot.formatBytes(blob.size);
    const badge = $("stat-cache");
    badge.dataset.cache = cache;
    badge.textContent = cache === "hit" ? "cache hit" : "cache miss";
    $("stat-size").textContent = `${state.width}×${state.height} · ${FORMATS[state.format]}`;

    clearFieldErrors();
    showWarnings(response.headers.get("x-ogshot-warnings"));
    hideOverlay();
    updateCrops();
    updateEmbed();
    document.body.dataset.state = "ready";
  }

  // -- failures -----------------------------------------------------------------------------

  const KIND_TITLES = {
    template: "Template error",
    timeout: "Render timeout",
    browser: "Browser error",
    not_found: "Template not found",
    overloaded: "Server busy",
    network: "Server unreachable",
  };

  function showFailure(body) {
    const detail = body.detail || {};
    clearFieldErrors();
    const fieldNode = detail.parameter && document.querySelector(`.field[data-param="${CSS.escape(detail.parameter)}"]`);
    if ((detail.kind === "parameter" || detail.kind === "unrenderable") && fieldNode) {
      fieldNode.classList.add("invalid");
      fieldNode.querySelector(".field-error").textContent = body.error;
      hideOverlay();
      document.body.dataset.state = "invalid";
      return;
    }
    $("error-kind").textContent = KIND_TITLES[detail.kind] || "Error";
    $("error-message").textContent = body.error;
    const where = [detail.file, detail.line ? `line ${detail.line}` : null].filter(Boolean).join(" · ");
    $("error-where").textContent = where;
    $("error-where").hidden = !where;
    const excerpt = $("error-excerpt");
    excerpt.replaceChildren(
      ...(detail.excerpt || []).map((row) =>
        el(
          "span",
          { class: row.line === detail.line ? "row hit" : "row" },
          el("span", { class: "ln", text: String(row.line) }),
          row.text || " ",
        ),
      ),
    );
    excerpt.hidden = !(detail.excerpt || []).length;
    $("error-hint").textContent = detail.hint || "Fix the file and save: the preview recovers by itself.";
    $("error-overlay").hidden = false;
    document.body.dataset.state = "error";
  }

  // What the render could not draw (X-Ogshot-Warnings: JSON): next to the field whose value holds
  // it, and in the stats line.
  function showWarnings(header) {
    let stat = $("stat-warning");
    if (!stat) {
      stat = el("span", { id: "stat-warning", class: "stat stat-warning" });
      $("stat-size").after(stat);
    }
    stat.textContent = "";
    if (!header) return;
    let warnings;
    try {
      warnings = JSON.parse(header);
    } catch {
      return;
    }
    const glyphs = warnings.missing_glyphs || [];
    const images = warnings.failed_images || [];
    const resources = warnings.failed_resources || [];
    const lines = warnings.lines || {};
    const parts = [];
    if (glyphs.length) parts.push(`no font for ${glyphs.join(" ")}`);
    if (images.length) parts.push(`failed: ${images.join(" ")}`);
    // A stylesheet, script, font or frame the page could not load: with the line that asks for it.
    const where = (url) => (lines[url] ? ` (${lines[url].file} line ${lines[url].line})` : "");
    if (resources.length) parts.push(`refused or not found: ${resources.map((u) => u + where(u)).join(" ")}`);
    stat.textContent = `⚠ ${parts.join(" · ")}`;
    for (const [param, items] of Object.entries(warnings.parameters || {})) {
      const node = document.querySelector(`.field[data-param="${CSS.escape(param)}"]`);
      if (!node) continue;
      const glyphsHere = items.filter((item) => item.startsWith("U+"));
      const imagesHere = items.filter((item) => !item.startsWith("U+"));
      const text = [
        glyphsHere.length ? `No installed font can draw ${glyphsHere.join(" ")}: it shows as a box` : "",
        imagesHere.length ? `Failed to load: ${imagesHere.join(" ")}` : "",
      ].filter(Boolean).join(". ");
      node.classList.add("warned");
      node.querySelector(".field-error").textContent = text;
    }
  }

  function hideOverlay() {
    $("error-overlay").hidden = true;
  }

  function clearFieldErrors() {
    for (const node of document.querySelectorAll(".field.invalid, .field.warned")) {
      node.classList.remove("invalid", "warned");
      node.querySelector(".field-error").textContent = "";
    }
  }

  // -- share mocks and embed code -----------------------------------------------------------

  // Only parameters that mean the same thing: a "brand" may be a colour, a "name" of a product is
  // no site name. og:site_name falls back to OGSHOT_SITE_NAME, then the domain.
  const SHARE_SOURCES = { title: ["title", "headline", "name"], description: ["subtitle", "description", "summary"], site: ["site", "site_name"] };

  // A declared parameter counts only when it holds text (not a colour, URL, number, ...).
  function textParam(name) {
    if (!state.template.declared) return true;
    const param = state.template.params.find((p) => p.name === name);
    return Boolean(param) && param.type === "str";
  }

  function syncShareFields() {
    const strings = namedStrings();
    for (const [key, candidates] of Object.entries(SHARE_SOURCES)) {
      const input = $(`share-${key}`);
      if (input.dataset.touched) continue;
      const source = candidates.find((c) => c in strings && textParam(c));
      const fallback = key === "site" ? state.template.site_name || $("share-domain").value : "";
      input.value = source ? strings[source] : fallback;
    }
  }

  function share() {
    const value = (key) => $(`share-${key}`).value.trim();
    return { title: value("title"), description: value("description"), site: value("site"), domain: value("domain") };
  }

  function updateMocks() {
    const s = share();
    const binds = { ...s, "domain-upper": s.domain.toUpperCase() };
    for (const node of document.querySelectorAll("[data-bind]")) node.textContent = binds[node.dataset.bind] || "";
  }

  function updateCrops() {
    const { width: w, height: h } = state;
    if (!w || !h) return;
    for (const note of document.querySelectorAll("[data-crop]")) {
      const ratio = parseFloat(note.dataset.crop);
      const label = note.dataset.crop === "2" ? "2:1" : `${note.dataset.crop}:1`;
      if (w / h < ratio - 0.001) {
        const lost = Math.round((h - w / ratio) / 2);
        note.textContent = lost > 0 ? `${label} centre crop · ${lost} px off top and bottom` : `${label} · no visible crop`;
      } else if (w / h > ratio + 0.001) {
        note.textContent = `${label} centre crop · ${Math.round((w - h * ratio) / 2)} px off each side`;
      } else {
        note.textContent = `${label} · no crop`;
      }
    }
    const band = Math.max(0, (1 - w / 2 / h) / 2) * 100;
    $("crop-guide").style.setProperty("--band", `${band}%`);
    // A template wider than 2:1 loses its sides instead (the bands only mark top and bottom).
    const lost = h >= w / 2 ? `${Math.round((h - w / 2) / 2)} px top and bottom` : `${Math.round((w - 2 * h) / 2)} px each side`;
    $("crop-guide").querySelector(".crop-label").textContent = `X / Twitter 2:1 crop · ${lost}`;
  }

  function escapeAttr(text) {
    return text.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function updateEmbed() {
    if (!state.ogPath) return;
    const base = ($("base-url").value.trim() || location.origin).replace(/\/+$/, "");
    const absolute = base + state.ogPath;
    $("og-url").value = absolute;
    $("open-url").href = state.ogPath;
    const s = share();
    const alt = s.title;
    const tags = [
      ["property", "og:title", s.title],
      ["property", "og:description", s.description],
      ["property", "og:site_name", s.site],
      ["property", "og:image", absolute],
      ["property", "og:image:type", state.contentType],
      ["property", "og:image:width", String(state.width)],
      ["property", "og:image:height", String(state.height)],
      ["property", "og:image:alt", alt],
      ["name", "twitter:card", "summary_large_image"],
      ["name", "twitter:image", absolute],
    ];
    $("meta-tags").textContent = tags
      .filter(([, , content]) => content)
      .map(([attr, key, content]) => `<meta ${attr}="${key}" content="${escapeAttr(content)}">`)
      .join("\n");
  }

  // -- wiring -------------------------------------------------------------------------------

  function toast(text) {
    const node = $("toast");
    node.textContent = text;
    node.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => (node.hidden = true), 2200);
  }

  function setFormat(format) {
    state.format = format;
    localStorage.setItem("ogshot-studio-format", format);
    for (const button of document.querySelectorAll("#format button")) {
      button.setAttribute("aria-pressed", String(button.dataset.format === format));
    }
  }

  async function fillTemplateSwitch() {
    const select = $("template-switch");
    try {
      const { templates } = await (await fetch("/preview/_api/templates", { cache: "no-store" })).json();
      select.replaceChildren(...templates.map((t) => el("option", { value: t.name, text: t.name })));
    } catch {
      select.replaceChildren(el("option", { value: name, text: name }));
    }
    select.value = name;
  }

  function wire() {
    ogshot.bindThemeToggle($("theme-toggle"));
    $("template-switch").addEventListener("change", (e) => (location.href = `/preview/${encodeURIComponent(e.target.value)}`));
    $("params-form").addEventListener("input", (event) => {
      const box = event.target.closest(".switch")?.querySelector(".switch-text");
      if (box) box.textContent = event.target.checked ? "on" : "off";
      syncShareFields();
      updateMocks();
      schedule();
    });
    $("params-form").addEventListener("change", () => schedule(0));
    $("reset").addEventListener("click", () => {
      buildForm(state.template, null);
      syncShareFields();
      updateMocks();
      render();
    });
    for (const button of document.querySelectorAll("#format button")) {
      button.addEventListener("click", () => {
        setFormat(button.dataset.format);
        render();
      });
    }
    for (const input of document.querySelectorAll("[data-share]")) {
      input.addEventListener("input", () => {
        input.dataset.touched = "1";
        if (input.id === "share-domain") syncShareFields();
        updateMocks();
        updateEmbed();
      });
    }
    $("base-url").addEventListener("input", updateEmbed);
    $("show-crop").addEventListener("change", (e) => ($("crop-guide").hidden = !e.target.checked));
    for (const button of document.querySelectorAll("[data-copy]")) {
      button.addEventListener("click", async () => {
        const source = $(button.dataset.copy);
        const text = "value" in source && source.tagName !== "PRE" ? source.value : source.textContent;
        try {
          await navigator.clipboard.writeText(text);
        } catch {
          const range = document.createRange();
          range.selectNodeContents(source);
          getSelection().removeAllRanges();
          getSelection().addRange(range);
          document.execCommand("copy");
        }
        button.textContent = "Copied";
        setTimeout(() => (button.textContent = "Copy"), 1200);
      });
    }
    ogshot.connectLive($("live"), async (change) => {
      toast(`Reloaded · ${(change.files || []).join(", ") || "files changed"}`);
      if (await loadTemplate()) {
        syncShareFields();
        updateMocks();
        render();
      }
    });
  }

  async function start() {
    $("base-url").value = location.origin;
    $("share-domain").value = "example.com";
    document.title = `${name} · ogshot studio`;
    $("page-title").textContent = `${name} · ogshot studio`;
    setFormat(state.format);
    wire();
    fillTemplateSwitch();
    if (await loadTemplate()) {
      syncShareFields();
      updateMocks();
      render();
    }
  }

  start();
})();
