"""The local submit API: an aiohttp application served on the unix socket, and optionally on a
TCP listener that requires a bearer token. Owns HTTP framing, auth, error bodies and listeners;
validation lives in schemas.py / wiraya.py (Wiraya's XML and forms in wiraya_formats.py) and
acceptance in SubmitService, never here.

No client bytes give a 500: what aiohttp's HTTP parser refuses (over-long request lines and
headers, bytes HTTP forbids) is answered with our JSON error by _RequestHandler; a credential
header that is not UTF-8 is a 400 naming it; every rule on a body names its field.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import json
import logging
import os
import re
import secrets
import socket
import stat
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

from aiohttp import hdrs, web
from aiohttp.http_exceptions import (
    BadHttpMethod,
    BadStatusLine,
    HttpProcessingError,
    InvalidHeader,
    InvalidURLError,
    LineTooLong,
)

from smppgw.api.queries import parse_list_query
from smppgw.api.schemas import MAX_CLIENT_ID_LENGTH, RequestError, parse_submit_body, shown
from smppgw.api.wiraya import enqueue_results, parse_enqueue_body
from smppgw.api.wiraya_formats import (
    FORM_TYPE,
    JSON_TYPES,
    XML_TYPES,
    answer_type,
    error_xml,
    read_form,
    read_xml,
    results_xml,
)
from smppgw.config import GatewayConfig
from smppgw.errors import SmppgwError
from smppgw.flow.retry import refusal_field
from smppgw.flow.submission import FieldError
from smppgw.metrics import Metrics
from smppgw.services.control import QueueControl, UnknownProviderError
from smppgw.services.events_json import event_json
from smppgw.services.submission import SubmitService
from smppgw.store import MessageView, SegmentView, Store, StoreError, StoreWriteError
from smppgw.store.encoding import iso, ms
from smppgw.store.search import encode_cursor

__all__ = [
    "EVENTS_MAX_LIMIT",
    "EVENTS_MAX_WAIT",
    "ApiServer",
    "ApiStartError",
    "StatusProvider",
    "create_app",
    "message_json",
    "start_api",
]

log = logging.getLogger(__name__)

StatusProvider = Callable[[], Awaitable[dict[str, object]]]

EVENTS_MAX_WAIT: Final = 60.0
EVENTS_MAX_LIMIT: Final = 1000
EVENTS_DEFAULT_LIMIT: Final = 1000
# Requests still running when the API closes get this long to finish; long-polls are woken at
# once by the shutdown, so only submits waiting for their commit can take it.
SHUTDOWN_TIMEOUT: Final = 10.0
# Probing an existing socket file: a live daemon accepts at once, a stale file refuses at once.
_PROBE_TIMEOUT: Final = 2.0
# 0750: the service group must be able to traverse the directory to reach the socket.
_SOCKET_DIR_MODE: Final = 0o750
# sqlite INTEGER is signed 64-bit; a larger cursor cannot exist and would overflow the query.
_MAX_CURSOR: Final = 2**63 - 1

# What aiohttp's HTTP parser accepts. Our longest request target is ~80 bytes, bearer tokens
# fit a header line many times over; the two limits differ so a refusal can say which it was
# (414 or 431). The header count is aiohttp's default.
MAX_REQUEST_TARGET: Final = 4096
MAX_HEADER_LINE: Final = 8190
MAX_HEADERS: Final = 128
# JSON numbers longer than this are refused by name (Python's own limit, 4300 digits, would
# give a message about sys.set_int_max_str_digits); no field of ours comes close.
_MAX_NUMBER_DIGITS: Final = 100

_TRACKING_ID: Final = re.compile(r"[0-9a-f]{32}")
_UNSIGNED: Final = re.compile(r"[0-9]{1,19}")
_SECONDS: Final = re.compile(r"[0-9]{1,5}(?:\.[0-9]{1,6})?")
_UTF8_NAMES: Final = frozenset({"utf-8", "utf8"})
_EVENTS_PARAMS: Final = ("after", "wait", "limit")
_WIRAYA_ROUTE: Final = "enqueue_communications"
_WIRAYA_KEY_HEADER: Final = "X-ApiKey"
_UNAUTHENTICATED_ROUTES: Final = frozenset({"healthz"})
_JSON: Final = JSON_TYPES[0]


class ApiStartError(SmppgwError):
    """The API cannot listen: the socket path is taken, not a socket, or not creatable."""


@dataclass(frozen=True, slots=True)
class _Deps:
    submit: SubmitService
    store: Store
    status: StatusProvider
    gateway: GatewayConfig
    metrics: Metrics | None
    # Set when the runner shuts down, so long-polls answer at once instead of holding the
    # shutdown for up to EVENTS_MAX_WAIT seconds.
    closing: asyncio.Event
    control: QueueControl


_DEPS: Final = web.AppKey("smppgw_api_deps", _Deps)


class _ApiError(Exception):
    """An answer other than 200 with our JSON error body; raised by helpers, turned into a
    response by the middleware so handlers stay straight-line."""

    def __init__(
        self, status: int, code: str, message: str, field: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"code": code, "field": field, "message": message}
        self.headers = dict(headers or {})

    @classmethod
    def of(cls, error: FieldError, status: int = 400) -> _ApiError:
        return cls(status, error.code, error.message, error.field)

    def response(self, media_type: str = _JSON) -> web.Response:
        if media_type in XML_TYPES:
            return _answer(error_xml(self.body), media_type, status=self.status,
                           headers=self.headers)
        return _json({"error": self.body}, status=self.status, headers=self.headers)


def _json(
    data: object, *, status: int = 200, headers: Mapping[str, str] | None = None,
    media_type: str = _JSON,
) -> web.Response:
    text = json.dumps(data, ensure_ascii=False)
    try:
        body = text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (one a status provider or a stored value carried past validation):
        # JSON's \u escapes still say it, so the client gets its answer instead of a 500.
        body = json.dumps(data).encode("ascii")
    return _answer(body, media_type, status=status, headers=headers)


def _answer(
    body: bytes, media_type: str, *, status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    return web.Response(body=body, status=status, headers=headers, content_type=media_type,
                        charset="utf-8")


# --- the application -----------------------------------------------------------------------------


def create_app(
    *,
    submit: SubmitService,
    store: Store,
    status: StatusProvider,
    gateway: GatewayConfig,
    metrics: Metrics | None = None,
    control: QueueControl | None = None,
) -> web.Application:
    """The API application; every dependency is passed in, so two daemons can share a process.

    ``status`` is awaited for ``GET /v1/status`` and must return a JSON-ready dict without
    secrets. ``gateway`` gives the body limit, the sender policy and the TCP bearer token.
    ``control`` runs the operator's commands (cancel, retry, pause; the daemon's, which tells
    its dispatchers; one over ``store`` and ``submit`` when None). Serve it with
    :func:`start_api`.
    """
    app = web.Application(
        client_max_size=gateway.max_body_bytes, middlewares=[_middleware],
    )
    deps = _Deps(submit, store, status, gateway, metrics, asyncio.Event(),
                 control or QueueControl(store, submit, metrics=metrics))
    app[_DEPS] = deps

    async def wake_long_polls(app: web.Application) -> None:
        app[_DEPS].closing.set()

    app.on_shutdown.append(wake_long_polls)
    app.router.add_post("/v1/messages", _post_messages, name="submit")
    app.router.add_get("/v1/messages", _find_messages, name="find_messages")
    app.router.add_get("/v1/messages/{tracking_id}", _get_message, name="get_message")
    app.router.add_delete("/v1/messages/{tracking_id}", _cancel_message, name="cancel_message")
    app.router.add_post("/v1/messages/{tracking_id}/retry", _retry_message,
                        name="retry_message")
    app.router.add_post("/v1/providers/{name}/pause", _pause_provider, name="pause_provider")
    app.router.add_post("/v1/providers/{name}/resume", _resume_provider,
                        name="resume_provider")
    app.router.add_get("/v1/events", _get_events, name="events")
    app.router.add_get("/v1/status", _get_status, name="status")
    app.router.add_get("/healthz", _healthz, name="healthz")
    app.router.add_post("/api/EnqueueCommunications", _post_enqueue, name=_WIRAYA_ROUTE)
    return app


def _route_name(request: web.Request) -> str | None:
    return request.match_info.route.name


@web.middleware
async def _middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Auth, JSON errors for everything (404, 405, 413, 500) and the request metric.

    The metric's endpoint is the route name ("get_message"), never the path, so a tracking id
    can never become a label value; unknown paths count as "unmatched".
    """
    deps = request.app[_DEPS]
    loop = asyncio.get_running_loop()
    started = loop.time()
    endpoint = _route_name(request) or "unmatched"
    response: web.StreamResponse
    try:
        _authorize(request, deps.gateway)
        response = await handler(request)
    except _ApiError as exc:
        response = exc.response(_answer_type(request))
    except web.HTTPException as exc:
        response = _http_exception_error(request, exc).response(_answer_type(request))
    except StoreWriteError as exc:
        # A full or failing disk: said once by the daemon for the whole store, not per request.
        response = _ApiError(503, "unavailable", f"{exc}; retry later").response(
            _answer_type(request))
    except StoreError as exc:
        # Closed during shutdown or a failing disk: the client should retry, not give up.
        log.warning("api: store unavailable endpoint=%s error=%s", endpoint, exc)
        response = _ApiError(
            503, "unavailable", "the store is unavailable; retry later",
        ).response(_answer_type(request))
    except Exception:
        reference = secrets.token_hex(4)
        log.exception("api: unexpected error endpoint=%s ref=%s", endpoint, reference)
        response = _ApiError(
            500, "internal", f"internal error; the smppgw log has the details (ref {reference})",
        ).response(_answer_type(request))
    if deps.metrics is not None:
        deps.metrics.api_request(endpoint, response.status, loop.time() - started)
    return response


