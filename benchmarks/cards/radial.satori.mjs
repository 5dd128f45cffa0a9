import { h } from "./h.mjs";

export default ({ title, subtitle = "Two radial washes, one linear base, one soft shadow", tag = "Engineering" }) =>
  h("div", {
    width: 1200, height: 630, boxSizing: "border-box", display: "flex", alignItems: "center", justifyContent: "center",
    fontFamily: "Inter", backgroundColor: "#0f172a",
    backgroundImage: [
      "radial-gradient(circle at 15% 20%, rgba(56, 189, 248, 0.75), transparent 45%)",
      "radial-gradient(circle at 85% 85%, rgba(236, 72, 153, 0.7), transparent 50%)",
      "linear-gradient(160deg, #1e293b, #0f172a)",
    ].join(", "),
  },
    h("div", {
      display: "flex", flexDirection: "column", width: 960, padding: "56px 64px", backgroundColor: "#fff",
      borderRadius: 32, boxShadow: "0 30px 80px rgba(0, 0, 0, 0.45)",
    },
      h("div", {
        display: "flex", alignSelf: "flex-start", padding: "8px 20px", borderRadius: 999,
        backgroundColor: "#e0f2fe", color: "#0369a1", fontSize: 24, fontWeight: 600,
      }, tag),
      h("div", { marginTop: 24, fontSize: 64, lineHeight: 1.1, fontWeight: 800, color: "#0f172a", letterSpacing: "-0.02em" }, title),
      h("div", { marginTop: 20, fontSize: 30, lineHeight: 1.3, color: "#475569" }, subtitle),
    ),
  );
