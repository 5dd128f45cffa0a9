"""The deployment examples in deploy/ (Dockerfile, compose, Kubernetes, systemd) say what ogshot
really is: every OGSHOT_* name is one of Settings' variables, probes and ports are the server's,
and the copies of shared files have not drifted. A renamed variable or route breaks these tests.

The image itself is built and run by ``.ci/container`` (too slow for this suite)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ogshot.app import create_app
from ogshot.core.settings import Settings, env_vars
from ogshot.ops.metrics import Metrics
from tests.support.helpers import ROOT

DEPLOY = ROOT / "deploy"
ENV_NAMES = {var.name for var in env_vars()}
OGSHOT_NAME = re.compile(r"\bOGSHOT_[A-Z0-9_]+\b")


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def routes() -> set[str]:
    """The paths ogshot's app serves (the app is built, not started: no browser)."""
    app = create_app(Settings.load(environ={}, config_file=ROOT / "playwright.config.json"))
    return {getattr(route, "path", "") for route in app.routes}


def dockerfile() -> str:
    return (DEPLOY / "Dockerfile").read_text()


def dockerfile_env() -> dict[str, str]:
    """The runtime stage's ENV, as ``NAME=value`` pairs (continuation lines joined)."""
    text = dockerfile().replace("\\\n", " ")
    runtime = text[text.rindex("\nFROM ") :]
    env: dict[str, str] = {}
    for line in runtime.splitlines():
        if line.startswith("ENV "):
            env.update(pair.split("=", 1) for pair in line[4:].split())  # type: ignore[misc]
    return env


def image_uid() -> int:
    match = re.search(r"^USER (\d+):(\d+)$", dockerfile(), re.M)
    assert match, "deploy/Dockerfile: USER is not numeric uid:gid"
    return int(match.group(1))


def test_every_ogshot_name_in_deploy_is_a_real_setting() -> None:
    """Each OGSHOT_* mentioned in any deploy file (comments included) is a Settings variable
    (OGSHOT_CONFIG is the settings file's own)."""
    known = ENV_NAMES | {"OGSHOT_CONFIG"}
    for path in sorted(p for p in DEPLOY.rglob("*") if p.is_file()):
        unknown = set(OGSHOT_NAME.findall(path.read_text())) - known
        assert not unknown, f"{path.relative_to(ROOT)} names unknown variables {sorted(unknown)}"


def test_dockerfile_configures_by_environment() -> None:
    env = dockerfile_env()
    assert env["OGSHOT_HOST"] == "0.0.0.0"
    port = env["OGSHOT_PORT"]
    assert re.search(rf"^EXPOSE {port}$", dockerfile(), re.M)
    assert Settings.load(environ=env, config_file=ROOT / "playwright.config.json").port == int(port)
    # The checkout's templates and static files are copied to where the variables point.
    assert f"COPY html_templates {env['OGSHOT_TEMPLATES_DIR']}\n" in dockerfile()
    assert f"COPY static {env['OGSHOT_STATIC_DIR']}\n" in dockerfile()
    assert f"COPY playwright.config.json {env['OGSHOT_CONFIG']}\n" in dockerfile()
    assert image_uid() != 0
    health = re.search(r"^HEALTHCHECK .*?CMD (\[.*\])$", dockerfile().replace("\\\n", ""), re.M)
    assert health and "/healthz" in health.group(1) and "/healthz" in routes()
    assert 'CMD ["ogshot", "serve"]' in dockerfile()


def test_dockerfile_installs_the_fonts_ci_renders_with() -> None:
    """The image renders with the same fonts as the tests' pixels (.ci/setup's list)."""
    setup = (ROOT / ".ci" / "setup").read_text()
    listed = re.search(r"^SYSTEM_PACKAGES=\((.*)\)$", setup, re.M)
    assert listed
    fonts = [p for p in listed.group(1).split() if p.startswith("fonts-") or p == "fontconfig"]
    runtime = dockerfile()[dockerfile().rindex("\nFROM ") :]
    installed = set(runtime.replace("\\\n", " ").split())
    missing = {"chromium-headless-shell", *fonts} - installed
    assert not missing, f"deploy/Dockerfile's runtime stage does not install {sorted(missing)}"


