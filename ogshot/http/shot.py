"""``GET|HEAD /shot.{png|jpg|jpeg|webp}?url=...[&selector=&wait=&hide=&scheme=&max_kb=][&s=]``:
a screenshot of a page of an origin in ``OGSHOT_SHOT_ORIGINS`` (404 while it is empty).

Signed like /og: the signature covers the name ``/shot`` (which no template can have, so an /og
signature never fits a /shot URL), every parameter and the format. Errors are JSON, never an
image: a crawler is not the audience of a page screenshot, its operator is."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ogshot.http.og import renderer_of
from ogshot.http.query import query_params
from ogshot.http.responses import image_response
from ogshot.templates import signing

__all__ = ["shot_image"]


async def shot_image(request: Request) -> Response:
    renderer = renderer_of(request)
    settings, shots = renderer.settings, renderer.shots
    if not shots.enabled:
        raise HTTPException(404)
    query = query_params(request, settings)
    signature = query.pop(signing.SIGNATURE_PARAM, None)
    fmt = request.path_params["ext"]
    signing.check(settings, signing.SHOT, query, fmt, signature)
    image = await shots.image(query, fmt)
    return image_response(request, image, shots.response_settings, None)
