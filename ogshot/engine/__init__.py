"""Chromium and what it draws: the supervised browser, the pool of warm pages, what a page may load,
the capture, and the encoders that turn a capture into PNG, JPEG or WebP bytes."""
