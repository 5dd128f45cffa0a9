"""Origins as OGSHOT_SHOT_ORIGINS lists them: parsed exactly, a bad one stops the start."""

from __future__ import annotations

import pytest

from ogshot.core.errors import ConfigError
from ogshot.core.origins import Origin, origin_of, parse_origin
from ogshot.core.settings import Settings


@pytest.mark.parametrize(
    ("text", "origin"),
    [
        ("https://example.com", Origin("https", "example.com", 443)),
        ("https://Example.COM/", Origin("https", "example.com", 443)),
        ("http://127.0.0.2:8080", Origin("http", "127.0.0.2", 8080)),
        ("http://[::1]:81", Origin("http", "::1", 81)),
        ("http://localhost", Origin("http", "localhost", 80)),
    ],
)
def test_an_origin_is_parsed_with_its_port(text: str, origin: Origin) -> None:
    assert parse_origin(text) == origin


@pytest.mark.parametrize(
    "text",
    [
        "example.com",
        "https://example.com/path",
        "https://example.com?q=1",
        "ftp://example.com",
        "file:///etc",
        "https://user:pw@example.com",
        "https://example.com:99999",
        "",
    ],
)
def test_what_is_not_an_origin(text: str) -> None:
    assert parse_origin(text) is None


def test_the_origin_of_a_url() -> None:
    assert origin_of("https://example.com:443/a?b#c") == Origin("https", "example.com", 443)
    assert origin_of("HTTPS://example.com./") == Origin("https", "example.com", 443)
    assert origin_of("https://example.com:444/") != origin_of("https://example.com/")
    assert str(Origin("http", "::1", 8080)) == "http://[::1]:8080"
    assert str(Origin("https", "example.com", 443)) == "https://example.com"
    for url in ("data:text/html,x", "javascript:alert(1)", "file:///etc/passwd", "blob:x"):
        assert origin_of(url) is None


def test_a_bad_origin_stops_the_start_naming_the_variable() -> None:
    environ = {"OGSHOT_SHOT_ORIGINS": "https://example.com,https://example.com/blog"}
    with pytest.raises(ConfigError) as caught:
        Settings.load(environ=environ, config_file=None)
    assert "OGSHOT_SHOT_ORIGINS" in str(caught.value)
    assert "https://example.com/blog" in str(caught.value)


def test_shot_settings_from_the_environment() -> None:
    environ = {
        "OGSHOT_SHOT_ORIGINS": "https://example.com, http://127.0.0.2:8080",
        "OGSHOT_SHOT_TTL": "60",
        "OGSHOT_SHOT_TIMEOUT": "5",
    }
    settings = Settings.load(environ=environ, config_file=None)
    assert settings.shot_origins == ("https://example.com", "http://127.0.0.2:8080")
    assert (settings.shot_ttl, settings.shot_timeout) == (60, 5.0)
    with pytest.raises(ConfigError, match="OGSHOT_SHOT_TIMEOUT"):
        Settings.load(environ={"OGSHOT_SHOT_TIMEOUT": "0"}, config_file=None)
