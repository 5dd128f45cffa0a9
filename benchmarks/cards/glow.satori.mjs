import { h } from "./h.mjs";

export default ({ title, subtitle = "A 460 px circle under filter: blur(100px)", accent = "#8b5cf6" }) =>
  h("div", {
    width: 1200, height: 630, boxSizing: "border-box", display: "flex", flexDirection: "column", justifyContent: "center",
    padding: "0 96px", backgroundColor: "#09090b", fontFamily: "Inter", color: "#fafafa", position: "relative",
  },
    h("div", {
      position: "absolute", left: 640, top: 80, width: 460, height: 460, borderRadius: 230,
      backgroundColor: accent, filter: "blur(100px)",
    }),
    h("div", { fontSize: 76, lineHeight: 1.1, fontWeight: 800, letterSpacing: "-0.02em" }, title),
    h("div", { marginTop: 28, fontSize: 32, lineHeight: 1.3, color: "#a1a1aa" }, subtitle),
  );
