"""Accounts: registration, login, sessions, mail links, API keys. No HTTP in here.

Passwords are hashed with argon2; session tokens, mail tokens and API keys are random and only
their SHA-256 is stored (they carry 256 bits of entropy, so a slow hash adds nothing).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, replace
from datetime import date, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session, selectinload

from kaifang.access.grants import (
    AccountSuspended,
    active_grant_ids,
    check_not_suspended,
    city_today,
    suspended_flag,
)
from kaifang.accounts.models import (
    ApiKey,
    AuthSession,
    EmailToken,
    Membership,
    User,
    UserType,
)
from kaifang.accounts.permissions import Actor, require_login
from kaifang.accounts.stamp import StampedCache, stamp_of
from kaifang.accounts.stamp import cache as stamped_cache
from kaifang.audit.service import record
from kaifang.audit.tags import Tag
from kaifang.db import utcnow
from kaifang.errors import Conflict, EmailNotVerified, InvalidInput, Locked, NotFound, PermissionDenied
from kaifang.mail import Mailer
from kaifang.settings import Settings

_hasher = PasswordHasher()
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{2,31}$")
COMMON_PASSWORDS = frozenset(
    {"password", "123456", "12345678", "qwerty", "abc123", "111111", "iloveyou", "admin", "woaini", "kaifang"}
)
API_KEY_PREFIX = "kf_"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def check_password_policy(password: str, username: str, settings: Settings) -> None:
    """Length, three of four character classes, not the user name, not a common password."""
    problems = []
    if len(password) < settings.password_min_length:
        problems.append(f"至少 {settings.password_min_length} 个字符")
    classes = sum(bool(re.search(p, password)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^a-zA-Z0-9]"))
    if classes < 3:
        problems.append("须包含大写字母、小写字母、数字、符号中的至少三类")
    lowered = password.lower()
    if username and username.lower() in lowered:
        problems.append("不得包含用户名")
    if any(common in lowered for common in COMMON_PASSWORDS):
        problems.append("不得使用常见弱密码")
    if problems:
        raise InvalidInput("密码不符合要求：" + "；".join(problems), fields={"password": "；".join(problems)})


CREDIT_CODE_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def valid_credit_code(code: str) -> bool:
    """统一社会信用代码 (GB 32100-2015): 18 characters, the last a check character."""
    if len(code) != 18 or any(c not in CREDIT_CODE_CHARS for c in code):
        return False
    total = sum(CREDIT_CODE_CHARS.index(c) * w for c, w in zip(code[:17], CREDIT_CODE_WEIGHTS, strict=True))
    return CREDIT_CODE_CHARS[(31 - total % 31) % 31] == code[17]


def normalise_email(email: str) -> str:
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise InvalidInput("邮箱地址格式不正确", fields={"email": "邮箱地址格式不正确"}) from exc


@dataclass
class Registration:
    username: str
    email: str
    password: str
    display_name: str
    user_type: str = UserType.individual
    organisation_name: str = ""
    credit_code: str = ""
    phone: str = ""


def _validate_registration(db: Session, form: Registration, settings: Settings) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not USERNAME_RE.match(form.username):
        errors["username"] = "用户名须为 3-32 位小写字母、数字、下划线或连字符，并以字母或数字开头"
    elif db.scalar(select(User.id).where(User.username == form.username)):
        errors["username"] = "该用户名已被注册"
    try:
        form.email = normalise_email(form.email)
        if db.scalar(select(User.id).where(User.email == form.email)):
            errors["email"] = "该邮箱已被注册"
    except InvalidInput as exc:
        errors.update(exc.fields)
    if not form.display_name.strip() or len(form.display_name) > 100:
        errors["display_name"] = "请填写姓名或名称（不超过 100 字）"
    if form.user_type not in set(UserType):
        errors["user_type"] = "请选择用户类型：自然人、法人或其他组织"
    elif form.user_type != UserType.individual:
        if not form.organisation_name.strip():
            errors["organisation_name"] = "法人和其他组织须填写单位名称"
        form.credit_code = form.credit_code.strip().upper()
        if not valid_credit_code(form.credit_code):
            errors["credit_code"] = "统一社会信用代码应为 18 位且校验位正确"
    try:
        check_password_policy(form.password, form.username, settings)
    except InvalidInput as exc:
        errors.update(exc.fields)
    return errors


def register(db: Session, mailer: Mailer, settings: Settings, form: Registration, ip: str = "") -> User:
    """Anyone may register as 自然人, 法人 or 其他组织; the account logs in once the e-mail is verified."""
    form.username = form.username.strip().lower()
    errors = _validate_registration(db, form, settings)
    if errors:
        raise InvalidInput("注册信息有误，请按提示修改", fields=errors)
    user = User(
        username=form.username,
        email=form.email,
        display_name=form.display_name.strip(),
        password_hash=hash_password(form.password),
        user_type=form.user_type,
        organisation_name=form.organisation_name.strip(),
        credit_code=form.credit_code,
        phone=form.phone.strip()[:30],
    )
    db.add(user)
    db.flush()
    record(
        db,
        Actor(user_id=user.id, username=user.username, ip=ip),
        Tag.account_user_registered,
        "user",
        user.id,
        summary={"after": {"username": user.username, "user_type": user.user_type}},
    )
    send_verification(db, mailer, settings, user)
    return user


def _issue_token(db: Session, settings: Settings, user: User, purpose: str) -> str:
    token = secrets.token_urlsafe(32)
    db.add(
        EmailToken(
            user_id=user.id,
            purpose=purpose,
            token_hash=sha256(token),
            expires_at=utcnow() + timedelta(hours=settings.email_token_hours),
        )
    )
    return token


def send_verification(db: Session, mailer: Mailer, settings: Settings, user: User) -> None:
    token = _issue_token(db, settings, user, "verify")
    link = f"{settings.base_url}/verify-email?token={token}"
    mailer.send(
        user.email,
        f"【{settings.site_name}】请验证您的邮箱",
        f"{user.display_name}，您好：\n\n请在 {settings.email_token_hours} 小时内打开以下链接完成邮箱验证：\n"
        f"{link}\n\n如果这不是您本人的操作，请忽略本邮件。\n",
    )


def resend_verification(db: Session, mailer: Mailer, settings: Settings, email: str) -> None:
    """Silent whatever the address: the answer must not reveal which addresses have accounts."""
    user = db.scalar(select(User).where(User.email == email.strip().lower()))
    if user is not None and user.email_verified_at is None and user.is_active:
        send_verification(db, mailer, settings, user)


def _find_token(db: Session, token: str, purpose: str) -> EmailToken:
    row = db.scalar(
        select(EmailToken).where(EmailToken.token_hash == sha256(token), EmailToken.purpose == purpose)
    )
    if row is None or row.used_at is not None or row.expires_at < utcnow():
        raise InvalidInput("链接无效或已过期，请重新申请")
    return row


def _use_token(db: Session, token: str, purpose: str) -> EmailToken:
    row = _find_token(db, token, purpose)
    row.used_at = utcnow()
    return row


def verify_email(db: Session, token: str) -> User:
    row = _use_token(db, token, "verify")
    user = db.get_one(User, row.user_id)
    user.email_verified_at = utcnow()
    record(db, Actor(user_id=user.id, username=user.username), Tag.account_email_verified, "user", user.id)
    return user


def authenticate(db: Session, settings: Settings, login: str, password: str, ip: str = "") -> User:
    """Check a password login, counting failures and locking the account after too many.

    A refused login commits its failure count before raising: the count must survive the refusal.
    """
    login = login.strip().lower()
    user = db.scalar(select(User).where((User.username == login) | (User.email == login)))
    now = utcnow()
    if user is None:
        verify_password(_dummy_hash(), password)  # same time as a real check: no user enumeration by timing
        record(
            db,
            Actor(username=login[:64], ip=ip),
            Tag.account_login_failed,
            "user",
            "",
            comment="unknown user",
        )
        db.commit()
        raise InvalidInput("用户名或密码错误")
    actor = Actor(user_id=user.id, username=user.username, ip=ip)
    if user.locked_until and user.locked_until > now:
        minutes = max(1, int((user.locked_until - now).total_seconds() // 60) + 1)
        raise Locked(f"登录失败次数过多，账号已临时锁定，请 {minutes} 分钟后再试或通过“忘记密码”重置")
    if not verify_password(user.password_hash, password):
        user.failed_logins += 1
        record(
            db,
            actor,
            Tag.account_login_failed,
            "user",
            user.id,
            summary={"failed_logins": user.failed_logins},
        )
        if user.failed_logins >= settings.login_max_failures:
            user.locked_until = now + timedelta(minutes=settings.login_lock_minutes)
            user.failed_logins = 0
            record(db, actor, Tag.account_login_locked, "user", user.id)
        db.commit()
        raise InvalidInput("用户名或密码错误")
    if not user.is_active:
        raise PermissionDenied("该账号已停用，如有疑问请联系平台运营单位")
    try:
        check_not_suspended(db, user.id)
    except AccountSuspended:
        record(db, actor, Tag.account_login_failed, "user", user.id, comment="suspended")
        db.commit()
        raise
    if user.email_verified_at is None:
        raise EmailNotVerified("邮箱尚未验证，请打开验证邮件中的链接；也可以重新发送验证邮件", user.email)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    record(db, actor, Tag.account_login_succeeded, "user", user.id)
    return user


_DUMMY: list[str] = []


def _dummy_hash() -> str:
    if not _DUMMY:
        _DUMMY.append(hash_password(secrets.token_hex(16)))
    return _DUMMY[0]


def create_session(db: Session, settings: Settings, user: User, ip: str = "", user_agent: str = "") -> str:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    db.add(
        AuthSession(
            token_hash=sha256(token),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=settings.session_max_hours),
            ip=ip,
            user_agent=user_agent[:300],
        )
    )
    return token


def resolve_session(db: Session, settings: Settings, token: str) -> User | None:
    """The user of a live session, or None if it ended, expired or sat idle too long."""
    # Session, user and suspension in one query: this runs on every page a signed-in user opens.
    found = db.execute(
        select(AuthSession, User, suspended_flag(User.id))
        .join(User, User.id == AuthSession.user_id)
        .where(AuthSession.token_hash == sha256(token))
    ).first()
    now = utcnow()
    if found is None:
        return None
    row, user, suspended = found
    if row.ended_at is not None or row.expires_at < now:
        return None
    if now - row.last_seen_at > timedelta(minutes=settings.session_idle_minutes):
        row.ended_at = now
        return None
    if not user.is_active or suspended:
        return None
    if now - row.last_seen_at > timedelta(seconds=60):  # one write a minute, not one per request
        row.last_seen_at = now
    return user


def end_session(db: Session, token: str, actor: Actor) -> None:
    row = db.scalar(select(AuthSession).where(AuthSession.token_hash == sha256(token)))
    if row is not None and row.ended_at is None:
        row.ended_at = utcnow()
        record(db, actor, Tag.account_logout, "user", row.user_id)


def end_all_sessions(db: Session, user_id: int) -> None:
    db.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.ended_at.is_(None))
        .values(ended_at=utcnow())
    )


def request_password_reset(db: Session, mailer: Mailer, settings: Settings, email: str, ip: str = "") -> None:
    """Mail a reset link if the address has an account; the caller says the same thing either way."""
    user = db.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or not user.is_active:
        return
    token = _issue_token(db, settings, user, "reset")
    record(
        db,
        Actor(user_id=user.id, username=user.username, ip=ip),
        Tag.account_password_reset_requested,
        "user",
        user.id,
    )
    mailer.send(
        user.email,
        f"【{settings.site_name}】重置密码",
        f"{user.display_name}，您好：\n\n请在 {settings.email_token_hours} 小时内打开以下链接设置新密码：\n"
        f"{settings.base_url}/reset-password?token={token}\n\n如果这不是您本人的操作，请忽略本邮件，"
        "您的密码不会改变。\n",
    )


def reset_password(db: Session, settings: Settings, token: str, new_password: str, ip: str = "") -> User:
    row = _find_token(db, token, "reset")
    user = db.get_one(User, row.user_id)
    check_password_policy(new_password, user.username, settings)  # a refused password keeps the link usable
    row.used_at = utcnow()
    _set_password(db, user, new_password, Actor(user_id=user.id, username=user.username, ip=ip))
    # Following the link proves control of the mailbox.
    user.email_verified_at = user.email_verified_at or utcnow()
    user.locked_until = None
    user.failed_logins = 0
    return user


def change_password(db: Session, settings: Settings, actor: Actor, old: str, new: str) -> None:
    require_login(actor)
    user = db.get_one(User, actor.user_id)
    if not verify_password(user.password_hash, old):
        raise InvalidInput("原密码不正确", fields={"old_password": "原密码不正确"})
    check_password_policy(new, user.username, settings)
    _set_password(db, user, new, actor)


def _set_password(db: Session, user: User, password: str, actor: Actor) -> None:
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    end_all_sessions(db, user.id)
    record(db, actor, Tag.account_password_changed, "user", user.id)


# --- API keys ---------------------------------------------------------------------------------


def create_api_key(db: Session, actor: Actor, name: str) -> tuple[ApiKey, str]:
    """A new key for the acting user; the plain key is returned once and never stored."""
    require_login(actor)
    assert actor.user_id is not None
    name = name.strip() or "默认密钥"
    if len(name) > 100:
        raise InvalidInput("密钥名称不超过 100 字", fields={"name": "密钥名称不超过 100 字"})
    active = db.scalar(
        select(func.count())
        .select_from(ApiKey)
        .where(ApiKey.user_id == actor.user_id, ApiKey.revoked_at.is_(None))
    )
    if (active or 0) >= 20:
        raise Conflict("每个账号最多同时持有 20 个有效密钥，请先撤销不用的密钥")
    return issue_api_key(db, actor, actor.user_id, name)


def issue_api_key(db: Session, actor: Actor, user_id: int, name: str) -> tuple[ApiKey, str]:
    prefix = secrets.token_hex(4)
    plain = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(user_id=user_id, name=name, prefix=prefix, key_hash=sha256(plain))
    db.add(key)
    db.flush()
    record(
        db,
        actor,
        Tag.account_api_key_created,
        "api_key",
        key.id,
        summary={"after": {"name": name, "prefix": prefix, "user_id": user_id}},
    )
    return key, plain


def list_api_keys(db: Session, actor: Actor) -> list[ApiKey]:
    require_login(actor)
    return list(db.scalars(select(ApiKey).where(ApiKey.user_id == actor.user_id).order_by(ApiKey.id.desc())))


def revoke_api_key(db: Session, actor: Actor, key_id: int) -> ApiKey:
    require_login(actor)
    key = db.get(ApiKey, key_id)
    if key is None or (key.user_id != actor.user_id and not actor.is_operator):
        raise NotFound("未找到该密钥")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        record(db, actor, Tag.account_api_key_revoked, "api_key", key.id, summary={"prefix": key.prefix})
    return key


@dataclass(frozen=True)
class KeyOwner:
    """Who holds a valid API key: what the call's actor is built from."""

    user_id: int
    username: str
    display_name: str
    system_role: str | None
    api_key_id: int


