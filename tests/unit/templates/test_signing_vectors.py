"""clients/signing-vectors.json: ogshot's signer makes exactly these, and the server verifies them.

Every client of the scheme (clients/js, docs/reference/signing.md) is tested against the same file:
here, that it is still what ogshot's own implementation makes, and that a real request through the
app answers each vector's URL with the image (200) and with 403 once one byte of it changes."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from ogshot.app import create_app
from ogshot.core.errors import ConfigError
from ogshot.core.formats import normalize_format
from ogshot.core.settings import Settings
from ogshot.templates.signing import canonical, sign, verify
from tests.support.helpers import ROOT, image_of, make_settings

VECTORS_FILE = ROOT / "clients" / "signing-vectors.json"
DOCUMENT: dict[str, Any] = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))
VECTORS: list[dict[str, Any]] = DOCUMENT["vectors"]
SECRETS: list[str] = DOCUMENT["secrets"]
MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "jpeg": b"\xff\xd8\xff", "webp": b"RIFF"}


def make_vectors() -> Any:
    spec = importlib.util.spec_from_file_location(
        "make_vectors", ROOT / "clients" / "make_vectors.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def signed_params(vector: dict[str, Any]) -> dict[str, Any]:
    params = dict(vector["params"])
    if vector["version"]:
        params["v"] = vector["version"]
    return params


def tampered(url: str) -> str:
    """``url`` with one byte changed: the last letter or digit before the signature that is not
    part of a %XX escape (a value's, the version's or the format's), so the URL still parses and
    only its signature is wrong. clients/js/test does the same."""
    head, _, sig = url.rpartition("&s=")
    for i in range(len(head) - 1, -1, -1):
        if head[i].isalnum() and "%" not in head[max(0, i - 2) : i]:
            swapped = "b" if head[i] == "a" else "a"
            return f"{head[:i]}{swapped}{head[i + 1 :]}&s={sig}"
    raise AssertionError(f"nothing to change in {url}")


@pytest.fixture(scope="module")
def client(module_dir: Path) -> Iterator[TestClient]:
    settings = make_settings(module_dir, pool_size=1, secrets=tuple(SECRETS))
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_the_file_is_what_ogshot_makes() -> None:
    # Regenerate with clients/make_vectors.py after a change to the scheme, never by hand.
    module = make_vectors()
    assert VECTORS_FILE.read_text(encoding="utf-8") == module.render(module.vectors())


def test_the_vectors_cover_the_awkward_cases() -> None:
    texts = [str(v) for vector in VECTORS for v in vector["params"].values()]
    joined = "".join(texts)
    for awkward in ("'", "!", "*", "(", ")", "+", "&", "=", "#", "%", "🚀", "日本語", "~"):
        assert awkward in joined, awkward
    assert any(t != t.strip() for t in texts)  # leading/trailing spaces
    assert "" in texts
    assert {v["format"] for v in VECTORS} >= {"png", "jpg", "jpeg", "webp"}
    assert {v["form"] for v in VECTORS} == {"path", "query"}
    assert any(v["version"] for v in VECTORS) and any(not v["version"] for v in VECTORS)
    assert {v["secret"] for v in VECTORS} == set(SECRETS)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_ogshot_signs_each_vector(vector: dict[str, Any]) -> None:
    params = signed_params(vector)
    message = canonical(vector["template"], params, vector["format"])
    assert message == vector["string_to_sign"].encode("utf-8")
    assert (
        sign(vector["secret"], vector["template"], params, vector["format"]) == vector["signature"]
    )
    assert verify(SECRETS, vector["template"], params, vector["format"], vector["signature"])
    assert vector["url"].endswith(f"&s={vector['signature']}")


def test_jpg_and_jpeg_sign_alike() -> None:
    by_format = {v["format"]: v for v in VECTORS if v["params"] == {"title": "Same picture"}}
    assert by_format["jpg"]["signature"] == by_format["jpeg"]["signature"]
    assert by_format["jpg"]["url"] != by_format["jpeg"]["url"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_the_server_verifies_each_vector(client: TestClient, vector: dict[str, Any]) -> None:
    response = client.get(vector["url"])
    assert response.status_code == 200, response.text
    fmt = normalize_format(vector["format"])
    assert fmt is not None
    assert response.content.startswith(MAGIC[fmt])
    assert image_of(response.content).width == 1200

    wrong = client.get(tampered(vector["url"]))
    assert wrong.status_code == 403, wrong.text
    assert wrong.json()["detail"] == {"parameter": "s"}
    assert "signature" in wrong.json()["error"]


def test_an_empty_format_is_png(client: TestClient) -> None:
    # The URL sign_url writes for format "" is .png; the signature must say png too, and so
    # must /og?format= (empty), which the server takes as missing.
    assert canonical("minimal", {}, "") == canonical("minimal", {}, "png")
    sig = sign(SECRETS[0], "minimal", {"title": "Empty format"}, "")
    data = quote(json.dumps({"title": "Empty format"}), safe="")
    response = client.get(f"/og?template=minimal&data={data}&format=&s={sig}")
    assert response.status_code == 200, response.text
    assert response.content.startswith(MAGIC["png"])


def test_an_empty_secret_is_refused() -> None:
    # HMAC with an empty key is one anybody can compute: refused at start, naming the variable.
    with pytest.raises(ConfigError, match="OGSHOT_SECRET") as caught:
        Settings.load(environ={"OGSHOT_SECRET": '["first", ""]'}, config_file=None)
    assert "anyone sign" in str(caught.value)
    assert Settings.load(
        environ={"OGSHOT_SECRET": " first , ,second "}, config_file=None
    ).secrets == (
        "first",
        "second",
    )
