"""The ``ogshot`` command: thin. Parse options, build Settings, call the library; domain errors
become ClickException here and nowhere deeper."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from ogshot.core.errors import OgshotError, TemplateNotFound
from ogshot.core.settings import Settings
from ogshot.core.version import __version__

__all__ = ["main"]


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings.load(**overrides)
    except OgshotError as exc:
        raise click.ClickException(exc.message) from None


def _pairs(items: tuple[str, ...]) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not key=value", param_hint="PARAMS")
        params[key] = value
    return params


@click.group()
@click.version_option(__version__, prog_name="ogshot")
def cli() -> None:
    """Open Graph images from HTML/CSS templates, rendered by warm Chromium pages."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pyvips").setLevel(logging.WARNING)


@cli.command()
@click.option("--host", default=None, help="Interface to bind (OGSHOT_HOST, default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (OGSHOT_PORT, default 8000).")
@click.option("--workers", type=int, default=1, show_default=True, help="Worker processes.")
@click.option("--reload", is_flag=True, help="Restart when ogshot's Python code changes.")
@click.option("--dev", is_flag=True, help="Enable /preview and live reload (OGSHOT_DEV=1).")
@click.option(
    "--access-log/--no-access-log",
    default=False,
    show_default=True,
    help="Log every request (costs about a third of cache-hit throughput).",
)
def serve(
    host: str | None, port: int | None, workers: int, reload: bool, dev: bool, access_log: bool
) -> None:
    """Serve /og images over HTTP."""
    import uvicorn

    settings = _settings(host=host, port=port, dev=dev or None)
    _warn_without_templates(settings)
    # Settings are built once, here; every worker (and a --reload restart) rebuilds exactly
    # these from the environment it inherits.
    os.environ.update(settings.to_env())
    with _metrics_folder(workers > 1 and settings.metrics):
        uvicorn.run(
            "ogshot.app:app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=workers if workers > 1 else None,
            reload=reload,
            log_level="info",
            timeout_graceful_shutdown=math.ceil(settings.shutdown_timeout),
            proxy_headers=True,
            access_log=access_log,
        )


def _warn_without_templates(settings: Settings) -> None:
    """The server starts anyway (templates saved later are picked up), but says what to do."""
    from ogshot.scaffold import no_templates_message
    from ogshot.templates.catalog import NAME_RE

    # A look at the file names only: reading the catalog here parsed every template and ran
    # Tailwind's CLI (without a cache) before the server even started.
    folder = Path(settings.templates_dir)
    if not any(NAME_RE.match(file.stem) for file in folder.glob("*.html")):
        click.secho(
            f"warning: {no_templates_message(settings.templates_dir)}", err=True, fg="yellow"
        )


@contextlib.contextmanager
def _metrics_folder(needed: bool) -> Iterator[None]:
    """Several workers count into one folder of prometheus_client's multiprocess files, made
    fresh for this server and removed when it stops (stale files would count old workers)."""
    if not needed or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="ogshot-metrics-") as folder:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
        try:
            yield
        finally:
            del os.environ["PROMETHEUS_MULTIPROC_DIR"]


@cli.command()
@click.argument("template")
@click.argument("params", nargs=-1)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="File to write ('-' for standard output).",
)
@click.option(
    "--format",
    "fmt",
    default=None,
    help="png, jpeg, jpg or webp (default: from the file name, else png).",
)
def render(template: str, params: tuple[str, ...], output: Path, fmt: str | None) -> None:
    """Render TEMPLATE with key=value PARAMS to a file, without a server."""
    from ogshot.pipeline.renderer import Renderer

    if fmt is None:
        suffix = output.suffix.lstrip(".").lower()
        fmt = suffix if suffix in ("png", "jpg", "jpeg", "webp") else "png"
    settings = _settings()
    values = _pairs(params)

    async def run() -> bytes:
        async with Renderer(settings) as renderer:
            return await renderer.render(template, values, format=fmt)

    try:
        data = asyncio.run(run())
    except TemplateNotFound as exc:
        if exc.detail["available"]:
            raise click.ClickException(exc.message) from None
        from ogshot.scaffold import no_templates_message

        message = no_templates_message(settings.templates_dir)
        raise click.ClickException(f"{exc.message}: {message}") from None
    except OgshotError as exc:
        raise click.ClickException(exc.message) from None
    if str(output) == "-":
        sys.stdout.buffer.write(data)
    else:
        output.write_bytes(data)
        click.echo(f"wrote {output} ({len(data):,} bytes)", err=True)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def templates(as_json: bool) -> None:
    """List templates and their declared parameters."""
    from ogshot.templates.catalog import Catalog, Size

    settings = _settings()
    catalog = Catalog(
        settings.templates_dir,
        settings.static_dir,
        size=Size(settings.width, settings.height, settings.device_scale_factor),
        css_cache=Path(settings.cache_dir) / "tailwind",
    )
    described = []
    for name in catalog.names():
        try:
            described.append(catalog.get(name).describe())
        except OgshotError as exc:
            described.append({"name": name, "error": exc.message, "params": []})
    if as_json:
        click.echo(json.dumps(described, indent=2, ensure_ascii=False))
        return
    if not described:
        from ogshot.scaffold import no_templates_message

        raise click.ClickException(no_templates_message(settings.templates_dir))
    for item in described:
        click.secho(item["name"], bold=True, nl=False)
        click.echo(f"  {item.get('description') or item.get('error') or ''}")
        if not item.get("declared", True):
            click.echo("    (undeclared: accepts any string parameters)")
        for p in item["params"]:
            click.echo(f"    {_param_line(p)}")


def _param_line(p: dict[str, Any]) -> str:
    """``name: type required|default=X|optional [limits] [choices]  description``."""
    if p["required"]:
        words = ["required" + (" (may be empty)" if p.get("allow_empty") else "")]
    elif "default" in p:
        words = [f"default={json.dumps(p['default'], ensure_ascii=False)}"]
    else:
        words = ["optional (no default)"]
    words += [f"{key}={p[key]}" for key in ("min", "max", "max_length") if key in p]
    if "choices" in p:
        words.append("choices=" + "|".join(str(c) for c in p["choices"]))
    text = f"{p['name']}: {p['type']} {' '.join(words)}"
    return f"{text}  {p['description']}" if p.get("description") else text


@cli.command()
@click.argument("template")
@click.argument("params", nargs=-1)
@click.option("--format", "fmt", default="png", show_default=True, help="png, jpg, jpeg or webp.")
@click.option("--base", default="", help="Put this in front, e.g. https://og.example.com")
def url(template: str, params: tuple[str, ...], fmt: str, base: str) -> None:
    """Print the /og URL of TEMPLATE with key=value PARAMS, signed with OGSHOT_SECRET.

    Template, format and parameters are checked against the templates folder as the server
    will check them: a URL that could only fail is an error (exit status 1), not printed."""
    import warnings

    from ogshot.templates.signing import sign_url

    settings = _settings()
    values = _pairs(params)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # said below, in the CLI's words
            found = sign_url(template, values, fmt, base=base, settings=settings, validate=True)
    except TemplateNotFound as exc:  # its message has the near miss, if any
        names = (exc.detail or {}).get("available") or []
        listed = ", ".join(names) or f"none in {settings.templates_dir}"
        raise click.ClickException(f"{exc.message}; templates: {listed}") from None
    except OgshotError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(found)
    if not settings.secrets:
        click.echo("note: OGSHOT_SECRET is not set, so the URL is not signed", err=True)


@cli.command()
@click.argument("target", metavar="URL|FILE")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--timeout",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds for the page and its images together.",
)
def check(target: str, as_json: bool, timeout: float) -> None:
    """Would a link to the page at URL (or in an HTML FILE) unfurl with its image? Checks its
    Open Graph and Twitter tags and fetches the image, per platform (X, Facebook, LinkedIn,
    Slack, Discord, WhatsApp, Telegram, iMessage, Mastodon, Bluesky). Exits 1 when a platform
    would not show the card."""
    from rich.console import Console

    from ogshot.batch.link_check import check_link, print_report, report_json

    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request: the table says it
    try:
        report = asyncio.run(check_link(target, seconds=timeout))
    except OgshotError as exc:
        raise click.ClickException(exc.message) from None
    if as_json:
        click.echo(json.dumps(report_json(report), indent=2, ensure_ascii=False))
    else:  # wide enough off a terminal that a problem stays on one line for grep
        print_report(report, Console(width=None if sys.stdout.isatty() else 200))
    if not report.ok:
        click.get_current_context().exit(1)


