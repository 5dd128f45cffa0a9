"""An mkdocs hook that writes the reference tables from the code at build time, so the pages
cannot drift from it. A page asks for a table with a marker on a line of its own:

- ``<!-- ogshot:settings -->``: every environment variable of ``Settings`` (``env_vars()``) with its
  type and default from the dataclass and its meaning from ``settings_help.toml`` beside this file;
- ``<!-- ogshot:cli -->``: every command of the click tree with its arguments, options and help;
- ``<!-- ogshot:metrics -->``: every metric of ``ogshot.ops.metrics.Metrics`` with its type, help
  and labels;
- ``<!-- ogshot:routes -->``: every route ``create_app`` mounts, its methods, when it is there
  and the first line of its handler's docstring.

A variable without a meaning in ``settings_help.toml``, or a meaning for a variable that no longer
exists, is an error: the build stops and names it.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
# The hook imports ogshot from the tree the docs belong to, not from whatever is installed.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MARKERS = ("settings", "cli", "metrics", "routes")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    for name in MARKERS:
        marker = f"<!-- ogshot:{name} -->"
        if marker in markdown:
            markdown = markdown.replace(marker, TABLES[name]())
    return markdown


def _cell(text: str) -> str:
    """Text that stays inside one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _code(text: str) -> str:
    return f"`{text}`" if text else ""


# -- settings ------------------------------------------------------------------------------------


def _type_name(kind: Any) -> str:
    from ogshot.core.envvars import Bytes

    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in args:
        inner = next(a for a in args if a is not type(None))
        return f"{_type_name(inner)}, or empty"
    if kind == Bytes:
        return "size (bytes, `500MB`, `1GiB`)"
    if kind == tuple[str, ...]:
        return "list (comma-separated, or a JSON array)"
    if typing.get_origin(kind) is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if kind is bool:
        return "bool (`1`/`0`, `true`/`false`, `on`/`off`)"
    if kind is Path:
        return "path"
    return str(getattr(kind, "__name__", kind))


def _human(size: int) -> str:
    for unit, power in (("GiB", 30), ("MiB", 20)):
        if size % (1 << power) == 0:
            return f"{size >> power} {unit}"
    return f"{size / 1e6:g} MB"


def settings_help() -> dict[str, dict[str, str]]:
    with (HERE / "settings_help.toml").open("rb") as file:
        data = tomllib.load(file)
    return {name: dict(entry) for name, entry in data.items()}


def settings_table() -> str:
    from ogshot.core.envvars import Bytes
    from ogshot.core.settings import Settings, env_vars

    helps = settings_help()
    variables = env_vars()
    names = {var.name for var in variables}
    missing = sorted(names - set(helps))
    unknown = sorted(set(helps) - names)
    if missing or unknown:
        raise ValueError(
            f"docs/hooks/settings_help.toml: add a meaning for {missing}"
            if missing
            else f"docs/hooks/settings_help.toml: {unknown} are no Settings field any more"
        )
    hints = typing.get_type_hints(Settings, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    rows = ["| variable | type | default | meaning |", "|---|---|---|---|"]
    for var in variables:
        entry = helps[var.name]
        field = fields[var.field]
        if "default" in entry:  # a default that depends on the machine, said in words
            default = entry["default"]
        elif field.default is not dataclasses.MISSING:
            default = _code(var.format(field.default)) or "empty"
            if hints[var.field] == Bytes and field.default >= 1 << 20:
                default += f" ({_human(field.default)})"
        else:
            raise ValueError(f"settings_help.toml: {var.name} has a computed default: describe it")
        rows.append(
            f"| `{var.name}` | {_type_name(hints[var.field])} | {_cell(default)} "
            f"| {_cell(entry['meaning'])} |"
        )
    return "\n".join(rows)


# -- CLI -----------------------------------------------------------------------------------------


def cli_reference() -> str:
    import click

    from ogshot.cli import cli

    context = click.Context(cli, info_name="ogshot")
    parts: list[str] = []
    for name in sorted(cli.list_commands(context)):
        command = cli.get_command(context, name)
        assert command is not None
        sub = click.Context(command, info_name=name, parent=context)
        usage = " ".join(command.collect_usage_pieces(sub))
        parts.append(f"## `ogshot {name}`\n")
        parts.append(f"```\nogshot {name} {usage}\n```\n")
        parts.append(_cell(command.help or "") + "\n")
        rows = ["| argument or option | help | default |", "|---|---|---|"]
        for param in command.params:
            if isinstance(param, click.Option):
                names = ", ".join(f"`{o}`" for o in (*param.opts, *param.secondary_opts))
                if param.envvar:
                    names += f" (env `{param.envvar}`)"
                shown = param.default if param.show_default and not param.is_flag else None
                default = "" if shown in (None, "", ()) else _code(str(shown))
                rows.append(f"| {names} | {_cell(param.help or '')} | {default} |")
            else:
                many = " ..." if param.nargs == -1 else ""
                required = "" if param.required else " (optional)"
                rows.append(f"| `{(param.name or '').upper()}{many}`{required} | | |")
        if len(rows) > 2:
            parts.append("\n".join(rows) + "\n")
    return "\n".join(parts)


# -- metrics -------------------------------------------------------------------------------------


def metrics_table() -> str:
    from prometheus_client.metrics import MetricWrapperBase

    from ogshot.ops.metrics import Metrics

    rows = ["| metric | type | labels | help |", "|---|---|---|---|"]
    for metric in sorted(
        (m for m in vars(Metrics()).values() if isinstance(m, MetricWrapperBase)),
        key=lambda m: m._name,
    ):
        name = metric._name + ("_total" if metric._type == "counter" else "")
        kind = metric._type
        if kind == "histogram":
            kind += " (`_bucket`, `_sum`, `_count`)"
        # prometheus_client keeps the label names only on the wrapper (a family without samples
        # has none to show): read them there.
        labels = ", ".join(f"`{label}`" for label in metric._labelnames)
        rows.append(f"| `{name}` | {kind} | {labels} | {_cell(metric._documentation)} |")
    return "\n".join(rows)


# -- HTTP routes ---------------------------------------------------------------------------------


def app_routes(**settings: Any) -> dict[str, str]:
    """path -> methods of the app ``create_app`` builds with these settings. The app
    is only built: its lifespan (Chromium, caches) never runs."""
    from starlette.routing import Mount, Route

    from ogshot.app import create_app
    from ogshot.core.settings import Settings

    app = create_app(Settings(**settings))
    found: dict[str, str] = {}
    for route in app.routes:
        if isinstance(route, Route):
            methods = route.methods or set()
            found[route.path] = ", ".join(m for m in ("GET", "HEAD", "POST") if m in methods)
        elif isinstance(route, Mount):
            found[route.path + "/{path}"] = "GET"
    return found


def _help(file: str) -> dict[str, str]:
    with (HERE / file).open("rb") as handle:
        return {key: entry["meaning"] for key, entry in tomllib.load(handle).items()}


def routes_table() -> str:
    helps = _help("routes_help.toml")
    always = app_routes(dev=False, metrics=False)
    with_metrics = app_routes(dev=False, metrics=True)
    everything = app_routes(dev=True, metrics=True)
    missing = sorted(set(everything) - set(helps))
    unknown = sorted(set(helps) - set(everything))
    if missing or unknown:
        raise ValueError(
            f"docs/hooks/routes_help.toml: describe {missing}; no such route: {unknown}"
        )
    rows = ["| path | methods | mounted | what it answers |", "|---|---|---|---|"]
    for path, methods in everything.items():
        if path in always:
            when = "always"
        elif path in with_metrics:
            when = "`OGSHOT_METRICS=1` (default)"
        else:
            when = "dev mode (`OGSHOT_DEV=1`)"
        shown = re.sub(r":(str|path)}", "}", path)  # Starlette's converters
        rows.append(f"| `{shown}` | {methods} | {when} | {_cell(helps[path])} |")
    return "\n".join(rows)


TABLES = {
    "settings": settings_table,
    "cli": cli_reference,
    "metrics": metrics_table,
    "routes": routes_table,
}
