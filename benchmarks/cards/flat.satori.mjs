import { h, img } from "./h.mjs";

export default ({ title, author = "Ada Lovelace", date = "26 November 2026" }, assets) =>
  h("div", {
    width: 1200, height: 630, boxSizing: "border-box", display: "flex", flexDirection: "column", justifyContent: "space-between",
    padding: "72px 80px", backgroundColor: "#fafaf9", fontFamily: "Inter", color: "#111827",
    borderBottom: "12px solid #34d399",
  },
    h("div", { display: "flex", alignItems: "center", fontSize: 30, fontWeight: 700 },
      img(assets["logo.svg"], { width: 64, height: 64, marginRight: 20 }),
      "Field Notes",
    ),
    h("div", { fontSize: 66, lineHeight: 1.1, fontWeight: 800, letterSpacing: "-0.02em" }, title),
    h("div", { display: "flex", alignItems: "center", fontSize: 28, color: "#4b5563" },
      img(assets["avatar.png"], { width: 72, height: 72, borderRadius: 36, marginRight: 20 }),
      h("div", { color: "#111827", fontWeight: 600, marginRight: 16 }, author),
      date,
    ),
  );
