import { h } from "./h.mjs";

export default ({ title, site = "field-notes.example" }, assets) =>
  h("div", {
    width: 1200, height: 630, boxSizing: "border-box", display: "flex", flexDirection: "column", justifyContent: "flex-end",
    padding: "72px 80px", fontFamily: "Inter", color: "#fff",
    backgroundImage: `linear-gradient(to top, rgba(0, 0, 0, 0.85), rgba(0, 0, 0, 0.15)), url(${assets["photo.jpg"]})`,
    backgroundSize: "1200px 630px",
  },
    h("div", { fontSize: 26, fontWeight: 600, letterSpacing: "0.06em", textTransform: "uppercase", opacity: 0.85 }, site),
    h("div", { marginTop: 16, fontSize: 68, lineHeight: 1.1, fontWeight: 800, letterSpacing: "-0.02em" }, title),
  );
