"""Helpers for web frameworks that link ogshot images: ``jinja`` (a global for any Jinja
environment: Flask, FastAPI, Starlette) and ``django`` (a template tag library). Each wraps
:func:`ogshot.meta_tags`; each imports its framework only when used."""
