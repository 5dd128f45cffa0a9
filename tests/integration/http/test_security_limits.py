"""Input limits answer 400/414 with a message naming the problem, never a 500 or a render; and the
settings that keep Chromium off the network cannot be configured away."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from ogshot.core.errors import ConfigError
from ogshot.core.settings import ISOLATION_ARGS, Settings
from tests.support.helpers import mean_difference, renders


def undeclared(client: TestClient) -> str:
    """An undeclared template (takes any string parameters) in the client's templates folder."""
    folder = Path(client.app.state.renderer.settings.templates_dir)  # type: ignore[attr-defined]
    (folder / "free.html").write_text("<p>{{ a }}</p>")
    return "free"


def test_query_string_over_the_limit_is_414(client: TestClient) -> None:
    before = renders(client)
    response = client.get("/og/minimal.png?title=" + "x" * 9000)
    assert response.status_code == 414
    assert "limit is 8192" in response.json()["error"]
    data = quote(json.dumps({"title": "y" * 9000}))
    assert client.get(f"/og?template=minimal&data={data}").status_code == 414
    assert renders(client) == before


def test_too_many_parameters_is_400(client: TestClient) -> None:
    name = undeclared(client)
    query = "&".join(f"p{i}=1" for i in range(33))
    response = client.get(f"/og/{name}.png?{query}")
    assert response.status_code == 400
    assert "too many parameters (33 > 32)" in response.json()["error"]


def test_each_parameter_length_is_capped(client: TestClient) -> None:
    declared = client.get("/og/minimal.png", params={"title": "x" * 101})  # max_length = 100
    assert declared.status_code == 400
    assert declared.json()["detail"] == {"parameter": "title"}
    assert "longer than 100" in declared.json()["error"]
    name = undeclared(client)
    default = client.get(f"/og/{name}.png", params={"a": "x" * 1001})  # the global default
    assert default.status_code == 400
    assert "longer than 1000" in default.json()["error"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ('{"title": {"a": {"b": {"c": {"d": 1}}}}}', "nested deeper than 4"),
        # 1,300 levels fit in the query limit and would exhaust the JSON parser's stack
        ("[" * 1300 + "]" * 1300, "nested deeper than 4"),
        ('{"a":' * 500 + "1" + "}" * 500, "nested deeper than 4"),
        ('["title"]', "must be a JSON object"),
        ('{"title": ', "not valid JSON"),
        ('{"title": ["a"]}', "expected a str"),
    ],
)
def test_data_json_is_bounded(client: TestClient, data: str, message: str) -> None:
    response = client.get(f"/og?template=minimal&data={quote(data)}")
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]
    assert response.json()["detail"]["parameter"] in ("data", "title")


def test_only_known_formats(client: TestClient) -> None:
    for url in (
        "/og/minimal.gif?title=x",
        "/og/minimal.svg?title=x",
        "/og?template=minimal&format=bmp&data=%7B%22title%22%3A%22x%22%7D",
    ):
        response = client.get(url)
        assert response.status_code == 400, url
        assert "unknown format" in response.json()["error"]


def test_bad_names_and_repeats_are_400(client: TestClient) -> None:
    name = undeclared(client)
    for query, parameter in (
        ("%3Cscript%3E=1", "<script>"),
        ("__proto__x=1&a%00=2", "a\x00"),
        ("a=1&a=2", "a"),
    ):
        response = client.get(f"/og/{name}.png?{query}")
        assert response.status_code == 400, query
        assert response.json()["detail"]["parameter"] == parameter


def test_strange_bytes_are_a_clear_answer_not_a_crash(client: TestClient) -> None:
    before = renders(client)
    # Bytes that are not UTF-8 are not text: refused, naming the parameter, nothing rendered.
    for query in ("title=%ff%fe", "title=ok%e2%82", "title=x&%ff=1"):
        response = client.get(f"/og/minimal.png?{query}")
        assert response.status_code == 400, query
        assert response.headers["cache-control"] == "no-store"
        name = "\ufffd" if "%ff=" in query else "title"
        assert response.json() == {
            "error": f"parameter {name!r}: not valid UTF-8 once percent-decoded",
            "detail": {"parameter": name},
        }
    assert renders(client) == before
    # An encoded U+FFFD is valid UTF-8: a title like any other.
    assert client.get("/og/minimal.png?title=%EF%BF%BD").status_code == 200
    # Bidi controls and a BOM are valid text: rendered.
    response = client.get("/og/minimal.png?title=" + quote("\u202e\ufeff"))
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    # A "%" not followed by two hex digits is a literal "%" (as the URL standard reads it): the
    # very image of a properly encoded "%25".
    lone = client.get("/og/minimal.png?title=%")
    encoded = client.get("/og/minimal.png?title=%25")
    assert lone.status_code == encoded.status_code == 200
    assert lone.headers["etag"] == encoded.headers["etag"]
    assert encoded.headers["x-ogshot-cache"] == "hit"
    # A NUL is ignored by the HTML parser, as in any page: the same picture as without it.
    nul = client.get("/og/minimal.png?title=a%00b")
    plain = client.get("/og/minimal.png?title=ab")
    assert nul.status_code == plain.status_code == 200
    assert mean_difference(nul.content, plain.content) == 0


# -- settings that cannot be configured away --------------------------------------------------


def test_isolation_flags_are_always_on_the_command_line(tmp_path: Path) -> None:
    config = tmp_path / "playwright.config.json"
    config.write_text(json.dumps({"launch_args": ["--no-sandbox"]}))
    settings = Settings.load(environ={}, config_file=config)
    assert settings.launch_args[0] == "--no-sandbox"
    for arg in ISOLATION_ARGS:
        assert settings.launch_args.count(arg) == 1
    again = settings.replace(pool_size=1)  # replace() keeps them, once
    assert again.launch_args == settings.launch_args


@pytest.mark.parametrize(
    "arg",
    [
        "--proxy-server=http://corp-proxy:3128",
        "--no-proxy-server",
        "--host-resolver-rules=MAP * 127.0.0.1",
        "--disable-web-security",
        "--allow-file-access-from-files",
        "--proxy-bypass-list=*",
    ],
)
def test_switches_that_undo_isolation_are_refused(arg: str) -> None:
    with pytest.raises(ConfigError, match="launch_args"):
        Settings.load(environ={}, config_file=None, launch_args=("--no-sandbox", arg))


def test_remote_image_settings_from_env() -> None:
    env = {
        "OGSHOT_REMOTE_IMAGES": "avatars.example.com, *.cdn.example.org",
        "OGSHOT_REMOTE_IMAGES_MAX_SIZE": "2MB",
        "OGSHOT_REMOTE_IMAGES_TIMEOUT": "3.5",
        "OGSHOT_REMOTE_IMAGES_TTL": "60",
    }
    settings = Settings.load(environ=env, config_file=None)
    assert settings.remote_images == ("avatars.example.com", "*.cdn.example.org")
    assert settings.remote_images_max_size == 2_000_000
    assert settings.remote_images_timeout == 3.5
    assert settings.remote_images_ttl == 60
    for bad in ("*", "http://example.com", "example.com:8080", "*.*.com", "a b"):
        with pytest.raises(ConfigError, match="remote_images"):
            Settings.load(environ={"OGSHOT_REMOTE_IMAGES": bad}, config_file=None)
