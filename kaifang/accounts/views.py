"""Account pages: log in and out, register, verify the e-mail address, reset a password, 个人中心.

Form posts are plain sync routes (run in the thread pool) because password hashing is slow on
purpose; the rules themselves live in `kaifang.accounts.service`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from kaifang.access.grants import AccountSuspended
from kaifang.accounts import service as accounts
from kaifang.accounts.models import User, UserType
from kaifang.accounts.permissions import Actor, require_login
from kaifang.errors import EmailNotVerified, InvalidInput, Locked, NotFound, PermissionDenied
from kaifang.ratelimit import rate_label
from kaifang.settings import Settings
from kaifang.web.security import DB, SESSION_COOKIE, CurrentActor, client_ip
from kaifang.web.templating import redirect, render

router = APIRouter(include_in_schema=False)

DEMO_MODES = ("dev", "demo", "test")
MAX_PASSWORD = 1000
_ID = re.compile(r"^[0-9]{1,9}$")
TOO_MANY = "尝试过于频繁，请一分钟后再试"


# --- helpers --------------------------------------------------------------------------------------


def clean(value: str | None, limit: int = 200) -> str:
    """Form text without NUL characters (PostgreSQL refuses them), trimmed and cut to `limit`."""
    return (value or "").replace("\x00", "").strip()[:limit]


def secret(value: str | None) -> str:
    """A password exactly as typed (no trimming), within a sane length."""
    return (value or "").replace("\x00", "")[:MAX_PASSWORD]


def safe_next(value: str | None) -> str:
    """Only local paths: "/x" yes; "//evil.example", "http://…" and "/\\evil" no."""
    value = (value or "").strip()
    if value.startswith("/") and not value.startswith("//") and "\\" not in value and value.isprintable():
        return value[:500]
    return ""


def set_session_cookie(response: Response, settings: Settings, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="lax", secure=settings.cookie_secure, path="/"
    )


def start_session(request: Request, db: Session, user: User, response: Response) -> Response:
    """Open a login session for the user and hand its cookie to the browser."""
    settings = request.app.state.kf.settings
    token = accounts.create_session(
        db, settings, user, client_ip(request), request.headers.get("user-agent", "")
    )
    set_session_cookie(response, settings, token)
    return response


def allowed(request: Request, bucket: str) -> bool:
    """Count one attempt from this client IP against the login rate limit."""
    kf = request.app.state.kf
    return bool(kf.limiter.hit(kf.settings.login_rate_limit, bucket, client_ip(request)))


def demo_outbox(request: Request) -> bool:
    """Whether mail lands in the demo outbox page rather than in a real mailbox."""
    kf = request.app.state.kf
    return kf.settings.mode in DEMO_MODES and hasattr(kf.mailer, "messages")


# --- log in and out -------------------------------------------------------------------------------


def _login_page(request: Request, *, status: int = 200, **values: Any) -> Response:
    context = {
        "next": "",
        "login": "",
        "error": "",
        "unverified_email": "",
        "suspension": None,
        "show_outbox": demo_outbox(request),
    }
    return render(request, "accounts/login.html", {**context, **values}, status=status)


@router.get("/login")
def login_form(
    request: Request, actor: CurrentActor, next_: Annotated[str, Query(alias="next")] = ""
) -> Response:
    """The login form; a signed-in user goes straight on."""
    target = safe_next(next_)
    if actor.is_authenticated:
        return redirect(target or "/account")
    return _login_page(request, next=target)


@router.post("/login")
def login(
    request: Request,
    db: DB,
    actor: CurrentActor,
    login: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next_: Annotated[str, Form(alias="next")] = "",
) -> Response:
    """Check the password (the service counts failures and locks), then start a session."""
    settings = request.app.state.kf.settings
    values = {"next": safe_next(next_), "login": clean(login, 254)}
    if not allowed(request, "login"):
        return _login_page(request, status=429, error="登录" + TOO_MANY, **values)
    try:
        user = accounts.authenticate(db, settings, values["login"], secret(password), client_ip(request))
    except (InvalidInput, Locked, PermissionDenied) as exc:
        unverified = exc.email if isinstance(exc, EmailNotVerified) else ""
        suspension = exc if isinstance(exc, AccountSuspended) else None
        return _login_page(
            request,
            status=exc.status,
            error=exc.message,
            unverified_email=unverified,
            suspension=suspension,
            **values,
        )
    response = redirect(
        values["next"] or "/account", settings, f"登录成功，欢迎您，{user.display_name}", "success"
    )
    return start_session(request, db, user, response)


@router.post("/logout")
def logout(request: Request, db: DB, actor: CurrentActor) -> Response:
    """End this browser's session."""
    settings = request.app.state.kf.settings
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        accounts.end_session(db, token, actor)
    response = redirect("/", settings, "您已安全退出登录", "success")
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=settings.cookie_secure
    )
    return response