@cli.command()
@click.argument("template_names", nargs=-1)
@click.option(
    "--iterations",
    type=int,
    default=40,
    show_default=True,
    help="Cache misses per format (library API) and baseline renders.",
)
@click.option("--hit-seconds", type=float, default=10.0, show_default=True)
@click.option("--saturation-seconds", type=float, default=20.0, show_default=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("benchmarks/results/latest.json"),
    show_default=True,
    help="Where to write the JSON results.",
)
def bench(
    template_names: tuple[str, ...],
    iterations: int,
    hit_seconds: float,
    saturation_seconds: float,
    output: Path,
) -> None:
    """Measure cache misses, hits, saturation, cold start, memory and quality (a few minutes)."""
    from ogshot.bench.measure import BenchOptions, report, run

    options = BenchOptions(
        templates=template_names or ("article",),
        iterations=max(2, iterations),
        hit_seconds=hit_seconds,
        saturation_seconds=saturation_seconds,
        output=output,
        settings=_settings(),
    )
    try:
        result = run(options)
    except OgshotError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(report(result))
    click.echo(f"\nwrote {output}", err=True)


@cli.command()
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    help="Folder to write into, or s3://bucket/prefix.",
)
@click.option("--format", "fmt", default="png", show_default=True, help="png, jpg or webp.")
@click.option("--template", default=None, help="Template of rows that name none (sitemaps).")
@click.option(
    "--param",
    "rules",
    multiple=True,
    help="Sitemap rule key=pattern, e.g. 'title={title}' (url host path slug title lastmod).",
)
@click.option("--public-base-url", default="", help="URL of the output, for the mapping file.")
@click.option(
    "--s3-endpoint",
    envvar="OGSHOT_S3_ENDPOINT",
    default=None,
    help="S3 API endpoint (R2, MinIO, ...); OGSHOT_S3_ENDPOINT.",
)
@click.option("--concurrency", type=int, default=None, help="Images in flight (2 per page).")
@click.option("--force", is_flag=True, help="Render every row, even when its image is there.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a TTY).")
@click.option(
    "--use-cache",
    is_flag=True,
    help="Read and fill the configured cache (OGSHOT_CACHE_DIR, OGSHOT_REDIS_URL) instead of "
    "a private one removed after the build.",
)
@click.option(
    "--server",
    default="",
    help="Download the images from this running fleet (its load balancer) instead of rendering "
    "them here; URLs are signed with OGSHOT_SECRET.",
)
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=None,
    help="With --server: times a 503 or a dropped connection is tried again, with backoff "
    "(default 7).",
)
def build(
    manifest: Path,
    output: str,
    fmt: str,
    template: str | None,
    rules: tuple[str, ...],
    public_base_url: str,
    s3_endpoint: str | None,
    concurrency: int | None,
    force: bool,
    progress: bool | None,
    use_cache: bool,
    server: str,
    retries: int | None,
) -> None:
    """Pre-generate the images of MANIFEST (.csv, .jsonl or sitemap .xml) into a folder or a
    bucket, with a mapping file (row -> path, URL). Exits 1 if any row failed."""
    from ogshot.batch.build import build as run_build
    from ogshot.batch.manifests import read_manifest
    from ogshot.batch.outputs import open_output
    from ogshot.batch.remote import RETRIES

    settings = _settings()
    try:
        out = open_output(output, s3_endpoint=s3_endpoint)
        rows = read_manifest(manifest, template=template, rules=_pairs(rules))
        report = asyncio.run(
            run_build(
                rows,
                out,
                settings,
                format=fmt,
                concurrency=concurrency,
                force=force,
                public_base_url=public_base_url,
                progress=sys.stderr.isatty() if progress is None else progress,
                notice=lambda text: click.echo(text, err=True),
                use_cache=use_cache,
                server=server,
                retries=RETRIES if retries is None else retries,
            )
        )
    except OgshotError as exc:
        raise click.ClickException(exc.message) from None
    for row, reason in report.failed:
        click.echo(f"failed: {row.source} ({row.template or '?'}): {reason}", err=True)
    rate = len(report.written) / report.rendered_seconds if report.rendered_seconds else 0.0
    click.echo(
        f"{len(report.written)} written, {len(report.skipped)} skipped (already there), "
        f"{len(report.failed)} failed of {report.rows} rows"
        + (f" in {report.rendered_seconds:.1f} s ({rate:.1f} images/s)" if rate else "")
        + f"; mapping: {report.mapping}",
        err=True,
    )
    if report.failed:
        click.get_current_context().exit(1)


