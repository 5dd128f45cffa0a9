// The gradient card in the subset Satori draws: flexbox, inline styles, no cascade.
import { h } from "./h.mjs";

export default ({ title, subtitle, from = "#ff5f6d", to = "#5b42f3" }) =>
  h("div", {
    width: 1200, height: 630, boxSizing: "border-box", display: "flex", flexDirection: "column", justifyContent: "center",
    padding: "0 96px", backgroundImage: `linear-gradient(135deg, ${from}, ${to})`,
    fontFamily: "Inter", color: "#fff",
  },
    h("div", { fontSize: 72, lineHeight: 1.1, fontWeight: 800, letterSpacing: "-0.02em" }, title),
    h("div", { marginTop: 28, fontSize: 34, lineHeight: 1.3, fontWeight: 400, opacity: 0.9 }, subtitle),
  );
