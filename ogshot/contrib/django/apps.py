"""The Django app that carries the ``{% load ogshot %}`` tag library."""

from __future__ import annotations

from django.apps import AppConfig


class OgshotConfig(AppConfig):  # type: ignore[misc]  # Django is untyped
    name = "ogshot.contrib.django"
    label = "ogshot"  # the package's last name, "django", would be a confusing label
    verbose_name = "ogshot"