def _answer_type(request: web.Request) -> str:
    """JSON everywhere but on Wiraya's endpoint, which answers in the request's own format
    (or the one its Accept header prefers), errors included."""
    if _route_name(request) != _WIRAYA_ROUTE:
        return _JSON
    request_type = request.content_type if hdrs.CONTENT_TYPE in request.headers else None
    return answer_type(request.headers.get(hdrs.ACCEPT), request_type)


def _http_exception_error(request: web.Request, exc: web.HTTPException) -> _ApiError:
    if isinstance(exc, web.HTTPNotFound):
        return _ApiError(
            404, "not_found", f"no such endpoint: {request.method} {shown(request.path)}",
        )
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return _ApiError(
            405, "method_not_allowed", f"{request.method} is not allowed here; use {allowed}",
            headers={hdrs.ALLOW: allowed},
        )
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return _too_large(request.app[_DEPS].gateway.max_body_bytes)
    code = "http_error" if exc.status >= 400 else "unexpected_status"
    return _ApiError(exc.status, code, exc.reason)


def _over_tcp(request: web.Request) -> bool:
    """True unless the request came through a unix socket (ours or systemd's). Unknown counts
    as TCP, so a transport we cannot inspect is authenticated rather than trusted."""
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    return sock is None or sock.family != socket.AF_UNIX


