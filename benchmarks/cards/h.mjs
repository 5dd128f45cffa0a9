// A React-element-shaped object without React or JSX: what Satori takes as input.
export const h = (type, style, ...children) => ({
  type,
  props: { style, children: children.length === 1 ? children[0] : children },
});

export const img = (src, style) => ({
  type: "img",
  props: { src, width: style.width, height: style.height, style },
});