@cli.command()
@click.argument("template", required=False)
@click.option("--key", "keys", multiple=True, help="A cache key (repeatable).")
@click.option(
    "--url", "image_url", default=None, help="An /og URL, e.g. '/og/article.png?title=Hi'."
)
@click.option(
    "--server",
    envvar="OGSHOT_SERVER",
    default="http://127.0.0.1:8000",
    show_default=True,
    help="A running node (any one: Redis takes the purge to the others); OGSHOT_SERVER.",
)
def purge(template: str | None, keys: tuple[str, ...], image_url: str | None, server: str) -> None:
    """Remove the images of TEMPLATE, of --key K or of --url URL from every cache layer of every
    node, through a running node's POST /admin/purge (token: OGSHOT_ADMIN_TOKEN), and from the
    edge caches and CDN that node is told of (OGSHOT_EDGE_PURGE_URL, OGSHOT_PURGE_WEBHOOK)."""
    import httpx

    given = [
        body
        for body in (
            {"template": template} if template else None,
            {"keys": list(keys)} if keys else None,
            {"url": image_url} if image_url else None,
        )
        if body is not None
    ]
    if len(given) != 1:
        raise click.UsageError("give one of TEMPLATE, --key K (repeatable) or --url URL")
    token = _settings().admin_token
    if not token:
        raise click.ClickException("OGSHOT_ADMIN_TOKEN is not set (the server's admin token)")
    try:
        response = httpx.post(
            server.rstrip("/") + "/admin/purge",
            json=given[0],
            headers={"authorization": f"Bearer {token}"},
            timeout=30,
        )
    except httpx.HTTPError as exc:
        raise click.ClickException(f"{server}: {exc}") from None
    if response.status_code != 200:
        try:
            reason = response.json().get("error", response.text)
        except ValueError:
            reason = response.text
        raise click.ClickException(f"{server} answered {response.status_code}: {reason}")
    click.echo(json.dumps(response.json()))
    failed = response.json().get("edge", {}).get("failed")
    if failed:  # the nodes are purged; an edge cache or the webhook was not
        raise click.ClickException(f"purged on the nodes, not everywhere: {'; '.join(failed)}")


@cli.command()
@click.argument("directory", required=False, default=".", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init(directory: Path, force: bool) -> None:
    """Start a project in DIRECTORY (default: here): the gallery's templates, partials and static
    files, copied from the installed package into html_templates/ and static/."""
    from ogshot.scaffold import FOLDERS, write_project

    try:
        written = write_project(directory, force=force)
    except (FileExistsError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    folders = ", ".join(f"{directory / name}/" for name in FOLDERS)
    click.echo(f"wrote {len(written)} files into {folders}")
    click.echo("next:")
    if directory.resolve() != Path.cwd().resolve():
        click.echo(f"  cd {directory}")
    click.echo("  ogshot templates                                   # what you can render")
    click.echo('  ogshot render article "title=Hello world" -o hello.png')
    click.echo("  ogshot serve --dev        # the studio at http://127.0.0.1:8000/preview")


@cli.command()
@click.argument("sources", nargs=-1, required=True)
@click.option(
    "--server",
    envvar="OGSHOT_SERVER",
    default="http://127.0.0.1:8000",
    show_default=True,
    help="A running node (with Redis, the whole fleet shares the queue); OGSHOT_SERVER.",
)
@click.option("--token", envvar="OGSHOT_ADMIN_TOKEN", default="", help="OGSHOT_ADMIN_TOKEN.")
@click.option("--format", "fmt", default="png", show_default=True, help="For manifest rows.")
@click.option("--template", default=None, help="Template of rows that name none (sitemaps).")
@click.option("--param", "rules", multiple=True, help="Sitemap rule key=pattern (as for build).")
def warm(
    sources: tuple[str, ...],
    server: str,
    token: str,
    fmt: str,
    template: str | None,
    rules: tuple[str, ...],
) -> None:
    """Make images before their first request: each SOURCE is an /og URL or a manifest file
    (.csv, .jsonl or sitemap .xml, as for build), sent to POST /admin/warm. Exits 1 if any
    item was refused."""
    from ogshot.batch.manifests import read_manifest
    from ogshot.batch.warm import send_warm

    if not token:
        raise click.ClickException("OGSHOT_ADMIN_TOKEN is not set (the server's admin token)")
    urls: list[str] = []
    rows = []
    try:
        for source in sources:
            if source.startswith(("/og", "http://", "https://")):
                urls.append(source)
            else:
                rows.extend(read_manifest(Path(source), template=template, rules=_pairs(rules)))
        result = send_warm(server, token, urls=urls, rows=rows, format=fmt)
    except OgshotError as exc:
        raise click.ClickException(exc.message) from None
    for source, reason in result.refused:
        click.echo(f"refused: {source}: {reason}", err=True)
    click.echo(
        f"{result.queued} queued, {len(result.refused)} refused of {result.sent} "
        f"(lane: {result.lane or '?'})",
        err=True,
    )
    if result.refused:
        click.get_current_context().exit(1)


def main() -> None:
    cli(prog_name="ogshot")