def test_dockerignore_keeps_what_the_build_copies() -> None:
    ignored = [
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = []
    for line in dockerfile().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            copied += line.split()[1:-1]
    assert {"pyproject.toml", "ogshot", "html_templates", "static"} <= set(copied)
    for source in copied:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
        assert source not in ignored and source.split("/")[0] not in ignored, source


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def test_compose_services_and_their_wiring() -> None:
    services = compose()["services"]
    assert set(services) == {"ogshot-1", "ogshot-2", "redis", "nginx", "prometheus"}
    nodes = ["ogshot-1", "ogshot-2"]
    for name in nodes:
        node = services[name]
        assert node["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert set(node["environment"]) <= ENV_NAMES, set(node["environment"]) - ENV_NAMES
        assert node["environment"]["OGSHOT_REDIS_URL"] == "redis://redis:6379/0"
        assert node["environment"]["OGSHOT_LOG_FORMAT"] in ("text", "json")
        assert f"{name}-cache:/var/cache/ogshot" in node["volumes"]
        assert "ports" not in node, "only nginx is published"
    assert dockerfile_env()["OGSHOT_CACHE_DIR"] == "/var/cache/ogshot"
    # Settings accept the compose values as they are.
    env = {k: v for k, v in services["ogshot-1"]["environment"].items() if "${" not in v}
    Settings.load(environ=env, config_file=ROOT / "playwright.config.json")

    nginx = services["nginx"]
    assert "./compose/nginx.conf:/etc/nginx/nginx.conf:ro" in nginx["volumes"]
    upstreams = re.findall(
        r"^\s+server (\S+) ", (DEPLOY / "compose" / "nginx.conf").read_text(), re.M
    )
    assert upstreams == [f"{name}:8000" for name in nodes]

    prometheus = services["prometheus"]
    assert "./prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus["volumes"]
    scrape = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())["scrape_configs"][0]
    assert scrape["metrics_path"] == "/metrics" and "/metrics" in routes()
    assert scrape["static_configs"][0]["targets"] == [f"{name}:8000" for name in nodes]


def test_compose_nginx_conf_is_deploy_nginx_conf_with_service_names() -> None:
    """Only the upstreams and the nginx image's user differ from the tested deploy/nginx.conf."""

    def body(path: Path) -> str:
        text = path.read_text()
        return text[text.index("user ") :]

    copy = body(DEPLOY / "compose" / "nginx.conf")
    for old, new in [
        ("user nginx;", "user www-data;"),
        ("server ogshot-1:8000 ", "server 127.0.0.1:8001 "),
        ("server ogshot-2:8000 ", "server 127.0.0.1:8002 "),
    ]:
        assert copy.count(old) == 1, old
        copy = copy.replace(old, new)
    assert copy == body(DEPLOY / "nginx.conf")


def kubernetes() -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        for doc in yaml_documents(path):
            found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


def test_kubernetes_deployment_probes_ports_and_env() -> None:
    objects = kubernetes()
    deployment = objects[("Deployment", "ogshot")]
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= (
        deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    (container,) = pod["containers"]
    port = int(dockerfile_env()["OGSHOT_PORT"])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": port}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert {"/healthz", "/readyz"} <= routes()
    names = {e["name"] for e in container["env"]}
    assert names <= ENV_NAMES, names - ENV_NAMES
    # The pod runs as the image's user, with what the image writes to mounted writable.
    assert pod["securityContext"]["runAsUser"] == image_uid()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {dockerfile_env()["OGSHOT_CACHE_DIR"], "/tmp"} <= mounts
    limits, requests = container["resources"]["limits"], container["resources"]["requests"]
    assert requests["memory"] and limits["memory"]
    # Graceful stop: the pod waits longer than ogshot lets renders in flight finish.
    assert pod["terminationGracePeriodSeconds"] > Settings().shutdown_timeout

    service = objects[("Service", "ogshot")]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_kubernetes_redis_and_autoscaler_point_at_real_things() -> None:
    objects = kubernetes()
    container = objects[("Deployment", "ogshot")]["spec"]["template"]["spec"]["containers"][0]
    redis_url = next(e["value"] for e in container["env"] if e["name"] == "OGSHOT_REDIS_URL")
    host, port = re.fullmatch(r"redis://([^:/]+):(\d+)/\d+", redis_url).groups()  # type: ignore[union-attr]
    redis_service = objects[("Service", host)]
    assert redis_service["spec"]["ports"][0]["port"] == int(port)
    assert ("Deployment", host) in objects

    hpa = objects[("HorizontalPodAutoscaler", "ogshot")]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "ogshot"
    assert Metrics().registry is not None
    metric_names = {family.name for family in Metrics().registry.collect()}  # type: ignore[union-attr]
    for metric in hpa["spec"]["metrics"]:
        if metric["type"] == "Pods":
            name = metric["pods"]["metric"]["name"]
            assert name in metric_names, f"{name} is not one of ogshot's metrics"


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def unit() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in (DEPLOY / "ogshot.service").read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            values.setdefault(key, []).append(value)
    return values


def test_systemd_unit_settings() -> None:
    values = unit()
    assert values["User"] == ["ogshot"]
    assert values["Restart"] == ["on-failure"]
    assert values["EnvironmentFile"] == ["-/etc/ogshot/ogshot.env"]
    assert values["ExecStart"] == ["/opt/ogshot/bin/ogshot serve"]
    for hardening in ("NoNewPrivileges", "ProtectSystem", "PrivateTmp", "ProtectHome"):
        assert hardening in values
    # Chromium's JIT writes code: this option would crash every render.
    assert "MemoryDenyWriteExecute" not in values
    env = dict(line.split("=", 1) for line in values["Environment"])
    assert set(env) <= ENV_NAMES
    assert env["OGSHOT_CACHE_DIR"] == "/var/cache/" + values["CacheDirectory"][0]
    timeout = float(values["TimeoutStopSec"][0])
    assert (
        timeout
        > Settings.load(environ=env, config_file=ROOT / "playwright.config.json").shutdown_timeout
    )


@pytest.mark.skipif(
    SYSTEMD_ANALYZE is None,
    reason="SYSTEMD-ANALYZE IS NOT INSTALLED: `bash .ci/setup` installs Debian's systemd package",
)
def test_systemd_unit_verifies(tmp_path: Path) -> None:
    """``systemd-analyze verify`` in a root of its own (the unit's ExecStart exists there): no
    error and no warning, so a misspelt option fails too."""
    assert SYSTEMD_ANALYZE
    units = tmp_path / "etc" / "systemd" / "system"
    units.mkdir(parents=True)
    shutil.copy(DEPLOY / "ogshot.service", units / "ogshot.service")
    system = next(
        p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir()
    )
    shutil.copytree(system, tmp_path / "usr" / "lib" / "systemd" / "system", symlinks=True)
    executable = tmp_path / "opt" / "ogshot" / "bin" / "ogshot"
    executable.parent.mkdir(parents=True)
    executable.write_text("#!/bin/sh\n")
    executable.chmod(0o755)
    done = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", f"--root={tmp_path}", "/etc/systemd/system/ogshot.service"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr
