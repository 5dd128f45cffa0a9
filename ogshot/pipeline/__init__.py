"""One request for an image, from validated parameters to encoded bytes: the Renderer."""
