"""``ogshot bench``: development tooling (the in-process measurements, the floor app, servers in
subprocesses). Only the ``bench`` command imports it; nothing that serves does."""