# --- registration and e-mail verification ---------------------------------------------------------


class RegisterForm(BaseModel):
    username: str = ""
    display_name: str = ""
    email: str = ""
    phone: str = ""
    user_type: str = UserType.individual
    organisation_name: str = ""
    credit_code: str = ""
    password: str = ""
    password2: str = ""

    def registration(self) -> accounts.Registration:
        return accounts.Registration(
            username=clean(self.username, 64),
            email=clean(self.email, 254),
            password=secret(self.password),
            display_name=clean(self.display_name, 200),
            user_type=clean(self.user_type, 20),
            organisation_name=clean(self.organisation_name, 200),
            credit_code=clean(self.credit_code, 40),
            phone=clean(self.phone, 30),
        )


def _register_page(
    request: Request,
    form: RegisterForm | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    form = form or RegisterForm()
    values = form.model_dump(exclude={"password", "password2"})
    context = {"form": values, "errors": errors or {}, "user_types": list(UserType)}
    return render(request, "accounts/register.html", context, status=status)


@router.get("/register")
def register_form(request: Request, actor: CurrentActor) -> Response:
    return _register_page(request)


@router.post("/register")
def register(
    request: Request, db: DB, actor: CurrentActor, form: Annotated[RegisterForm, Form()]
) -> Response:
    """Create the account and mail the verification link; the account logs in once verified."""
    kf = request.app.state.kf
    if not allowed(request, "register"):
        return _register_page(request, form, {"form": "注册" + TOO_MANY}, status=429)
    if secret(form.password) != secret(form.password2):
        return _register_page(request, form, {"password2": "两次输入的密码不一致"}, status=422)
    try:
        user = accounts.register(db, kf.mailer, kf.settings, form.registration(), ip=client_ip(request))
    except InvalidInput as exc:
        return _register_page(request, form, exc.fields or {"form": exc.message}, status=422)
    context = {"email": user.email, "show_outbox": demo_outbox(request)}
    return render(request, "accounts/register_done.html", context)


@router.get("/verify-email")
def verify_email(request: Request, db: DB, actor: CurrentActor, token: str = "") -> Response:
    """The link in the verification mail."""
    settings = request.app.state.kf.settings
    try:
        accounts.verify_email(db, clean(token, 200))
    except InvalidInput:
        context = {"show_outbox": demo_outbox(request)}
        return render(request, "accounts/verify_failed.html", context, status=400)
    return redirect("/login", settings, "邮箱验证成功，现在可以登录了", "success")


@router.post("/verify-email/resend")
def resend_verification(
    request: Request, db: DB, actor: CurrentActor, email: Annotated[str, Form()] = ""
) -> Response:
    """Send a new verification link; the answer is the same whether or not the address is known."""
    kf = request.app.state.kf
    if not allowed(request, "mail"):
        return redirect("/login", kf.settings, "发送" + TOO_MANY, "error")
    accounts.resend_verification(db, kf.mailer, kf.settings, clean(email, 254))
    message = "如果该邮箱已注册且尚未验证，我们已重新发送验证邮件，请在收件箱（含垃圾邮件箱）中查收"
    return redirect("/login", kf.settings, message, "info")


# --- password reset -------------------------------------------------------------------------------


@router.get("/forgot-password")
def forgot_password_form(request: Request, actor: CurrentActor) -> Response:
    return render(
        request,
        "accounts/forgot_password.html",
        {"sent": False, "email": "", "error": "", "show_outbox": demo_outbox(request)},
    )


@router.post("/forgot-password")
def forgot_password(
    request: Request, db: DB, actor: CurrentActor, email: Annotated[str, Form()] = ""
) -> Response:
    """Mail a reset link; the page says the same whether or not the address has an account."""
    kf = request.app.state.kf
    context = {"sent": False, "email": clean(email, 254), "error": "", "show_outbox": demo_outbox(request)}
    if not allowed(request, "mail"):
        return render(
            request, "accounts/forgot_password.html", {**context, "error": "发送" + TOO_MANY}, status=429
        )
    if not context["email"]:
        context["error"] = "请填写注册时使用的邮箱"
        return render(request, "accounts/forgot_password.html", context, status=422)
    accounts.request_password_reset(db, kf.mailer, kf.settings, str(context["email"]), ip=client_ip(request))
    return render(request, "accounts/forgot_password.html", {**context, "sent": True})


def _reset_page(
    request: Request,
    token: str,
    *,
    errors: dict[str, str] | None = None,
    link_error: str = "",
    status: int = 200,
) -> Response:
    context = {"token": token, "errors": errors or {}, "link_error": link_error}
    return render(request, "accounts/reset_password.html", context, status=status)


@router.get("/reset-password")
def reset_password_form(request: Request, actor: CurrentActor, token: str = "") -> Response:
    token = clean(token, 200)
    if not token:
        return _reset_page(request, "", link_error="重置链接不完整，请重新申请重置密码", status=400)
    return _reset_page(request, token)


@router.post("/reset-password")
def reset_password(
    request: Request,
    db: DB,
    actor: CurrentActor,
    token: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    password2: Annotated[str, Form()] = "",
) -> Response:
    """Set a new password from a mailed link; every session of the account ends."""
    settings = request.app.state.kf.settings
    token = clean(token, 200)
    if secret(password) != secret(password2):
        return _reset_page(request, token, errors={"password2": "两次输入的密码不一致"}, status=422)
    try:
        accounts.reset_password(db, settings, token, secret(password), ip=client_ip(request))
    except InvalidInput as exc:  # a refused password leaves the link usable
        if exc.fields:
            return _reset_page(request, token, errors=exc.fields, status=422)
        return _reset_page(request, token, link_error=exc.message, status=400)
    message = "密码已重置，所有设备上的登录均已退出，请使用新密码登录"
    return redirect("/login", settings, message, "success")


# --- 个人中心 -------------------------------------------------------------------------------------


def _account_page(
    request: Request, db: Session, actor: Actor, *, errors: dict[str, str] | None = None, status: int = 200
) -> Response:
    user = accounts.get_user(db, actor)
    roles: dict[str, list[str]] = {}
    for membership in sorted(user.memberships, key=lambda ms: (ms.organisation.name, ms.role)):
        roles.setdefault(membership.organisation.name, []).append(membership.role)
    keys = accounts.list_api_keys(db, actor)
    settings, limiter = request.app.state.kf.settings, request.app.state.kf.limiter
    context = {
        "user": user,
        "org_roles": roles,
        "keys": keys,
        "calls_today": {key.id: limiter.used_today(str(key.id)) for key in keys if not key.revoked_at},
        "rate_limit": rate_label(settings.api_rate_limit),
        "daily_quota": settings.api_daily_quota,
        "errors": errors or {},
    }
    return render(request, "accounts/account.html", context, status=status)


@router.get("/account")
def account(request: Request, db: DB, actor: CurrentActor) -> Response:
    """个人中心: profile, password, API keys."""
    return _account_page(request, db, actor)


@router.post("/account/password")
def change_password(
    request: Request,
    db: DB,
    actor: CurrentActor,
    old_password: Annotated[str, Form()] = "",
    new_password: Annotated[str, Form()] = "",
    new_password2: Annotated[str, Form()] = "",
) -> Response:
    """Change the password; other sessions end, this browser gets a fresh one."""
    require_login(actor)
    settings = request.app.state.kf.settings
    if secret(new_password) != secret(new_password2):
        return _account_page(
            request, db, actor, errors={"new_password2": "两次输入的新密码不一致"}, status=422
        )
    try:
        accounts.change_password(db, settings, actor, secret(old_password), secret(new_password))
    except InvalidInput as exc:
        errors = {("new_password" if k == "password" else k): v for k, v in exc.fields.items()}
        return _account_page(request, db, actor, errors=errors or {"old_password": exc.message}, status=422)
    user = db.get_one(User, actor.user_id)
    response = redirect("/account", settings, "密码已修改，其他设备上的登录已全部退出", "success")
    return start_session(request, db, user, response)


@router.post("/account/api-keys")
def create_api_key(
    request: Request, db: DB, actor: CurrentActor, name: Annotated[str, Form()] = ""
) -> Response:
    """Create a key and show it in full, this once."""
    key, plain = accounts.create_api_key(db, actor, clean(name, 100))
    response = render(request, "accounts/api_key_created.html", {"key": key, "plain": plain})
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/account/api-keys/{key_id}/revoke")
def revoke_api_key(request: Request, key_id: str, db: DB, actor: CurrentActor) -> Response:
    """Revoke one of the user's keys; programs using it are refused from now on."""
    if not _ID.match(key_id):
        raise NotFound("未找到该密钥")
    key = accounts.revoke_api_key(db, actor, int(key_id))
    message = f"密钥“{key.name}”已撤销，使用它的程序将无法再调用接口"
    return redirect("/account#api-keys", request.app.state.kf.settings, message, "success")
