"""Signed URLs: HMAC-SHA256 over (template, sorted params, format); 403 when missing or wrong."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

import ogshot
from ogshot.app import create_app
from ogshot.cli import cli
from ogshot.core.errors import (
    ConfigError,
    Forbidden,
    InvalidFormat,
    InvalidParameter,
    RequestTooLarge,
    TemplateNotFound,
)
from ogshot.core.settings import Settings
from ogshot.templates import signing
from ogshot.templates.catalog import Catalog
from ogshot.templates.signing import canonical, sign, signed_path, verify
from tests.support.helpers import ROOT, make_settings

NEW, OLD = "new-secret-2026", "old-secret-2025"


def settings_with(*secrets: str) -> Settings:
    return Settings.load(environ={}, config_file=None, secrets=secrets)


def current(template: str) -> str:
    """The shipped template's version, which sign_url adds as ``v`` (tests/test_freshness.py)."""
    return Catalog(ROOT / "html_templates", ROOT / "static").get(template).version


# -- the signature itself ----------------------------------------------------------------------


def test_signature_is_urlsafe_base64_of_hmac_sha256() -> None:
    sig = sign(NEW, "article", {"title": "Hi"}, "png")
    assert len(sig) == 43 and "=" not in sig  # 32 bytes, unpadded
    assert set(sig) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert verify([NEW], "article", {"title": "Hi"}, "png", sig)


def test_any_change_invalidates_it() -> None:
    params = {"title": "Hello", "tag": "News"}
    sig = sign(NEW, "article", params, "png")
    assert verify([NEW], "article", dict(reversed(params.items())), "png", sig)  # order: no
    for template, changed, fmt in (
        ("minimal", params, "png"),
        ("article", {**params, "title": "Hello!"}, "png"),
        ("article", {**params, "extra": "1"}, "png"),
        ("article", {"title": "Hello"}, "png"),
        ("article", {"title": "Hello", "Tag": "News"}, "png"),
        ("article", params, "webp"),
    ):
        assert not verify([NEW], template, changed, fmt, sig), (template, changed, fmt)
    assert not verify([OLD], "article", params, "png", sig)
    assert not verify([NEW], "article", params, "png", sig[:-1])
    assert not verify([NEW], "article", params, "png", sig + "A")
    assert not verify([NEW], "article", params, "png", "é" * 43)


def test_canonical_form_cannot_be_shifted_between_fields() -> None:
    # "a=1&b=2" in one value must not sign like two parameters.
    assert canonical("t", {"a": "1&b=2"}, "png") != canonical("t", {"a": "1", "b": "2"}, "png")
    assert canonical("t", {"a": "x\ny"}, "png") != canonical("t\ny", {"a": "x"}, "png")
    assert canonical("t", {}, "jpg") == canonical("t", {}, "JPEG")  # one format, two spellings


def test_rotation_first_secret_signs_every_secret_verifies() -> None:
    settings = settings_with(NEW, OLD)
    path = signed_path(settings, "article", {"title": "x"}, "png")
    assert dict(parse_qsl(urlsplit(path).query))["s"] == sign(NEW, "article", {"title": "x"}, "png")
    old_sig = sign(OLD, "article", {"title": "x"}, "png")
    assert verify(settings.secrets, "article", {"title": "x"}, "png", old_sig)


def test_a_verify_only_secret_verifies_but_never_signs() -> None:
    settings = Settings.load(environ={"OGSHOT_SECRET": OLD, "OGSHOT_VERIFY_SECRETS": NEW})
    assert settings.verify_secrets == (NEW,)
    path = signed_path(settings, "article", {"title": "x"}, "png")
    assert dict(parse_qsl(urlsplit(path).query))["s"] == sign(OLD, "article", {"title": "x"}, "png")
    url = ogshot.sign_url("article", {"title": "x"}, settings=settings)
    assert dict(parse_qsl(urlsplit(url).query))["s"] == sign(
        OLD, "article", {"title": "x", "v": current("article")}, "png"
    )
    for secret in (OLD, NEW):  # either is accepted
        signing.check(
            settings,
            "article",
            {"title": "x"},
            "png",
            sign(secret, "article", {"title": "x"}, "png"),
        )
    unknown = sign("some-other-secret", "article", {"title": "x"}, "png")
    with pytest.raises(Forbidden):
        signing.check(settings, "article", {"title": "x"}, "png", unknown)
    assert NEW not in repr(settings)  # never in a log line


def test_a_verify_only_secret_without_a_signing_secret_stops_the_start() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.load(environ={"OGSHOT_VERIFY_SECRETS": NEW})
    assert "OGSHOT_VERIFY_SECRETS" in info.value.message
    assert "OGSHOT_SECRET" in info.value.message
    assert NEW not in info.value.message  # a secret is not printed


