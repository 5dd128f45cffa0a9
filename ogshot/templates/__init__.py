"""Templates: the catalog, their TOML declarations and typed parameters, Jinja filters, variants,
versions (``v``), URL signing and the watch over the folders. Neither Playwright nor pyvips."""
