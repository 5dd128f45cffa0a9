"""A near miss names what was meant: an unknown parameter or template answers 400/404 with the
closest declared name, in the message and in ``detail.suggestion`` (through the real app)."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/og/article.png", {"titel": "Hello"}),
        ("/og", {"template": "article", "data": json.dumps({"titel": "Hello"})}),
    ],
)
def test_an_unknown_parameter_names_the_declared_one_it_is_near(
    client: TestClient, path: str, params: dict[str, str]
) -> None:
    response = client.get(path, params=params)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["error"].startswith("parameter 'titel': unknown parameter")
    assert body["error"].endswith("; did you mean 'title'?")
    assert body["detail"] == {"parameter": "titel", "suggestion": "title"}


def test_an_unknown_template_names_the_template_it_is_near(client: TestClient) -> None:
    for path in ("/og/artcle.png?title=Hi", "/og?template=artcle&data=%7B%7D"):
        response = client.get(path)
        assert response.status_code == 404, path
        body = response.json()
        assert body["error"] == "no template named 'artcle'; did you mean 'article'?"
        assert body["detail"]["suggestion"] == "article"
        assert "article" in body["detail"]["available"]


def test_a_misspelt_query_parameter_of_the_json_form_names_the_right_one(
    client: TestClient,
) -> None:
    response = client.get("/og", params={"template": "article", "fromat": "png"})
    assert response.status_code == 400
    body = response.json()
    assert body["error"].endswith("did you mean 'format'?")
    assert body["detail"] == {"parameter": "fromat", "suggestion": "format"}


def test_nothing_close_means_no_suggestion(client: TestClient) -> None:
    unknown = client.get("/og/article.png", params={"title": "x", "zzzzzz": "1"})
    assert unknown.status_code == 400
    assert unknown.json()["detail"] == {"parameter": "zzzzzz"}
    assert "did you mean" not in unknown.json()["error"]
    missing = client.get("/og/zzzzzz.png")
    assert missing.status_code == 404
    assert "suggestion" not in missing.json()["detail"]
    assert missing.json()["error"] == "no template named 'zzzzzz'"