# Built once (SQLAlchemy keeps the compiled form of a statement object): these run on every API
# call, and a statement built per call cost more than running it.
_KEY_OWNER = (
    select(
        ApiKey.id,
        ApiKey.key_hash,
        ApiKey.revoked_at,
        ApiKey.last_used_at,
        User.id,
        User.username,
        User.display_name,
        User.system_role,
        User.is_active,
        suspended_flag(User.id),  # in the same query: no extra round trip for a rare state
    )
    .join(User, User.id == ApiKey.user_id)
    .where(ApiKey.prefix == bindparam("prefix"))
)
_ROLES = select(Membership.org_id, Membership.role).where(Membership.user_id == bindparam("user_id"))


def resolve_api_key(db: Session, plain: str) -> KeyOwner | None:
    """The owner of a valid, unrevoked key of an active account."""
    parts = plain.strip().split("_")
    if len(parts) < 3 or not plain.startswith(API_KEY_PREFIX):
        return None
    found = db.execute(_KEY_OWNER, {"prefix": parts[1]}).first()
    if found is None:
        return None
    (
        key_id,
        key_hash,
        revoked_at,
        last_used_at,
        user_id,
        username,
        display_name,
        system_role,
        is_active,
        suspended,
    ) = found
    if revoked_at is not None or not hmac.compare_digest(key_hash, sha256(plain.strip())):
        return None
    if not is_active:
        return None
    if suspended:
        check_not_suspended(db, user_id)  # a suspended user's keys answer why, not "invalid key"
    now = utcnow()
    if last_used_at is None or now - last_used_at > timedelta(seconds=60):
        db.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))
    return KeyOwner(user_id, username, display_name, system_role, key_id)


