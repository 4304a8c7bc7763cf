"""The Segment HTTP Tracking API: POST /v1/batch, /v1/track, /v1/identify, /v1/page, /v1/screen,
/v1/group and /v1/alias.

Authentication is Segment's: the write key (`cx360 keys create --role writer --source NAME`) as
the HTTP Basic user with an empty password, as segment-analytics-python and rudder-sdk-python
send it (`Authorization: Bearer KEY` works too). Errors answer in Segment's shape (`code`,
`message`), which those SDKs read, next to cx360's envelope; they retry only 429 and 5xx, so a
request refused for backpressure gets 503 and Retry-After, and a batch with some bad messages
gets 200 with a receipt per message.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBasic

from cx360.api.access import Principal
from cx360.api.schemas import CollectorAnswer, CollectorError
from cx360.errors import AuthError, Cx360Error, ForbiddenError
from cx360.stream.collector import BackpressureError
from cx360.stream.messages import CALLS, MAX_BATCH_BYTES, TooLargeError


class _WriteKey(HTTPBasic):
    """Declares the write key (HTTP Basic user, empty password) in the OpenAPI schema; `writer` reads
    and checks it, so that every refusal answers in the collector's shape."""

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        return None


write_key = _WriteKey(
    scheme_name="WriteKey",
    auto_error=False,
    description="a write key from `cx360 keys create --role writer`, no password",
)
router = APIRouter(prefix="/v1", tags=["collector"])
MAX_BODY = MAX_BATCH_BYTES + (4 << 10)  # what may arrive on the wire: gzip adds a few bytes to the incompressible
_MESSAGE = {"type": "object", "additionalProperties": True, "description": "a Segment-spec call"}


def _body_schema(schema: dict) -> dict:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}},
            "description": "may be gzip-compressed (Content-Encoding: gzip); each message at most 32 KB, "
            "the request at most 500 KB",
        }
    }


_BATCH = {
    "type": "object",
    "required": ["batch"],
    "properties": {"batch": {"type": "array", "items": _MESSAGE}, "sentAt": {"type": "string"}},
}
_RESPONSES = {
    400: {"model": CollectorError, "description": "malformed JSON or gzip, or not a batch: nothing was accepted"},
    401: {"model": CollectorError, "description": "no write key, or an unknown or revoked one"},
    403: {"model": CollectorError, "description": "the key is not a writer key"},
    413: {"model": CollectorError, "description": "the request is larger than 500 KB"},
    503: {
        "model": CollectorError,
        "description": "backpressure (disk nearly full, or the warehouse far behind): retry after Retry-After",
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
    },
}


def writer(request: Request) -> Principal:
    header = (request.headers.get("authorization") or "").strip()
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            key = base64.b64decode(value.strip(), validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            raise AuthError("malformed Basic credentials: send the write key as the user, no password") from None
    elif scheme.lower() == "bearer":
        key = value.strip()
    else:
        raise AuthError("missing write key: send it as the HTTP Basic user with an empty password")
    who = request.app.state.ctx.keys.authenticate(key)
    request.state.key_id = who.key_id  # for the access log
    if who.role != "writer" or who.source is None:
        raise ForbiddenError(
            f"key {who.key_id!r} has role {who.role!r}: only a writer key posts events "
            "(`cx360 keys create --role writer --source NAME`)"
        )
    return who


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY:
        raise TooLargeError(f"request larger than {MAX_BATCH_BYTES // 1024} KB ({int(declared) // 1024} KB)")
    parts, size = [], 0
    async for part in request.stream():
        size += len(part)
        if size > MAX_BODY:
            raise TooLargeError(f"request larger than {MAX_BATCH_BYTES // 1024} KB")
        parts.append(part)
    return b"".join(parts)


async def _collect(request: Request, call: str | None) -> JSONResponse:
    try:
        who = writer(request)
        body = await _body(request)
        collector = request.app.state.ctx.collector()
        answer = await anyio.to_thread.run_sync(
            lambda: collector.collect(
                body,
                request.headers.get("content-encoding"),
                source=who.source,
                key_id=who.key_id,
                call=call,
            )
        )
    except Cx360Error as exc:
        headers = {"WWW-Authenticate": 'Basic realm="cx360 collector"'} if exc.http_status == 401 else {}
        if isinstance(exc, BackpressureError):
            headers["Retry-After"] = str(math.ceil(exc.retry_after))
        kind = type(exc).__name__
        body = {"code": kind, "message": str(exc), "error": {"type": kind, "message": str(exc)}}
        return JSONResponse(body, status_code=exc.http_status, headers=headers)
    return JSONResponse(answer.body())


def _endpoint(call: str | None):
    async def endpoint(request: Request, _: Annotated[None, Depends(write_key)] = None) -> JSONResponse:
        return await _collect(request, call)

    endpoint.__name__ = f"collect_{call or 'batch'}"
    return endpoint


router.add_api_route(
    "/batch",
    _endpoint(None),
    methods=["POST"],
    summary="A batch of Segment-spec calls: a receipt per message",
    response_model=CollectorAnswer,
    responses=_RESPONSES,
    openapi_extra=_body_schema(_BATCH),
)
for _call in CALLS:
    router.add_api_route(
        f"/{_call}",
        _endpoint(_call),
        methods=["POST"],
        summary=f"One Segment `{_call}` call",
        response_model=CollectorAnswer,
        responses=_RESPONSES,
        openapi_extra=_body_schema(_MESSAGE),
    )
