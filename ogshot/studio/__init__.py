"""The design studio (``/preview``, dev mode only): routes, plain HTML pages, the Activity page."""
