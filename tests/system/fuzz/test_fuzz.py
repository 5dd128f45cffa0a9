"""schemathesis against /openapi.json of a real ``ogshot serve``: every documented operation, a
bounded number of generated requests each. Responses must match the description (status codes,
content types, headers, JSON bodies), and the only 5xx allowed are the documented ones: the
fallback image of a failed render (500/504, no-store) and 503 with Retry-After."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import (
    CheckContext,
    CheckFunction,
    not_a_server_error,
    positive_data_acceptance,
)
from schemathesis.core.result import Ok
from schemathesis.core.transport import Response
from schemathesis.generation import GenerationMode
from schemathesis.schemas import APIOperation, BaseSchema

from tests.support.helpers import make_settings
from tests.support.procs import Server, serve_env

EXAMPLES = 8  # per operation and mode, derandomized: enough to find a crash, cheap for every CI run


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaseSchema]:
    base: Path = tmp_path_factory.mktemp("fuzz")
    make_settings(base)
    with Server(env=serve_env(base, OGSHOT_POOL_SIZE="2"), cwd=base) as server:
        yield schemathesis.openapi.from_url(f"{server.base}/openapi.json")


@schemathesis.check
def only_documented_server_errors(ctx: CheckContext, response: Response, case: object) -> None:
    status = response.status_code
    if status < 500:
        return
    headers = {key: values[0] for key, values in response.headers.items() if values}
    fallback = (
        status in (500, 504)
        and headers.get("content-type") == "image/png"
        and headers.get("cache-control") == "no-store"
        and "x-ogshot-error" in headers
    )
    overloaded = status == 503 and "retry-after" in headers
    if not (fallback or overloaded):
        raise AssertionError(f"undocumented {status}: {response.content[:300]!r}")


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_matches_its_description(api: BaseSchema, mode: GenerationMode) -> None:
    """Positive: valid requests get what the description promises. Negative: invalid ones
    (wrong types, values out of range, missing required parameters) are turned away with 4xx."""
    operations = [result.ok() for result in api.get_all_operations() if isinstance(result, Ok)]
    assert {op.path for op in operations} >= {"/og/article.{format}", "/og", "/readyz"}
    for operation in operations:
        if mode == GenerationMode.NEGATIVE and not list(operation.iter_parameters()):
            continue  # nothing to get wrong
        excluded: list[CheckFunction] = [not_a_server_error]
        if operation.path == "/og":
            # The JSON `data` of the query form is any object: which keys a template needs cannot
            # be said in OpenAPI (it depends on `template`), so a schema-valid `data` may be a 400.
            excluded.append(positive_data_acceptance)
        fuzz(operation, mode, excluded)


def fuzz(
    operation: APIOperation[Any, Any, Any, Any], mode: GenerationMode, excluded: list[CheckFunction]
) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(
            excluded_checks=excluded,
            additional_checks=[only_documented_server_errors],
            timeout=60,
        )

    run()