def test_signed_path_and_sign_url() -> None:
    settings = settings_with(NEW)
    path = signed_path(settings, "article", {"title": "Hello world", "tag": "a&b"}, "jpg")
    assert path.startswith("/og/article.jpg?tag=a%26b&title=Hello%20world&s=")
    assert signed_path(settings_with(), "minimal", {}, "png") == "/og/minimal.png"
    url = ogshot.sign_url(
        "article", {"title": "x"}, "png", base="https://og.example.com/", settings=settings
    )
    versioned = {"title": "x", "v": current("article")}
    assert url == "https://og.example.com" + signed_path(settings, "article", versioned, "png")


def test_none_means_leave_it_out() -> None:
    settings = settings_with(NEW)
    url = ogshot.sign_url("minimal", {"title": "x", "background": None}, settings=settings)
    assert "null" not in url and "background" not in url
    versioned = {"title": "x", "v": current("minimal")}
    assert url == signed_path(settings, "minimal", versioned, "png")
    assert signed_path(settings, "minimal", {**versioned, "size": None}, "png") == url


def test_an_explicit_secret_signs_over_the_setting() -> None:
    settings = settings_with(OLD)
    url = ogshot.sign_url("article", {"title": "x"}, "webp", secret=NEW, settings=settings)
    versioned = {"title": "x", "v": current("article")}
    assert dict(parse_qsl(urlsplit(url).query))["s"] == sign(NEW, "article", versioned, "webp")
    unsigned = settings_with()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a secret given: nothing to warn about
        url = ogshot.sign_url("article", {"title": "x"}, secret=NEW, settings=unsigned)
    assert dict(parse_qsl(urlsplit(url).query))["s"] == sign(NEW, "article", versioned, "png")


def test_an_unsigned_url_warns_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signing, "_warned_unsigned", False)  # as in a fresh process
    with pytest.warns(UserWarning, match="not signed") as caught:
        first = ogshot.sign_url("minimal", {"title": "x"}, settings=settings_with())
        second = ogshot.sign_url("minimal", {"title": "y"}, settings=settings_with())
    assert len([w for w in caught if "not signed" in str(w.message)]) == 1
    v = current("minimal")
    assert first == f"/og/minimal.png?title=x&v={v}" and second == f"/og/minimal.png?title=y&v={v}"


@pytest.mark.parametrize(
    ("template", "params", "fmt", "error", "words"),
    [
        ("myblg", {"title": "x"}, "png", TemplateNotFound, "myblg"),
        ("article", {"title": "x"}, "bmp", InvalidFormat, "bmp"),
        ("minimal", {"title": "x", "size": "abc"}, "png", InvalidParameter, "size"),
        ("minimal", {"title": "x", "size": 9000}, "png", InvalidParameter, "size"),
        (
            "minimal",
            {"title": "x", "background": "notacolour"},
            "png",
            InvalidParameter,
            "background",
        ),
        ("minimal", {"title": " "}, "png", InvalidParameter, "title"),
        ("minimal", {}, "png", InvalidParameter, "title"),
        ("minimal", {"title": "x", "colour": "red"}, "png", InvalidParameter, "colour"),
        ("minimal", {"title": "x", "background": "y" * 9000}, "png", RequestTooLarge, "query"),
    ],
)
def test_validate_refuses_what_the_server_would(
    template: str, params: dict[str, object], fmt: str, error: type[Exception], words: str
) -> None:
    settings = settings_with(NEW)
    with pytest.raises(error, match=words):
        ogshot.sign_url(template, params, fmt, settings=settings, validate=True)
    # Without validate=True nothing is checked (the version is looked up): the URL is made as asked.
    assert ogshot.sign_url(template, params, fmt, settings=settings).startswith(f"/og/{template}.")


def test_validate_takes_what_the_server_takes(signed: TestClient) -> None:
    settings = settings_of(signed)
    for params in (
        {"title": "Validated", "size": 90, "background": "rgb(0 0 255)"},
        {"title": "Validated", "size": "90", "color": None},
    ):
        url = ogshot.sign_url("minimal", params, "jpg", settings=settings, validate=True)
        response = signed.get(url)
        assert response.status_code == 200, response.text
    # What validate refuses, the server refuses the same way.
    bad = ogshot.sign_url("minimal", {"title": "x", "background": "notacolour"}, settings=settings)
    answer = signed.get(bad)
    assert answer.status_code == 400 and answer.json()["detail"] == {"parameter": "background"}


