// The gallery: one card per template, its thumbnail rendered with its example parameters.
"use strict";

(() => {
  const { el } = ogshot;
  const gallery = document.getElementById("gallery");
  let generation = 0;

  async function load() {
    const mine = ++generation;
    let templates;
    try {
      ({ templates } = await (await fetch("/preview/_api/templates", { cache: "no-store" })).json());
    } catch (err) {
      gallery.replaceChildren(el("p", { class: "empty", text: `Cannot reach the server (${err.message}).` }));
      return;
    }
    if (mine !== generation) return;
    if (!templates.length) {
      gallery.replaceChildren(el("p", { class: "empty", text: "No templates yet: add NAME.html to the templates folder." }));
      document.body.dataset.state = "ready";
      return;
    }
    gallery.replaceChildren(...templates.map(card));
    await Promise.all(templates.map((t) => thumbnail(t, mine)));
    if (mine === generation) document.body.dataset.state = "ready";
  }

  function card(template) {
    const chips = (template.params || []).map((p) =>
      el("span", { class: "chip", title: p.description || "" }, p.name, p.required ? "*" : "", el("em", { text: p.type })),
    );
    return el(
      "a",
      { class: "template-card", href: `/preview/${encodeURIComponent(template.name)}`, "data-template": template.name },
      el("div", { class: "thumb" }, el("img", { alt: `${template.name} rendered with its examples`}), el("div", { class: "thumb-error" })),
      el(
        "div",
        { class: "card-body" },
        el("div", { class: "card-title" }, el("span", { class: "mono", text: template.name })),
        el("p", { class: "card-description", text: template.description || (template.error ? "" : "No description") }),
        template.error ? el("p", { class: "card-error", text: template.error }) : null,
        el("div", { class: "chips" }, chips.length ? chips : template.declared === false ? el("span", { class: "chip", text: "any string params" }) : null),
      ),
    );
  }

  async function thumbnail(template, mine) {
    const node = gallery.querySelector(`[data-template="${CSS.escape(template.name)}"]`);
    const img = node.querySelector("img");
    const fail = (text) => {
      node.classList.add("broken");
      node.querySelector(".thumb-error").textContent = text;
    };
    if (template.error) return fail(template.detail && template.detail.line ? `line ${template.detail.line}` : "error");
    const query = ogshot.exampleQuery(template);
    try {
      const response = await fetch(`/preview/_render/${encodeURIComponent(template.name)}.png${query ? `?${query}` : ""}`, { cache: "no-store" });
      if (mine !== generation) return;
      if (!response.ok) {
        const body = await response.json();
        return fail(body.error);
      }
      const url = URL.createObjectURL(await response.blob());
      img.src = url;
      await img.decode().catch(() => null);
    } catch (err) {
      fail(err.message);
    }
  }

  ogshot.bindThemeToggle(document.getElementById("theme-toggle"));
  ogshot.connectLive(document.getElementById("live"), load);
  load();
})();
