// The studio's A/B variants: when the template declares [variants], every variant is rendered
// next to the others with the studio's current parameters (/preview/_render?...&variant=NAME).
"use strict";

(() => {
  const name = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
  let variants = null; // the template's declaration, once known
  let controller = null;
  const urls = new Map(); // variant -> object URL shown

  function panel() {
    let section = document.getElementById("variants-panel");
    if (section) return section;
    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = "/preview/_assets/variants.css";
    document.head.appendChild(link);
    section = document.createElement("section");
    section.id = "variants-panel";
    section.className = "panel variants-panel";
    section.setAttribute("aria-labelledby", "variants-title");
    section.innerHTML =
      '<div class="panel-head"><h2 id="variants-title">Variants</h2>' +
      '<span class="muted small" id="variants-by"></span></div><div class="variants-grid" id="variants-grid"></div>';
    const stats = document.getElementById("stats");
    stats.parentNode.insertBefore(section, stats.nextSibling);
    return section;
  }

  function card(variant) {
    const grid = document.getElementById("variants-grid");
    let figure = grid.querySelector(`[data-variant="${CSS.escape(variant.name)}"]`);
    if (figure) return figure;
    figure = document.createElement("figure");
    figure.className = "variant-card";
    figure.dataset.variant = variant.name;
    const img = document.createElement("img");
    img.alt = `Variant ${variant.name}`;
    const caption = document.createElement("figcaption");
    const label = document.createElement("b");
    label.textContent = variant.name;
    const share = document.createElement("span");
    share.textContent = `weight ${variant.weight} (${Math.round(variant.share * 100)} %)`;
    caption.append(label, share);
    figure.append(img, caption);
    grid.appendChild(figure);
    return figure;
  }

  async function show({ format, query, variant: drawn }) {
    if (!variants) return;
    if (controller) controller.abort();
    const own = (controller = new AbortController());
    const section = panel();
    section.dataset.state = "loading";
    document.getElementById("variants-by").textContent = `chosen per page by ${variants.by}`;
    await Promise.all(
      variants.variants.map(async (variant) => {
        const figure = card(variant);
        figure.dataset.current = String(variant.name === drawn); // what /og serves for these
        const sep = query ? "&" : "";
        const url = `/preview/_render/${encodeURIComponent(name)}.${format}?${query}${sep}variant=${encodeURIComponent(variant.name)}`;
        try {
          const response = await fetch(url, { signal: own.signal, cache: "no-store" });
          if (!response.ok) throw new Error((await response.json()).error);
          const blob = await response.blob();
          if (own !== controller) return;
          const old = urls.get(variant.name);
          const objectUrl = URL.createObjectURL(blob);
          urls.set(variant.name, objectUrl);
          figure.querySelector("img").src = objectUrl;
          figure.dataset.state = "ready";
          figure.dataset.etag = response.headers.get("etag") || "";
          if (old) setTimeout(() => URL.revokeObjectURL(old), 1000);
        } catch (err) {
          if (err.name !== "AbortError") figure.dataset.state = "error";
        }
      }),
    );
    if (own === controller) section.dataset.state = "ready";
  }

  async function describe() {
    try {
      const response = await fetch(`/preview/_api/templates/${encodeURIComponent(name)}`, { cache: "no-store" });
      if (!response.ok) return null;
      return (await response.json()).variants || null;
    } catch {
      return null;
    }
  }

  let last = null;
  document.addEventListener("ogshot:rendered", async (event) => {
    last = event.detail;
    variants = await describe(); // re-read: a saved template may have changed its variants
    if (!variants) {
      document.getElementById("variants-panel")?.remove();
      return;
    }
    if (last === event.detail) show(event.detail);
  });
})();