def _authorize(request: web.Request, gateway: GatewayConfig) -> None:
    """The unix socket is guarded by its file mode; TCP needs ``Authorization: Bearer`` (or
    Wiraya's ``X-ApiKey`` on their endpoint), compared in constant time."""
    if _route_name(request) in _UNAUTHENTICATED_ROUTES or not _over_tcp(request):
        return
    presented: str | None = None
    authorization = _credential_header(request, hdrs.AUTHORIZATION) or ""
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        presented = credentials.strip()
    elif _route_name(request) == _WIRAYA_ROUTE:
        presented = _credential_header(request, _WIRAYA_KEY_HEADER)
    token = gateway.api_token
    if (
        token is None
        or presented is None
        or not hmac.compare_digest(presented.encode(), token.reveal().encode())
    ):
        raise _ApiError(
            401, "unauthorized", "missing or wrong token: send 'Authorization: Bearer <token>'",
            headers={hdrs.WWW_AUTHENTICATE: 'Bearer realm="smppgw"'},
        )


def _credential_header(request: web.Request, name: str) -> str | None:
    """The header's value, or a 400 naming it when it is not UTF-8: aiohttp hands such bytes
    over as surrogate escapes, which no token can equal and no answer may echo."""
    value = request.headers.get(name)
    if value is not None:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _ApiError(400, "invalid_header", f"the {name} header is not UTF-8 text",
                            field=name) from None
    return value


def _too_large(limit: int) -> _ApiError:
    return _ApiError(
        413, "body_too_large",
        f"the body is larger than the limit of {limit} bytes (gateway.max_body_bytes)",
    )


BodyKind = Literal["json", "xml", "form"]
_EMPTY: Final[dict[BodyKind, tuple[str, str]]] = {
    "json": ("invalid_json", "JSON"), "xml": ("invalid_xml", "XML"),
    "form": ("invalid_form", "form"),
}


@dataclass(frozen=True, slots=True)
class _Body:
    kind: BodyKind
    raw: bytes
    charset: str | None


async def _read_body(request: web.Request, limit: int, *, xml: bool) -> _Body:
    """The request body and how to read it, or an _ApiError (415, 413, 400 when empty).

    Accepted Content-Types: application/json, text/json, ``*/*+json``, none at all, and
    application/x-www-form-urlencoded (what ``curl -d`` and Python's urllib send unless told
    otherwise: curl before 7.82 has no --json); with ``xml``, also application/xml, text/xml
    and ``*/*+xml``. JSON and forms must be UTF-8; XML may name any charset expat reads.
    Anything else (multipart, text/plain) is a 415: such a body was never meant for us, and
    saying so is clearer than a parse error.
    """
    kind: BodyKind = "json"
    charset: str | None = None
    if hdrs.CONTENT_TYPE in request.headers:
        content_type = request.content_type
        charset = request.charset
        if content_type == FORM_TYPE:
            kind = "form"
        elif xml and (content_type in XML_TYPES or content_type.endswith("+xml")):
            kind = "xml"
        elif not (content_type in JSON_TYPES or content_type.endswith("+json")):
            raise _unsupported_media_type(xml)
        if kind != "xml" and charset is not None and charset.lower() not in _UTF8_NAMES:
            raise _unsupported_media_type(xml)
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _too_large(limit) from None
    except web.RequestPayloadError as exc:
        # Nothing more can be read: say the body ended, or aiohttp's lingering close reads
        # on, meets the same error and logs it with a traceback.
        request.content.feed_eof()
        raise _unreadable_body(request, exc) from None
    if not raw.strip():
        code, what = _EMPTY[kind] if xml else _EMPTY["json"]
        raise _ApiError(400, code, f"invalid {what}: the body is empty")
    return _Body(kind, raw, charset)


def _unreadable_body(request: web.Request, exc: web.RequestPayloadError) -> _ApiError:
    """A body aiohttp could not deliver: compressed data that does not decompress, or a
    body shorter than its Content-Length or chunks announced."""
    encoding = request.headers.get(hdrs.CONTENT_ENCODING)
    if encoding is not None:
        return _ApiError(400, "invalid_http", f"the body is not valid '{shown(encoding)}' data",
                         field="Content-Encoding")
    reason = str(exc).partition("\n")[0][:200] or "the body ended early"
    return _ApiError(400, "invalid_http", f"the body cannot be read: {reason}")


