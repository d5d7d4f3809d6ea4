"""Every HTTP request, page or API, becomes an audit record (Art. 18).

Recorded: time, actor (user, API key id, or anonymous), client IP, method, route and path, status,
bytes sent, duration and user agent. Never recorded: the query string (it may carry a token or a
CSRF value), bodies, headers other than the user agent. Static assets and health probes are not
requests of a user and are left out; everything else is recorded, errors included.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kaifang.audit.models import RecordKind
from kaifang.audit.tags import Tag
from kaifang.audit.writer import AuditWriter
from kaifang.db import utcnow
from kaifang.web.health import Metrics

# Keys in the request's state: when the request started, and that a data-access record written
# by the route (with the request's own facts, `request_facts`) stands for the request.
STARTED = "kaifang_audit_started"
FOLDED = "kaifang_audit_folded"

UNRECORDED_PREFIXES = ("/static/",)
UNRECORDED_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/favicon.ico"})


def recorded(path: str) -> bool:
    return path not in UNRECORDED_PATHS and not path.startswith(UNRECORDED_PREFIXES)


class RequestAuditMiddleware:
    """Records every request, and counts it in the Prometheus metrics on the way."""

    def __init__(self, app: ASGIApp, writer: AuditWriter, metrics: Metrics) -> None:
        self.app = app
        self.writer = writer
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not recorded(scope["path"]):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        scope.setdefault("state", {})[STARTED] = started
        at = utcnow()
        status = 500  # an exception before any response is answered 500 by the outer handler
        sent = 0

        async def counting_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            seconds = time.perf_counter() - started
            if self.writer.enabled and not scope["state"].get(FOLDED):
                self.writer.add(_values(scope, at, status, sent, seconds))
            # Metrics count with auditing on or off (`audit_enabled` is off only to measure its cost).
            self.metrics.observe(scope["method"][:10], _route(scope), status, seconds)


def request_facts(scope: Scope, sent: int) -> dict[str, Any]:
    """The request's own facts for a data-access record that stands for the request too: written
    (and committed) before the answer goes out, so the status is 200, the bytes are the answer's
    and the duration runs to that moment. Call `fold` once that record has committed; until then
    the middleware still writes the request's own record (an error after this is recorded)."""
    started = (scope.get("state") or {}).get(STARTED, time.perf_counter())
    return _facts(scope, 200, sent, time.perf_counter() - started)


def fold(scope: Scope) -> None:
    """The route's data-access record, now committed, is the request's record: write no other."""
    scope.setdefault("state", {})[FOLDED] = True


def _facts(scope: Scope, status: int, sent: int, seconds: float) -> dict[str, Any]:
    """What the request itself was: method, path, route, status, bytes, duration, user agent."""
    headers = dict(scope.get("headers") or [])
    return {
        "method": scope["method"][:10],
        "path": _clean(scope["path"])[:500],
        "route": _route(scope),
        "status": status,
        "bytes_sent": sent,
        "duration_ms": round(seconds * 1000),
        "user_agent": _clean(headers.get(b"user-agent", b"").decode("latin-1"))[:300],
    }


def _values(scope: Scope, at: Any, status: int, sent: int, seconds: float) -> dict[str, Any]:
    state = scope.get("state") or {}
    actor = state.get("actor")
    client = scope.get("client")
    return {
        "at": at,
        "kind": RecordKind.request,
        "actor_id": getattr(actor, "user_id", None),
        "actor_name": (getattr(actor, "username", "") or "anonymous")[:64],
        "api_key_id": getattr(actor, "api_key_id", None),
        "action": str(Tag.http_request),
        "target_type": "",
        "target_id": "",
        "summary": {},
        "comment": "",
        "ip": (actor.ip if actor is not None and actor.ip else (client[0] if client else ""))[:64],
        **_facts(scope, status, sent, seconds),
        "entry_id": _path_id(scope, "entry_id"),  # per-entry statistics count page views by this
        "resource_id": _path_id(scope, "resource_id"),
        "version_id": None,
        "data_format": "",
        "rows": None,
        "grant_id": None,
    }


def _route(scope: Scope) -> str:
    return (getattr(scope.get("route"), "path", "") or "")[:200]


def _path_id(scope: Scope, name: str) -> int | None:
    value = (scope.get("path_params") or {}).get(name)
    try:
        number = int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
    return number if number is not None and 0 < number < 2**31 else None


def _clean(text: str) -> str:
    """A hostile path or user agent may hold NUL, which PostgreSQL text refuses: keep it visible."""
    return text.replace("\x00", "\\x00")