_callers: StampedCache[str, tuple[KeyOwner, Actor]] = stamped_cache(10_000)


def api_caller(db: Session, plain: str, ip: str = "") -> tuple[KeyOwner, Actor] | None:
    """The owner and the actor of a valid API key, or None.

    Kept in memory, by the key's hash, while the auth stamp has not moved and the city day is the
    same (`stamp.py`): a revoked key, a suspension, a membership or a grant changed anywhere is
    seen by the next call. `last_used_at` is written when the key is looked up again, at least
    once a minute of use.
    """
    digest, day = sha256(plain.strip()), city_today()
    stamp = stamp_of(db)
    kept = _callers.get(digest, stamp, day)
    if kept is None:
        owner = resolve_api_key(db, plain)
        if owner is None:
            return None
        actor = actor_of(
            db, owner.user_id, owner.username, owner.system_role, api_key_id=owner.api_key_id, today=day
        )
        kept = (owner, actor)
        _callers.put(digest, stamp, kept, day)
    owner, actor = kept
    return owner, replace(actor, ip=ip)


# --- the acting principal -----------------------------------------------------------------------


def actor_for(db: Session, user: User | None, *, api_key_id: int | None = None, ip: str = "") -> Actor:
    if user is None:
        return Actor(ip=ip)
    return actor_of(db, user.id, user.username, user.system_role, api_key_id=api_key_id, ip=ip)


def actor_of(
    db: Session,
    user_id: int,
    username: str,
    system_role: str | None,
    *,
    api_key_id: int | None = None,
    ip: str = "",
    today: date | None = None,
) -> Actor:
    """The actor of a signed-in user: their roles in organisations and their grants in force."""
    roles: dict[int, set[str]] = {}
    for org_id, role in db.execute(_ROLES, {"user_id": user_id}):
        roles.setdefault(org_id, set()).add(role)
    return Actor(
        user_id=user_id,
        username=username,
        system_role=system_role,
        org_roles={k: frozenset(v) for k, v in roles.items()},
        api_key_id=api_key_id,
        ip=ip,
        grants=active_grant_ids(db, user_id, today),
    )


def get_user(db: Session, actor: Actor) -> User:
    require_login(actor)
    user = db.scalar(select(User).where(User.id == actor.user_id).options(selectinload(User.memberships)))
    if user is None:
        raise NotFound("用户不存在")
    return user