def _unsupported_media_type(xml: bool) -> _ApiError:
    also = " (or XML with 'Content-Type: application/xml')" if xml else ""
    return _ApiError(
        415, "unsupported_media_type",
        "send the body as UTF-8 JSON with 'Content-Type: application/json'"
        f"{also} (curl: -H 'Content-Type: application/json')",
    )


def _parse_json(raw: bytes, *, sent_as_form: bool = False) -> object:
    """``raw`` parsed as JSON, or an _ApiError(400, invalid_json) saying where it broke."""
    hint = " (the body was sent as a form; send JSON)" if sent_as_form else ""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _ApiError(
            400, "invalid_json", f"invalid JSON: the body is not UTF-8 (byte {exc.start})",
        ) from None
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        raise _ApiError(
            400, "invalid_json",
            f"invalid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}{hint}",
        ) from None
    except ValueError as exc:
        raise _ApiError(400, "invalid_json", f"invalid JSON: {exc}") from None
    except RecursionError:
        raise _ApiError(400, "invalid_json", "invalid JSON: nested too deeply") from None


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def _bounded_int(digits: str) -> int:
    if len(digits) > _MAX_NUMBER_DIGITS:
        raise ValueError(f"a number has more than {_MAX_NUMBER_DIGITS} digits")
    return int(digits)


def _wiraya_document(body: _Body) -> object:
    """Wiraya's body in any of its formats as the one document wiraya.py reads. A form body
    that is JSON (``curl -d '{...}'`` labels JSON a form) is read as JSON."""
    if body.kind == "xml":
        return read_xml(body.raw, body.charset)
    if body.kind == "form" and not body.raw.lstrip().startswith(b"{"):
        try:
            text = body.raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _ApiError(400, "invalid_form",
                            f"the form is not UTF-8 (byte {exc.start})") from None
        return read_form(text)
    return _parse_json(body.raw)


# --- handlers ------------------------------------------------------------------------------------


async def _post_messages(request: web.Request) -> web.Response:
    """POST /v1/messages: one answer per message, in request order (DESIGN.md); a refused
    message's answer carries its id whenever the id itself was valid."""
    deps = request.app[_DEPS]
    body = await _read_body(request, deps.gateway.max_body_bytes, xml=False)
    document = _parse_json(body.raw, sent_as_form=body.kind == "form")
    try:
        parsed = parse_submit_body(document, sender_policy=deps.gateway.sender_policy)
    except RequestError as exc:
        raise _ApiError.of(exc.error, exc.status) from None
    answers = await deps.submit.submit(parsed)
    return _json({"messages": [
        (replace(answer, client_id=item.client_id)
         if isinstance(item, FieldError) and answer.client_id is None else answer).as_json()
        for item, answer in zip(parsed, answers, strict=True)
    ]})


async def _post_enqueue(request: web.Request) -> web.Response:
    """POST /api/EnqueueCommunications: Wiraya's request and answer shapes (JSON, XML or a
    form in; JSON or XML out, as the request), our submit path."""
    deps = request.app[_DEPS]
    body = await _read_body(request, deps.gateway.max_body_bytes, xml=True)
    try:
        pairs = parse_enqueue_body(
            _wiraya_document(body), sender_policy=deps.gateway.sender_policy)
    except RequestError as exc:
        raise _ApiError.of(exc.error, exc.status) from None
    answers = await deps.submit.submit([request for _, request in pairs])
    results = enqueue_results(pairs, answers)
    media_type = _answer_type(request)
    if media_type in XML_TYPES:
        return _answer(results_xml(results), media_type)
    return _json({"results": results}, media_type=media_type)


async def _get_message(request: web.Request) -> web.Response:
    """GET /v1/messages/{tracking_id}: state, parts, receipts and history."""
    deps = request.app[_DEPS]
    view = await deps.store.get_message(_tracking_id(request))
    if view is None:
        raise _ApiError(404, "not_found", "no message with this tracking id",
                        field="tracking_id")
    return _json(message_json(view))


async def _find_messages(request: web.Request) -> web.Response:
    """GET /v1/messages: the message list, newest first, filtered by state, provider,
    to_prefix, since and until, one page of ``limit`` (``{"messages": [VIEW...], "next":
    CURSOR_OR_NULL}``, VIEW as GET /v1/messages/{tracking_id}; pass ``next`` back as ``after``
    for the next page, which may be short, even empty, while ``next`` is set).

    ``?id=CLIENT_ID`` alone finds the message an app sent with its own id: ``[VIEW]``, or an
    empty list when no message has that id (never sent, or deleted by retention), with
    ``next`` null."""
    query = request.query
    store = request.app[_DEPS].store
    if "id" in query:
        others = [shown(key) for key in query if key != "id"]
        if others:
            raise _ApiError(400, "invalid_request",
                            f"id finds one message and takes no other parameter; drop "
                            f"'{others[0]}'", field=others[0])
        ids = query.getall("id", [])
        if len(ids) != 1 or not 1 <= len(ids[0]) <= MAX_CLIENT_ID_LENGTH:
            raise _ApiError(
                400, "invalid_value",
                f"give the message's client id once: ?id=ID (1 to {MAX_CLIENT_ID_LENGTH}"
                " characters)", field="id")
        views = await store.find_messages(ids[0])
        # The list's shape (DESIGN.md): one message at most, so never a next page.
        return _json({"messages": [message_json(view) for view in views], "next": None})
    try:
        wanted = parse_list_query({key: query.getall(key) for key in query})
    except RequestError as exc:
        raise _ApiError.of(exc.error, exc.status) from None
    page = await store.list_messages(wanted)
    return _json({"messages": [message_json(view) for view in page.messages],
                  "next": encode_cursor(page.next) if page.next is not None else None})


