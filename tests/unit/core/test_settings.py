from __future__ import annotations

import dataclasses
import json
import re
import typing
from pathlib import Path
from typing import Any, Literal

import pytest

from ogshot.core import envvars
from ogshot.core.errors import ConfigError
from ogshot.core.settings import Bytes, Settings, env_vars, parse_size
from tests.support.helpers import ROOT


def test_defaults_match_the_documented_ones(tmp_path: Path) -> None:
    settings = Settings.load(environ={}, config_file=None, cache_dir=tmp_path)
    assert settings.host == "127.0.0.1" and settings.port == 8000
    assert settings.cache_size == 1 << 30
    assert settings.cache_ttl == 604800
    assert (settings.versioned_max_age, settings.max_age) == (31536000, 86400)
    assert (settings.stale_while_revalidate, settings.stale_if_error) == (604800, 604800)
    assert settings.cache_control == ""
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
    settings = Settings.load(environ={}, config_file=ROOT / "playwright.config.json")
    assert "--no-sandbox" in settings.launch_args
    assert "--disable-background-networking" in settings.launch_args


@pytest.mark.parametrize(
    ("text", "size"),
    [("1048576", 1048576), ("500MB", 500 * 10**6), ("1GB", 10**9), ("1GiB", 1 << 30), ("2k", 2000)],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


# -- one environment variable per field, derived from the dataclass -----------------------------


def test_every_field_has_exactly_one_environment_variable() -> None:
    names = {var.field: var.name for var in env_vars()}
    assert set(names) == {f.name for f in dataclasses.fields(Settings)}
    assert len(set(names.values())) == len(names)
    assert all(re.fullmatch(r"OGSHOT_[A-Z0-9_]+", name) for name in names.values())
    # The public names that are not OGSHOT_<FIELD> (CONVENTIONS.md).
    assert names["secrets"] == "OGSHOT_SECRET"
    assert names["executable_path"] == "OGSHOT_CHROMIUM"
    assert names["remote_images"] == "OGSHOT_REMOTE_IMAGES"


def test_fields_that_had_no_variable_now_do(tmp_path: Path) -> None:
    env = {
        "OGSHOT_WIDTH": "800",
        "OGSHOT_HEIGHT": "418",
        "OGSHOT_DEVICE_SCALE_FACTOR": "2",
        "OGSHOT_LAUNCH_ARGS": "--no-sandbox, --lang=fr",
        "OGSHOT_MAX_PARAMS": "4",
        "OGSHOT_MAX_PARAM_LENGTH": "20",
        "OGSHOT_MAX_QUERY_LENGTH": "1KiB",
    }
    with pytest.raises(ConfigError, match="OGSHOT_MAX_QUERY_LENGTH"):
        Settings.load(environ=env, config_file=None)  # a count, not a size: no units
    settings = Settings.load(environ={**env, "OGSHOT_MAX_QUERY_LENGTH": "1024"}, config_file=None)
    assert (settings.width, settings.height, settings.device_scale_factor) == (800, 418, 2.0)
    assert settings.launch_args[:2] == ("--no-sandbox", "--lang=fr")
    assert (settings.max_params, settings.max_param_length, settings.max_query_length) == (
        4,
        20,
        1024,
    )


def test_a_list_item_with_a_comma_is_written_as_json() -> None:
    args = '["--disable-features=Translate,MediaRouter", "--lang=fr"]'
    settings = Settings.load(environ={"OGSHOT_LAUNCH_ARGS": args}, config_file=None)
    assert settings.launch_args[:2] == ("--disable-features=Translate,MediaRouter", "--lang=fr")
    with pytest.raises(ConfigError, match="OGSHOT_LAUNCH_ARGS"):
        Settings.load(environ={"OGSHOT_LAUNCH_ARGS": "[1, 2]"}, config_file=None)


def test_empty_means_none_off_or_unset_by_type() -> None:
    settings = Settings.load(
        environ={"OGSHOT_CHROMIUM": "", "OGSHOT_SECRET": "", "OGSHOT_DEV": "", "OGSHOT_PORT": " "},
        config_file=None,
        dev=None,
    )
    assert settings.executable_path is None and settings.secrets == () and settings.dev is False
    assert settings.port == 8000  # an empty number is "not set"


def test_a_value_the_settings_refuse_names_the_variable_it_came_from() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.load(environ={"OGSHOT_WIDTH": "0"}, config_file=None)
    assert "OGSHOT_WIDTH='0'" in info.value.message and "width" in info.value.message
    with pytest.raises(ConfigError) as info:  # a keyword override is not blamed on the variable
        Settings.load(environ={"OGSHOT_WIDTH": "800"}, config_file=None, width=0)
    assert "OGSHOT_WIDTH" not in info.value.message


def test_types_the_derivation_knows_beyond_the_current_fields() -> None:
    choice = envvars.env_var("OGSHOT_LOG_FORMAT", "log_format", Literal["text", "json"])
    assert choice.parse("json") == "json"
    with pytest.raises(ValueError, match="text, json"):
        choice.parse("xml")
    maybe = envvars.env_var("OGSHOT_LIMIT", "limit", int | None)
    assert maybe.empty_ok and maybe.parse("") is None and maybe.parse("3") == 3
    assert maybe.format(None) == "" and maybe.format(3) == "3"
    level = envvars.env_var("OGSHOT_LEVEL", "level", typing.Optional[Literal["a", "b"]])  # noqa: UP045
    assert level.parse("") is None and level.parse("b") == "b"
    with pytest.raises(TypeError, match=r"Settings\.odd"):
        envvars.env_var("OGSHOT_ODD", "odd", dict[str, int])


# -- Settings -> environment -> Settings, as ``ogshot serve`` hands them to workers ------------


def _candidates(kind: Any, default: Any, where: Path) -> list[Any]:
    """Values of type ``kind`` other than ``default``, the trickiest first."""
    args = typing.get_args(kind)
    if type(None) in args:  # X | None
        inner = next(a for a in args if a is not type(None))
        return _candidates(inner, None, where)
    if kind == Bytes or kind is int:
        base = default or 0
        return [base + 1000, base + 1, base + 2, base - 1]
    if kind is float:
        base = default or 0.0
        return [base + 0.25, base / 2, base * 2]
    if kind is bool:
        return [not default]
    if kind is Path:
        return [where / "a dir, with spaces"]
    if kind is str:  # a free text first, then values a validating field may accept
        return [
            "x, y: z",
            "json",
            "text",
            "redis://127.0.0.1:6379/1",
            "https://hooks.example.org/x",
        ]
    if kind == tuple[str, ...]:
        return [
            ("--a=1,2", " padded ", "[not json"),
            ("a.example.com", "*.b.example.org"),
            ("https://a.example.com", "http://127.0.0.2:8080"),  # origins (shot_origins)
            ("http://127.0.0.1:8080/purge", "https://edge.example.org"),
        ]
    if typing.get_origin(kind) is Literal:
        return [a for a in args if a != default]
    return []


def _non_default_settings(where: Path) -> Settings:
    """Settings with every field away from its default (a value it accepts)."""
    defaults = Settings.load(environ={}, config_file=where / "empty.json")
    hints = typing.get_type_hints(Settings, include_extras=True)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        default = getattr(defaults, f.name)
        for value in _candidates(hints[f.name], default, where):
            if value == default:
                continue
            try:  # with the fields before it set: verify_secrets needs secrets
                defaults.replace(**{**values, f.name: value})
            except ConfigError:
                continue
            values[f.name] = value
            break
        else:
            pytest.fail(f"no accepted sample for Settings.{f.name}: add one to _candidates")
    return defaults.replace(**values)


def test_every_field_survives_the_trip_through_the_environment(tmp_path: Path) -> None:
    (tmp_path / "empty.json").write_text("{}")
    original = _non_default_settings(tmp_path)
    defaults = Settings.load(environ={}, config_file=tmp_path / "empty.json")
    env = original.to_env()
    assert set(env) == {var.name for var in env_vars()}
    assert all(isinstance(text, str) for text in env.values())
    loaded = Settings.load(environ=env, config_file=tmp_path / "empty.json")
    for f in dataclasses.fields(Settings):
        assert getattr(original, f.name) != getattr(defaults, f.name), f.name
        assert getattr(loaded, f.name) == getattr(original, f.name), (f.name, env)
    assert loaded == original
    # and back from the defaults too (empty lists, no Chromium path, off)
    assert Settings.load(environ=defaults.to_env(), config_file=tmp_path / "empty.json") == defaults


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OGSHOT_SECRET", '["s3cret-value", ""]'),
        ("OGSHOT_ALERT_WEBHOOK", "ftp://user:s3cret-value@example.com/hook"),
    ],
)
def test_a_bad_credential_is_named_without_its_value(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.load(environ={name: value}, config_file=ROOT / "playwright.config.json")
    assert "s3cret-value" not in str(caught.value)
    assert "not shown" in str(caught.value) and name in str(caught.value)
