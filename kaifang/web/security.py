"""Request authentication (session cookie or API key), CSRF and security headers."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qs

from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kaifang.accounts import service as accounts
from kaifang.accounts.permissions import Actor
from kaifang.audit.service import take_accesses
from kaifang.db import MAX_ID
from kaifang.errors import NotAuthenticated, RateLimited
from kaifang.ratelimit import rate_label

if TYPE_CHECKING:
    from kaifang.app import Platform

SESSION_COOKIE = "kf_session"
CSRF_COOKIE = "kf_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
MAX_FORM_BYTES = 1_000_000


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def api_key_from_headers(headers: Any) -> str | None:
    """`Authorization: Bearer KEY`, `X-API-Key: KEY`, or CKAN's raw `Authorization`/`X-CKAN-API-Key`."""
    auth = headers.get("authorization", "").strip()
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    for value in (headers.get("x-api-key"), headers.get("x-ckan-api-key"), auth):
        if value and value.strip():
            return value.strip()
    return None


@contextmanager
def request_transaction(kf: Platform) -> Iterator[Session]:
    """A request's transaction: committed at the end, rolled back on error. The data accesses
    recorded in it go to the audit journal once it has committed (kaifang.audit.journal): a read
    writes nothing to the database, and one that fails records none."""
    with kf.db.session() as db:
        yield db
        accesses = take_accesses(db)
    kf.audit.journal.append(accesses)


def get_db(request: Request) -> Iterator[Session]:
    """One transaction per request, committed (its data accesses journaled) before the response
    is sent."""
    with request_transaction(request.app.state.kf) as db:
        yield db


DB = Annotated[Session, Depends(get_db, scope="function")]


@dataclass(frozen=True)
class CurrentUser:
    """What pages may know of the signed-in user: plain values, usable after the session closed
    (an error page renders after a failed request's transaction was rolled back)."""

    id: int
    username: str
    display_name: str
    is_regulator: bool
    is_operator: bool
    is_provider_staff: bool


def throttle(kf: Platform, bucket: str, who: str) -> None:
    """The per-minute rate limit for an API key or client IP, and an API key's daily quota."""
    limit = kf.settings.api_rate_limit
    if not kf.limiter.hit(limit, bucket, who):
        wait = kf.limiter.retry_after(limit, bucket, who)
        raise RateLimited(f"调用过于频繁（上限 {rate_label(limit)}），请 {wait} 秒后再试", retry_after=wait)
    quota = kf.settings.api_daily_quota
    if bucket == "key" and quota:
        over = kf.limiter.hit_daily(quota, who)
        if over is not None:
            raise RateLimited(
                f"该 API 密钥今日调用次数已达上限（每日 {quota} 次），配额于北京时间零点重置",
                retry_after=over[1],
            )


def get_actor(request: Request, db: DB) -> Actor:
    """Who is calling. A presented API key must be valid: a bad key is refused, not ignored."""
    kf = request.app.state.kf
    ip = client_ip(request)
    key = api_key_from_headers(request.headers)
    if key is not None:
        caller = accounts.api_caller(db, key, ip)
        if caller is None:
            raise NotAuthenticated("API 密钥无效、已撤销或所属账号已停用")
        owner, actor = caller
        throttle(kf, "key", str(owner.api_key_id))
        display_name = owner.display_name
    else:
        token = request.cookies.get(SESSION_COOKIE)
        user = accounts.resolve_session(db, kf.settings, token) if token else None
        if request.url.path.startswith("/api/"):
            throttle(kf, "ip", ip)
        actor = accounts.actor_for(db, user, ip=ip)
        display_name = user.display_name if user is not None else ""
    request.state.current_user = (
        CurrentUser(
            actor.user_id,
            actor.username,
            display_name,
            actor.is_regulator,
            actor.is_operator,
            actor.is_provider_staff,
        )
        if actor.user_id is not None
        else None
    )
    request.state.actor = actor
    return actor


CurrentActor = Annotated[Actor, Depends(get_actor)]
# A row id in a URL: out-of-range values are a 422 with a Chinese message, not a database error.
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]


def csrf_token_for(secret: str, nonce: str) -> str:
    return hmac.new(secret.encode(), nonce.encode(), hashlib.sha256).hexdigest()


def _cookie(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                k, _, v = part.strip().partition("=")
                if k == name:
                    return v
    return None


class CSRFMiddleware:
    """Every unsafe request carrying cookies must prove it comes from our own pages.

    The browser holds a random nonce in a cookie; pages embed HMAC(secret, nonce) in forms
    (field ``csrf_token``) and in an ``X-CSRF-Token`` header for HTMX. Clients that authenticate
    with an API key and send no session cookie cannot be driven by another site, so they pass.
    Multipart uploads carry the token in the header or the ``csrf_token`` query parameter.
    """

    def __init__(
        self, app: ASGIApp, secret: str, reject: Callable[[Scope, Receive, Send, str], Awaitable[None]]
    ) -> None:
        self.app, self.secret, self.reject = app, secret, reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        session = _cookie(scope, SESSION_COOKIE)
        # Without a session cookie there is no ambient authority to abuse: API-key clients, and
        # JSON bodies (which browsers cannot send cross-site without a CORS preflight) pass.
        json_body = headers.get("content-type", "").startswith("application/json")
        if session is None and (api_key_from_headers(headers) is not None or json_body):
            await self.app(scope, receive, send)
            return
        nonce = _cookie(scope, CSRF_COOKIE)
        sent = headers.get(CSRF_HEADER)
        if sent is None:
            sent = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(CSRF_FIELD, [None])[0]
        body = b""
        if sent is None and headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            body, too_big = await _read_body(receive)
            if too_big:
                await self.reject(scope, receive, send, "提交的内容过大")
                return
            sent = parse_qs(body.decode("utf-8", "replace")).get(CSRF_FIELD, [None])[0]
            receive = _replay(body)
        if not nonce or not sent or not hmac.compare_digest(sent, csrf_token_for(self.secret, nonce)):
            await self.reject(scope, receive, send, "页面已过期或请求来源无法验证，请刷新页面后重试")
            return
        await self.app(scope, receive, send)


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return b"", True
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks), False


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        # the one inline script: base.html switches elderly mode on before the first paint
        b"script-src 'self' 'sha256-b4z2hYdVOd26wO9BqOeAdR5ypkSNyP3d/P6N/P9JyzU='; "
        b"frame-ancestors 'none'; form-action 'self'; base-uri 'self'",
    ),
]


class SecurityHeadersMiddleware:
    """Security headers on every response, and a CSRF nonce cookie for browsers that lack one."""

    def __init__(self, app: ASGIApp, secure_cookies: bool) -> None:
        self.app, self.secure = app, secure_cookies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = _cookie(scope, CSRF_COOKIE)
        if not nonce:
            nonce = secrets.token_urlsafe(24)
        scope.setdefault("state", {})["csrf_nonce"] = nonce
        new_cookie = _cookie(scope, CSRF_COOKIE) is None

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                if new_cookie:
                    flags = "; Path=/; HttpOnly; SameSite=Lax" + ("; Secure" if self.secure else "")
                    headers.append((b"set-cookie", f"{CSRF_COOKIE}={nonce}{flags}".encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
