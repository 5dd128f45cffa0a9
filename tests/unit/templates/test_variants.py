"""A/B variants: the declaration, the stable choice, the cache key, the header, the metrics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from ogshot.app import create_app
from ogshot.core.errors import InvalidParameter, TemplateError
from ogshot.pipeline.renderer import Renderer
from ogshot.templates.declarations import read_declaration
from ogshot.templates.variants import Variants, point_of
from tests.support.helpers import make_settings, pixel
from tests.unit.ops.test_metrics import USER_AGENTS, samples, value

# Two colourings of one card; the template branches on ``variant``.
AB_TEMPLATE = """{#ogshot
description = "A/B test card"

[params.slug]
type = "str"
required = true
example = "hello-world"

[params.title]
type = "str"
default = "Hello"

[variants]
by = "slug"

[variants.light]
weight = 50

[variants.dark]
weight = 50
description = "Dark background"
#}
<!doctype html>
<html><head><style>
html, body { margin: 0; width: 1200px; height: 630px; }
body { background: {% if variant == "dark" %}#000000{% else %}#ffffff{% endif %}; }
</style></head><body><h1>{{ title }}</h1></body></html>
"""

BLACK, WHITE = [0.0, 0.0, 0.0], [255.0, 255.0, 255.0]


def declaration(body: str) -> str:
    return "{#ogshot\n" + body + "#}\n<p>{{ slug }}</p>\n"


PARAMS = '[params.slug]\ntype = "str"\n\n'


# -- the choice ------------------------------------------------------------------------------


def ab(weights: tuple[float, ...], names: tuple[str, ...] = ("a", "b", "c")) -> Variants:
    return Variants(by="slug", names=names[: len(weights)], weights=weights)


def test_the_choice_is_a_function_of_the_template_and_the_value() -> None:
    variants = ab((50, 50))
    for slug in ("intro", "a-post", "ünïcode", ""):
        first = variants.choose("card", {"slug": slug, "title": "one"})
        # Other parameters do not matter; a fresh object with the same declaration agrees.
        assert ab((50, 50)).choose("card", {"slug": slug, "title": "two"}) == first
    slugs = [f"post-{i}" for i in range(200)]
    one = [variants.choose("card", {"slug": s}) for s in slugs]
    other = [variants.choose("other-card", {"slug": s}) for s in slugs]
    assert one != other  # each template's experiment is drawn independently
    assert 0.0 <= point_of("card", "x") < 1.0


def test_weights_give_the_shares_over_many_pages() -> None:
    slugs = [f"/blog/{i}" for i in range(20_000)]
    variants = ab((70, 20, 10))
    counts = {"a": 0, "b": 0, "c": 0}
    for slug in slugs:
        counts[variants.choose("card", {"slug": slug})] += 1
    # Binomial standard deviation at n=20000 is at most 0.36 %; 1.5 % is over 4 of them.
    for name, share in (("a", 0.7), ("b", 0.2), ("c", 0.1)):
        assert abs(counts[name] / len(slugs) - share) < 0.015, counts
    never = ab((1, 0, 1))
    assert all(never.choose("card", {"slug": s}) != "b" for s in slugs[:2000])


def test_changing_weights_moves_only_the_pages_in_between() -> None:
    slugs = [f"page-{i}" for i in range(10_000)]
    before = ab((50, 50))
    after = ab((60, 40))
    moved = [s for s in slugs if before.choose("t", {"slug": s}) != after.choose("t", {"slug": s})]
    assert all(before.choose("t", {"slug": s}) == "b" for s in moved)  # only b -> a
    assert abs(len(moved) / len(slugs) - 0.10) < 0.015


# -- the declaration -------------------------------------------------------------------------


def test_the_declaration_is_read() -> None:
    found = read_declaration("ab", AB_TEMPLATE).variants
    assert found == Variants(by="slug", names=("light", "dark"), weights=(50.0, 50.0))
    assert found.describe()["variants"][1] == {"name": "dark", "weight": 50.0, "share": 0.5}


BY = '[variants]\nby = "slug"\n'
A1 = "[variants.a]\nweight = 1\n"
B1 = "[variants.b]\nweight = 1\n"


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        (PARAMS + '[variants]\nby = "slg"\n' + A1 + B1, 6, "'slg' is not a declared parameter"),
        (PARAMS + '[variants]\nby = "slg"\n' + A1 + B1, 6, "(did you mean 'slug'?)"),
        (PARAMS + "[variants]\n" + A1 + B1, 5, "by is required"),
        (PARAMS + BY + A1 + "[variants.b]\nweight = -2\n", 10, "weight must be a number >= 0"),
        (PARAMS + BY + A1 + "[variants.b]\nwieght = 1\n", 10, "(did you mean 'weight'?)"),
        (PARAMS + BY + A1, 5, "at least two"),
        (PARAMS + BY + "[variants.a]\nweight = 0\n[variants.b]\nweight = 0\n", 5, "above 0"),
        (PARAMS + BY + "[variants.Dark]\nweight = 1\n" + B1, 7, "not a valid variant name"),
        (PARAMS + BY + "[variants.a]\n" + B1, 7, "variants.a: weight is required"),
        (
            PARAMS + '[params.variant]\ntype = "str"\n\n' + BY + A1 + B1,
            5,
            "the name 'variant' is given to the template",
        ),
        ("variants = 3\n" + PARAMS, 2, "variants must be a table"),
    ],
)
def test_declaration_mistakes_name_their_line(body: str, line: int, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        read_declaration("card", declaration(body))
    assert caught.value.line == line, caught.value.message
    assert message in caught.value.message
    assert caught.value.message.startswith(f"card.html line {line}: ")


# -- through the app -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = make_settings(tmp_path_factory.mktemp("variants"), dev=True)
    (Path(settings.templates_dir) / "abtest.html").write_text(AB_TEMPLATE)
    with TestClient(create_app(settings)) as client:
        yield client


def renderer_of(client: TestClient) -> Renderer:
    renderer: Renderer = client.app.state.renderer  # type: ignore[attr-defined]
    return renderer


def slugs_for(client: TestClient) -> dict[str, str]:
    """A slug that draws each variant (computed by the declaration's own choice)."""
    variants = renderer_of(client).catalog.get("abtest").variants
    assert variants is not None
    found: dict[str, str] = {}
    for i in range(100):
        found.setdefault(variants.choose("abtest", {"slug": f"post-{i}"}), f"post-{i}")
    assert set(found) == {"light", "dark"}
    return found


def test_the_page_gets_its_variant_in_pixels_and_headers(app_client: TestClient) -> None:
    for variant, slug in slugs_for(app_client).items():
        first = app_client.get(f"/og/abtest.png?slug={slug}")
        assert first.status_code == 200, first.text
        assert first.headers["x-ogshot-variant"] == variant
        assert f'variant;desc="{variant}"' in first.headers["server-timing"]
        assert pixel(first.content, 5, 600) == (BLACK if variant == "dark" else WHITE)
        again = app_client.get(f"/og/abtest.png?slug={slug}&title=Hello")
        assert again.headers["x-ogshot-cache"] == "hit"  # same page, same image, same key
        assert again.headers["x-ogshot-variant"] == variant
        assert again.content == first.content
    plain = app_client.get("/og/minimal.png?title=No+variants")
    assert plain.status_code == 200
    assert "x-ogshot-variant" not in plain.headers
    assert "variant" not in plain.headers["server-timing"]


def test_og_cannot_force_a_variant(app_client: TestClient) -> None:
    response = app_client.get("/og/abtest.png?slug=x&variant=dark")
    assert response.status_code == 400
    query = app_client.get('/og?template=abtest&data={"slug":"x","variant":"dark"}')
    assert query.status_code == 400


def test_the_variant_is_in_the_cache_key(app_client: TestClient) -> None:
    renderer = renderer_of(app_client)
    slug = slugs_for(app_client)["light"]
    own = renderer.prepare("abtest", {"slug": slug})
    light = renderer.prepare("abtest", {"slug": slug}, variant="light")
    dark = renderer.prepare("abtest", {"slug": slug}, variant="dark")
    assert own.variant == "light" and dark.variant == "dark"
    assert own.key == light.key  # forcing the page's own variant is the same image
    assert dark.key != light.key
    with pytest.raises(InvalidParameter, match="unknown variant 'blue'"):
        renderer.prepare("abtest", {"slug": slug}, variant="blue")
    with pytest.raises(InvalidParameter, match="declares no variants"):
        renderer.prepare("minimal", {"title": "x"}, variant="light")


def test_the_studio_renders_every_variant(app_client: TestClient) -> None:
    slug = slugs_for(app_client)["light"]
    described = app_client.get("/preview/_api/templates/abtest").json()
    assert [v["name"] for v in described["variants"]["variants"]] == ["light", "dark"]
    assert described["variants"]["by"] == "slug"
    bodies = {}
    for variant in ("light", "dark"):
        response = app_client.get(f"/preview/_render/abtest.png?slug={slug}&variant={variant}")
        assert response.status_code == 200, response.text
        assert response.headers["x-ogshot-variant"] == variant
        assert "variant" not in response.headers["x-ogshot-url"]  # the /og URL draws by itself
        bodies[variant] = response.content
    assert pixel(bodies["dark"], 5, 600) == BLACK and pixel(bodies["light"], 5, 600) == WHITE
    unknown = app_client.get(f"/preview/_render/abtest.png?slug={slug}&variant=blue")
    assert unknown.status_code == 400 and "unknown variant" in unknown.json()["error"]


def test_fetches_are_counted_by_template_platform_and_variant(app_client: TestClient) -> None:
    before = samples(app_client.get("/metrics").text)
    sent = {("light", "twitter"): 3, ("dark", "twitter"): 1, ("dark", "slack"): 2}
    slugs = slugs_for(app_client)
    for (variant, platform), times in sent.items():
        for _ in range(times):
            response = app_client.get(
                f"/og/abtest.png?slug={slugs[variant]}",
                headers={"user-agent": USER_AGENTS[platform]},
            )
            assert response.status_code == 200
    after = samples(app_client.get("/metrics").text)
    for (variant, platform), times in sent.items():
        labels = {"template": "abtest", "platform": platform, "variant": variant}
        grown = value(after, "ogshot_fetches_total", **labels) - value(
            before, "ogshot_fetches_total", **labels
        )
        assert grown == times, labels