async def _cancel_message(request: web.Request) -> web.Response:
    """DELETE /v1/messages/{tracking_id}: cancel a message. 200 with where each part stands
    (``not_sent``, ``in_flight``: may have reached the SMSC and is not sent again, ``sent``;
    ``cancel_sm``: what the SMSC answered for sent parts, where the provider takes it), also
    when it was cancelled before (``already_cancelled``); 409 ``not_cancellable`` for a
    message that already ended or whose parts were all sent (and not cancelled on the SMSC);
    404 for an unknown one."""
    deps = request.app[_DEPS]
    tracking_id = _tracking_id(request)
    result = await deps.control.cancel(tracking_id)
    if result is None:
        raise _ApiError(404, "not_found", "no message with this tracking id",
                        field="tracking_id")
    if result.outcome == "final":
        raise _ApiError(409, "not_cancellable",
                        f"the message already ended: it is {result.state}",
                        field="tracking_id")
    if result.outcome == "all_sent":
        refused = "; ".join(f"part {part}: {status}" for part, status in result.cancel_sm)
        raise _ApiError(409, "not_cancellable",
                        "every part of the message was already sent to the SMSC, "
                        + (f"which refused to cancel them ({refused})" if refused else
                           "and the provider does not take cancel_sm (cancel_sm = false)")
                        + f"; it is {result.state}", field="tracking_id")
    view = await deps.store.get_message(tracking_id)
    answer: dict[str, object] = {
        "tracking_id": tracking_id, "id": view.client_id if view is not None else None,
        "state": result.state, "cancelled": True,
        "already_cancelled": result.outcome == "already_cancelled",
        "not_sent": list(result.not_sent), "in_flight": list(result.in_flight),
        "sent": list(result.sent)}
    if result.cancel_sm:
        answer["cancel_sm"] = [{"part": part, "status": status}
                               for part, status in result.cancel_sm]
    return _json(answer)


async def _retry_message(request: web.Request) -> web.Response:
    """POST /v1/messages/{tracking_id}/retry: send a failed, undeliverable or expired message
    again as a new message (routed and encoded anew), linked to the old one both ways. The
    body may name another ``provider``. 200 with the submit answer of the new attempt and
    ``retry_of`` (``duplicate`` when it had been retried before: that retry's answer); 409
    ``not_retryable`` in another state, or the accept path's refusal (``no_route``, ...)."""
    deps = request.app[_DEPS]
    tracking_id = _tracking_id(request)
    provider = await _retry_provider(request, deps.gateway.max_body_bytes)
    outcome = await deps.control.retry(tracking_id, provider)
    if outcome.view is None:
        raise _ApiError(404, "not_found", "no message with this tracking id",
                        field="tracking_id")
    if outcome.answer is None:
        raise _ApiError(409, "not_retryable",
                        f"only a failed, undeliverable or expired message is sent again; "
                        f"this one is {outcome.view.state}", field="tracking_id")
    answer = outcome.answer
    if not answer.accepted:
        error = answer.error
        if error is None:
            raise _ApiError(503, "unavailable", "the retry could not be stored; retry later")
        raise _ApiError(409 if not answer.transient else 503, error.code, error.message,
                        field=refusal_field(error))
    return _json({**answer.as_json(), "retry_of": tracking_id})


async def _retry_provider(request: web.Request, limit: int) -> str | None:
    """The optional body of a retry: nothing, or ``{"provider": "name"}``."""
    if not request.can_read_body:
        return None
    body = await _read_body(request, limit, xml=False)
    document = _parse_json(body.raw, sent_as_form=body.kind == "form")
    if not isinstance(document, dict):
        raise _ApiError(400, "invalid_type", "the body is a JSON object: {\"provider\": NAME}")
    unknown = [shown(key) for key in document if key != "provider"]
    if unknown:
        raise _ApiError(400, "unknown_field", f"unknown field '{unknown[0]}'; use provider",
                        field=unknown[0])
    provider = document.get("provider")
    if provider is not None and not isinstance(provider, str):
        raise _ApiError(400, "invalid_type", "'provider' is a provider name (a string)",
                        field="provider")
    return provider or None


async def _pause_provider(request: web.Request) -> web.Response:
    """POST /v1/providers/{name}/pause: nothing of the provider is sent until it is resumed;
    its binds stay up for receipts and MO. Kept across reloads and restarts."""
    return await _set_paused(request, True)


async def _resume_provider(request: web.Request) -> web.Response:
    """POST /v1/providers/{name}/resume: the provider sends again."""
    return await _set_paused(request, False)


async def _set_paused(request: web.Request, paused: bool) -> web.Response:
    deps = request.app[_DEPS]
    name = request.match_info["name"]
    try:
        pause = await deps.control.set_paused(name, paused)
    except UnknownProviderError as exc:
        raise _ApiError(404, "unknown_provider",
                        f"no provider named '{shown(name)}'; configured: "
                        f"{', '.join(exc.known) or 'none'}", field="name") from None
    return _json({"provider": name, "paused": pause is not None,
                  "since": iso(ms(pause.since_wall)) if pause is not None else None})