def test_cli_url_prints_a_signed_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OGSHOT_SECRET", f"{NEW},{OLD}")
    runner = CliRunner()
    result = runner.invoke(
        cli, ["url", "article", "title=Hello world", "--format", "webp", "--base", "https://h"]
    )
    assert result.exit_code == 0, result.output
    versioned = {"title": "Hello world", "v": current("article")}
    expected = signed_path(settings_with(NEW), "article", versioned, "webp")
    assert result.stdout.strip() == "https://h" + expected
    monkeypatch.delenv("OGSHOT_SECRET")
    unsigned = runner.invoke(cli, ["url", "minimal", "title=x"])
    assert unsigned.exit_code == 0
    assert unsigned.stdout.strip() == f"/og/minimal.png?title=x&v={current('minimal')}"
    assert "not signed" in unsigned.stderr
    assert "UserWarning" not in unsigned.stderr  # said once, in the CLI's words


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["url", "myblg", "title=x"], ["no template named 'myblg'", "article, docs, event"]),
        (["url", "artcle", "title=x"], ["did you mean 'article'?"]),
        (["url", "article", "title=x", "--format", "bmp"], ["unknown format 'bmp'"]),
        (["url", "minimal", "title=x", "size=abc"], ["'size'", "expected int"]),
        (["url", "minimal", "title=x", "background=zzzzzz"], ["'background'", "CSS colour"]),
        (["url", "minimal", "title="], ["'title'", "must not be empty"]),
    ],
)
def test_cli_url_refuses_a_url_that_could_only_fail(args: list[str], words: list[str]) -> None:
    result = CliRunner().invoke(cli, args, env={"OGSHOT_SECRET": NEW})
    assert result.exit_code == 1
    assert result.stdout == ""  # no URL printed
    for word in words:
        assert word in result.stderr


# -- over HTTP ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signed(module_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(module_dir, secrets=(NEW, OLD)))) as client:
        yield client


def settings_of(client: TestClient) -> Settings:
    found: Settings = client.app.state.renderer.settings  # type: ignore[attr-defined]
    return found


def test_a_signed_url_renders(signed: TestClient) -> None:
    path = signed_path(settings_of(signed), "minimal", {"title": "Signed", "size": "60"}, "png")
    response = signed.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    head = signed.head(path)
    assert head.status_code == 200


def test_missing_or_wrong_signature_is_403_json(signed: TestClient) -> None:
    good = signed_path(settings_of(signed), "minimal", {"title": "Signed"}, "png")
    missing = signed.get("/og/minimal.png?title=Signed")
    assert missing.status_code == 403
    assert "'s' is missing" in missing.json()["error"]
    assert missing.json()["detail"] == {"parameter": "s"}
    for bad in (
        good.replace("title=Signed", "title=Signee"),  # a parameter changed
        good.replace("/og/minimal.png", "/og/minimal.webp"),  # the format changed
        good.replace("/og/minimal.png", "/og/article.png"),  # the template changed
        good.replace("?title", "?size=90&title"),  # a parameter added
        good[:-2],  # the signature cut short
        good + "&s=x",  # given twice
    ):
        response = signed.get(bad)
        assert response.status_code in (400, 403), bad
        assert response.headers["content-type"] == "application/json"
    wrong = signed.get(good.replace("title=Signed", "title=Signee"))
    assert wrong.status_code == 403 and "wrong URL signature" in wrong.json()["error"]


def test_the_signature_is_checked_before_anything_is_looked_up(signed: TestClient) -> None:
    # An unknown template answers 403, not 404: no one can list templates without a signature.
    assert signed.get("/og/no-such-template.png?x=1").status_code == 403
    assert signed.get("/og?template=no-such-template").status_code == 403


def test_old_secret_still_verifies(signed: TestClient) -> None:
    sig = sign(OLD, "minimal", {"title": "Old key"}, "png")
    response = signed.get(f"/og/minimal.png?title={quote('Old key')}&s={sig}")
    assert response.status_code == 200


def test_the_json_form_takes_the_same_signature(signed: TestClient) -> None:
    params = {"title": "Both forms", "size": "70"}
    sig = sign(NEW, "minimal", params, "jpeg")
    data = quote(json.dumps(params))
    response = signed.get(f"/og?template=minimal&data={data}&format=jpg&s={sig}")
    assert response.status_code == 200, response.text
    same = signed.get(f"/og/minimal.jpeg?title={quote('Both forms')}&size=70&s={sig}")
    assert same.status_code == 200
    assert same.headers["etag"] == response.headers["etag"]
    # A JSON number is signed as its text: {"size": 70} is the same request as size=70.
    numeric = quote(json.dumps({"title": "Both forms", "size": 70}))
    assert signed.get(f"/og?template=minimal&data={numeric}&format=jpg&s={sig}").status_code == 200
    tampered = quote(json.dumps({**params, "size": "71"}))
    assert signed.get(f"/og?template=minimal&data={tampered}&format=jpg&s={sig}").status_code == 403


def test_unsigned_server_ignores_s_and_warns_at_start(
    module_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ogshot")
    with TestClient(create_app(make_settings(module_dir / "unsigned"))) as client:
        response = client.get("/og/minimal.png?title=x&s=anything")
        assert response.status_code == 200
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("OGSHOT_SECRET is not set" in w and "anyone" in w for w in warnings), warnings


def test_signed_server_does_not_warn(caplog: pytest.LogCaptureFixture, module_dir: Path) -> None:
    caplog.set_level(logging.WARNING, logger="ogshot")
    app = create_app(make_settings(module_dir / "quiet", secrets=(NEW,), pool_size=1))
    with TestClient(app):
        pass
    assert not any("OGSHOT_SECRET" in r.getMessage() for r in caplog.records)
