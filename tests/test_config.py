from __future__ import annotations

import json
from pathlib import Path

import pytest

from ogshot.config import Settings, parse_size
from ogshot.errors import ConfigError


def test_defaults_match_the_documented_ones(tmp_path: Path) -> None:
    settings = Settings.load(environ={}, config_file=None, cache_dir=tmp_path)
    assert settings.host == "127.0.0.1" and settings.port == 8000
    assert settings.cache_size == 1 << 30
    assert settings.cache_ttl == 604800
    assert settings.effective_cache_control == "public, max-age=604800, immutable"
    assert (settings.width, settings.height, settings.device_scale_factor) == (1200, 630, 1.0)
    assert settings.pool_size >= 1


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    config = tmp_path / "pw.json"
    config.write_text(json.dumps({"pool_size": 3, "render_timeout": 4}))
    env = {
        "OGSHOT_POOL_SIZE": "5",
        "OGSHOT_CACHE_SIZE": "500MB",
        "OGSHOT_CACHE_TTL": "60",
        "OGSHOT_PORT": "9001",
        "OGSHOT_SECRET": "a, b",
    }
    settings = Settings.load(environ=env, config_file=config)
    assert settings.pool_size == 5  # env wins over the file
    assert settings.render_timeout == 4  # file wins over the default
    assert settings.cache_size == 500_000_000
    assert settings.cache_ttl == 60 and settings.port == 9001
    assert settings.secrets == ("a", "b")


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("OGSHOT_PORT", "eighty"),
        ("OGSHOT_PORT", "70000"),
        ("OGSHOT_POOL_SIZE", "0"),
        ("OGSHOT_CACHE_SIZE", "lots"),
        ("OGSHOT_CACHE_TTL", "-1"),
        ("OGSHOT_RENDER_TIMEOUT", "soon"),
        ("OGSHOT_DEV", "maybe"),
    ],
)
def test_a_bad_value_names_the_key_and_the_value(var: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.load(environ={var: value}, config_file=None)
    message = str(info.value)
    assert value in message
    key_part = var.removeprefix("OGSHOT_").lower()
    assert var in message or key_part in message


def test_bad_config_file_is_named(tmp_path: Path) -> None:
    config = tmp_path / "playwright.config.json"
    config.write_text(json.dumps({"viewport": {"width": "wide"}}))
    with pytest.raises(ConfigError, match="viewport"):
        Settings.load(environ={}, config_file=config)
    config.write_text(json.dumps({"pool_sise": 2}))
    with pytest.raises(ConfigError, match="pool_sise"):
        Settings.load(environ={}, config_file=config)
    config.write_text("{not json")
    with pytest.raises(ConfigError, match="JSON"):
        Settings.load(environ={}, config_file=config)


def test_shipped_config_file_loads() -> None:
    root = Path(__file__).resolve().parent.parent
    settings = Settings.load(environ={}, config_file=root / "playwright.config.json")
    assert "--no-sandbox" in settings.launch_args
    assert "--disable-background-networking" in settings.launch_args


@pytest.mark.parametrize(
    ("text", "size"),
    [("1048576", 1048576), ("500MB", 500 * 10**6), ("1GB", 10**9), ("1GiB", 1 << 30), ("2k", 2000)],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size