def _tracking_id(request: web.Request) -> str:
    tracking_id = request.match_info["tracking_id"]
    if not _TRACKING_ID.fullmatch(tracking_id):
        raise _ApiError(
            400, "invalid_value", "a tracking id is 32 lower-case hex characters",
            field="tracking_id",
        )
    return tracking_id


async def _get_events(request: web.Request) -> web.Response:
    """GET /v1/events?after=&wait=&limit=: the event log in commit order, long-polled.

    ``cursor`` in the answer is the last event's cursor, or ``after`` when none came, so a
    client that always passes back the cursor it got misses nothing and sees nothing twice.
    """
    deps = request.app[_DEPS]
    after, wait, limit = _events_params(request)
    events = await deps.store.events_after(after, limit)
    if (
        not events and wait > 0 and not deps.closing.is_set()
        and await _wait_for_events(deps, after, wait)
    ):
        events = await deps.store.events_after(after, limit)
    cursor = events[-1].cursor if events else after
    return _json({"events": [event_json(e) for e in events], "cursor": cursor})


def _events_params(request: web.Request) -> tuple[int, float, int]:
    query = request.query
    for key in query:
        if key not in _EVENTS_PARAMS:
            name = shown(key)
            raise _ApiError(400, "unknown_field", f"unknown parameter '{name}'; use after, "
                            "wait and limit", field=name)
        if len(query.getall(key)) > 1:
            raise _ApiError(400, "invalid_value", f"{key!r} is given more than once", field=key)

    after = query.get("after", "0")
    if not _UNSIGNED.fullmatch(after) or int(after) > _MAX_CURSOR:
        raise _ApiError(400, "invalid_value", "'after' must be an event cursor: an integer ≥ 0",
                        field="after")
    wait = query.get("wait", "0")
    if not _SECONDS.fullmatch(wait) or float(wait) > EVENTS_MAX_WAIT:
        raise _ApiError(400, "invalid_value",
                        f"'wait' must be a number of seconds from 0 to {EVENTS_MAX_WAIT:g}",
                        field="wait")
    limit = query.get("limit", str(EVENTS_DEFAULT_LIMIT))
    if not _UNSIGNED.fullmatch(limit) or not 1 <= int(limit) <= EVENTS_MAX_LIMIT:
        raise _ApiError(400, "invalid_value",
                        f"'limit' must be an integer from 1 to {EVENTS_MAX_LIMIT}",
                        field="limit")
    return int(after), float(wait), int(limit)


async def _wait_for_events(deps: _Deps, after: int, wait: float) -> bool:
    """Wait for a commit past ``after``, at most ``wait`` seconds, or until the API closes.

    Both waits are children of one task group; whichever ends first cancels the other.
    """
    async with asyncio.TaskGroup() as group:
        commit = group.create_task(deps.store.wait_for_events(after, wait))
        closing = group.create_task(deps.closing.wait())
        commit.add_done_callback(lambda _: closing.cancel())
        closing.add_done_callback(lambda _: commit.cancel())
    return not commit.cancelled() and commit.result()


async def _get_status(request: web.Request) -> web.Response:
    """GET /v1/status: whatever the daemon's status provider reports (binds, queues, counts)."""
    return _json(await request.app[_DEPS].status())


async def _healthz(request: web.Request) -> web.Response:
    """GET /healthz: 200 while the store takes work, else 503. No auth, no detail beyond that."""
    store = request.app[_DEPS].store
    if store.closed or store.write_failure is not None:
        message = "the store is closed" if store.closed else "the store cannot write"
        return _json({"ok": False, "error": {"code": "unavailable", "field": "",
                                             "message": message}}, status=503)
    return _json({"ok": True})


# --- the message view ----------------------------------------------------------------------------


def _iso(wall: float | None) -> str | None:
    """UTC ISO 8601 with milliseconds and a Z, as event ``at`` values are written."""
    if wall is None:
        return None
    stamp = datetime.fromtimestamp(wall, tz=UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def _segment_json(segment: SegmentView) -> dict[str, object]:
    receipt: dict[str, object] | None = None
    if segment.receipt is not None or segment.receipt_stat is not None:
        # The stored document: message_id, outcome, final, bind and the parsed receipt under
        # "details" (vendor TLVs decoded per profile, e.g. Wavy 0x1403-0x1406).
        receipt = dict(segment.receipt or {})
        receipt.update(stat=segment.receipt_stat, err=segment.receipt_err,
                       at=_iso(segment.receipt_wall))
    return {
        "part_index": segment.part_index,
        "state": segment.state,
        "smsc_message_id": segment.smsc_message_id,
        "submit_status": segment.submit_status,
        "attempts": segment.attempts,
        "last_error": segment.last_error,
        "bind": segment.bind,
        "data_coding": segment.data_coding,
        "submitted": _iso(segment.submitted_wall),
        "responded": _iso(segment.resp_wall),
        "receipt": receipt,
    }


def message_json(view: MessageView) -> dict[str, object]:
    """The answer of ``GET /v1/messages/{tracking_id}``.

    The text is left out on purpose: tracking ids travel in the event stream every local
    client can read, and a one-time code must not be readable through them. The client that
    sent the text has it already.
    """
    history: list[dict[str, object]] = []
    for entry in view.history:
        item: dict[str, object] = {
            "at": entry.at, "type": entry.type, "state": entry.state,
            "detail": dict(entry.detail),
        }
        if entry.cursor is not None:
            item["cursor"] = entry.cursor
        history.append(item)
    return {
        "tracking_id": view.tracking_id,
        "id": view.client_id,
        "provider": view.provider,
        "to": view.destination,
        "from": view.source,
        "state": view.state,
        "data_coding": view.data_coding,
        "encoding": view.encoding,
        "flash": view.flash,
        "parts": view.parts,
        "attempts": view.attempts,
        "last_error": view.last_error,
        "tlvs": [{"tag": f"0x{tag:04x}", "hex": value.hex()} for tag, value in view.tlvs],
        "created": _iso(view.created_wall),
        "updated": _iso(view.updated_wall),
        "valid_until": _iso(view.valid_until_wall),
        "retry_of": view.retry_of,
        "retried_as": view.retried_as,
        "segments": [_segment_json(s) for s in view.segments],
        "history": history,
    }


# --- listeners -----------------------------------------------------------------------------------


def _parse_error(exc: HttpProcessingError) -> _ApiError:
    """What aiohttp's HTTP parser refused, as our error. The message never quotes the
    client's bytes (an over-long Authorization line would otherwise be sent back)."""
    if isinstance(exc, LineTooLong):
        limit = exc.args[1] if len(exc.args) > 1 else None
        if limit == MAX_REQUEST_TARGET:
            return _ApiError(414, "request_too_long",
                             f"the request target is longer than {limit} bytes",
                             field="request_line")
        return _ApiError(431, "headers_too_large",
                         f"a header line is longer than {MAX_HEADER_LINE} bytes",
                         field="headers")
    if isinstance(exc, InvalidHeader):
        return _ApiError(400, "invalid_http",
                         "a header holds a character HTTP forbids (such as NUL)",
                         field="headers")
    if isinstance(exc, BadHttpMethod):
        what = ("TLS on a plain HTTP listener: use http://, not https://"
                if "HTTPS" in exc.message else "the request line has no valid HTTP method")
        return _ApiError(400, "invalid_http", what, field="request_line")
    if isinstance(exc, BadStatusLine):
        return _ApiError(400, "invalid_http", "the request line is not 'METHOD /path HTTP/1.1'",
                         field="request_line")
    if isinstance(exc, InvalidURLError):
        return _ApiError(400, "invalid_http",
                         "the request target holds characters HTTP forbids; percent-encode "
                         "them", field="request_line")
    if exc.message.startswith("Too many headers"):
        return _ApiError(431, "headers_too_large", f"more than {MAX_HEADERS} headers",
                         field="headers")
    # llhttp's reason is the part before the quoted request bytes.
    reason = exc.message.partition(":")[0].strip()[:200] or "malformed request"
    return _ApiError(400, "invalid_http", f"malformed HTTP request: {reason}",
                     field="headers" if "header" in reason.lower() else "")


class _RequestHandler(web.RequestHandler):
    """aiohttp's per-connection protocol, answering what its HTTP parser refuses with our JSON
    error and one debug line, instead of a text/plain page and an ERROR with a traceback (a
    client could fill the journal with those). Every other error keeps aiohttp's handling."""

    __slots__ = ()

    def handle_error(
        self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError) or request.writer.output_size > 0:
            return super().handle_error(request, status, exc, message)
        error = _parse_error(exc)
        log.debug("api: refused a malformed request", extra={"kv": {
            "status": error.status, "code": error.body["code"], "field": error.body["field"],
            "error": type(exc).__name__}})
        response = error.response()
        response.force_close()
        return response


class _Server(web.Server):
    """aiohttp's low-level server, handing out _RequestHandler connections."""

    def __call__(self) -> web.RequestHandler:
        handler = super().__call__()
        # Same slots, one method overridden: aiohttp has no hook to choose the class.
        handler.__class__ = _RequestHandler
        return handler


class _Runner(web.AppRunner):
    """An AppRunner whose connections are _RequestHandler instances."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _Server
        return server


class ApiServer:
    """The running API: the unix socket (own or inherited) and the optional TCP listener.

    ``close()`` stops accepting, wakes long-polls, lets running requests finish (bounded by
    SHUTDOWN_TIMEOUT) and removes the socket file if it is still the one this server made.
    """

    def __init__(
        self, runner: web.AppRunner, *, socket_path: Path | None,
        socket_identity: tuple[int, int] | None, tcp_address: tuple[str, int] | None,
    ) -> None:
        self._runner = runner
        self.socket_path = socket_path
        self._socket_identity = socket_identity
        self.tcp_address = tcp_address
        self._closed = False

    @property
    def tcp_port(self) -> int | None:
        """The TCP listener's port (the real one when configured as 0), None without one."""
        return None if self.tcp_address is None else self.tcp_address[1]

    def __repr__(self) -> str:
        where = str(self.socket_path) if self.socket_path is not None else "inherited socket"
        tcp = f" tcp={self.tcp_address[0]}:{self.tcp_address[1]}" if self.tcp_address else ""
        state = "closed" if self._closed else "listening"
        return f"<ApiServer {state} unix={where}{tcp}>"

    async def close(self) -> None:
        """Idempotent; safe to call from the daemon's shutdown path whatever happened before."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._runner.cleanup()
        finally:
            _unlink_if_ours(self.socket_path, self._socket_identity)


async def start_api(
    app: web.Application, *, gateway: GatewayConfig,
    inherited_socket: socket.socket | None = None,
) -> ApiServer:
    """Serve ``app`` on ``gateway.submit_socket`` (or ``inherited_socket`` from systemd socket
    activation, which is used as is and never unlinked) and on ``gateway.api_listen`` if set.

    The socket file is chmod-ed to ``gateway.socket_mode`` before it listens, so no client can
    connect while it has the umask's mode. A stale socket file left by a crash is replaced; a
    live one (another smppgw) or a path that is not a socket raises ApiStartError and nothing
    is touched.
    """
    runner = _Runner(app, shutdown_timeout=SHUTDOWN_TIMEOUT, max_line_size=MAX_REQUEST_TARGET,
                     max_field_size=MAX_HEADER_LINE, max_headers=MAX_HEADERS)
    await runner.setup()
    socket_path: Path | None = None
    identity: tuple[int, int] | None = None
    try:
        if inherited_socket is not None:
            inherited_socket.setblocking(False)
            await web.SockSite(runner, inherited_socket).start()
        else:
            socket_path = gateway.submit_socket
            sock, identity = await _bind_unix_socket(socket_path, gateway.socket_mode)
            try:
                await web.SockSite(runner, sock).start()
            except BaseException:
                sock.close()
                raise
        tcp_address: tuple[str, int] | None = None
        if gateway.api_listen is not None:
            if gateway.api_token is None:
                raise ApiStartError("gateway.api_listen needs an api_token; refusing to listen")
            before = len(runner.addresses)
            try:
                await web.TCPSite(
                    runner, gateway.api_listen.host, gateway.api_listen.port
                ).start()
            except OSError as exc:
                raise ApiStartError(
                    f"cannot listen on {gateway.api_listen}: {exc.strerror or exc}"
                ) from None
            address = runner.addresses[before]
            tcp_address = (str(address[0]), int(address[1]))
    except BaseException:
        await runner.cleanup()
        _unlink_if_ours(socket_path, identity)
        raise
    server = ApiServer(runner, socket_path=socket_path, socket_identity=identity,
                       tcp_address=tcp_address)
    log.info("api: listening %r", server)
    return server


async def _bind_unix_socket(path: Path, mode: int) -> tuple[socket.socket, tuple[int, int]]:
    """A bound, not yet listening unix socket at ``path`` with ``mode``, and the (dev, inode)
    of its file, by which close() later recognises it as ours."""
    if not path.parent.exists():
        try:
            path.parent.mkdir(mode=_SOCKET_DIR_MODE, parents=True)
        except FileExistsError:
            pass
        except OSError as exc:
            raise ApiStartError(
                f"cannot create the socket directory {path.parent}: {exc.strerror or exc}"
            ) from None
    await _remove_stale_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(os.fspath(path))
        # Before listen(): until then a connect is refused, so nobody gets in under the umask.
        os.chmod(path, mode)
        st = os.stat(path)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ApiStartError(f"another smppgw is listening on {path}") from None
        raise ApiStartError(f"cannot listen on {path}: {exc.strerror or exc}") from None
    return sock, (st.st_dev, st.st_ino)


async def _remove_stale_socket(path: Path) -> None:
    """Unlink ``path`` only if it is a socket nobody listens on (connect: ECONNREFUSED).

    A regular file, directory or symlink is never deleted: the path is probably a mistake in
    the config, and removing someone's file would be worse than refusing to start.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ApiStartError(f"cannot inspect {path}: {exc.strerror or exc}") from None
    if not stat.S_ISSOCK(st.st_mode):
        raise ApiStartError(
            f"{path} exists and is not a socket; refusing to replace it "
            "(remove it or set another gateway.submit_socket)"
        )
    loop = asyncio.get_running_loop()
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.setblocking(False)
    try:
        async with asyncio.timeout(_PROBE_TIMEOUT):
            await loop.sock_connect(probe, os.fspath(path))
    except ConnectionRefusedError:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        log.info("api: removed the stale socket %s left by an earlier run", path)
        return
    except FileNotFoundError:
        return
    except TimeoutError:
        # Accepting too slowly to answer is still alive (a full backlog), not stale.
        raise ApiStartError(f"another smppgw is listening on {path}") from None
    except OSError as exc:
        raise ApiStartError(f"cannot check {path}: {exc.strerror or exc}") from None
    finally:
        probe.close()
    raise ApiStartError(f"another smppgw is listening on {path}")


def _unlink_if_ours(path: Path | None, identity: tuple[int, int] | None) -> None:
    """Remove the socket file unless something else replaced it since we bound it."""
    if path is None or identity is None:
        return
    try:
        st = os.lstat(path)
        if (st.st_dev, st.st_ino) == identity:
            os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("api: cannot remove the socket %s: %s", path, exc.strerror or exc)
