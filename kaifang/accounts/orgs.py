"""Organisations (资源提供单位), their members and staff list, and the operator's user management."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from kaifang.accounts.models import (
    Membership,
    Organisation,
    OrgRole,
    OrgType,
    StaffContact,
    SystemRole,
    User,
    UserType,
)
from kaifang.accounts.permissions import Actor, require, require_login, require_operator, require_org_role
from kaifang.accounts.service import (
    USERNAME_RE,
    check_password_policy,
    end_all_sessions,
    hash_password,
    normalise_email,
)
from kaifang.audit.service import diff, record
from kaifang.audit.tags import Tag
from kaifang.db import utcnow
from kaifang.errors import Conflict, InvalidInput, NotFound
from kaifang.settings import Settings

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,49}$")


@dataclass
class OrgForm:
    name: str
    slug: str
    org_type: str = OrgType.department
    description: str = ""
    responsible_office: str = ""
    contact_phone: str = ""
    contact_email: str = ""


def _org_errors(db: Session, form: OrgForm, org_id: int | None) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not form.name.strip() or len(form.name) > 200:
        errors["name"] = "请填写单位名称（不超过 200 字）"
    elif db.scalar(
        select(Organisation.id).where(
            Organisation.name == form.name.strip(), Organisation.id != (org_id or 0)
        )
    ):
        errors["name"] = "已有同名单位"
    if not SLUG_RE.match(form.slug):
        errors["slug"] = "单位标识须为 2-50 位小写字母、数字或连字符"
    elif db.scalar(
        select(Organisation.id).where(Organisation.slug == form.slug, Organisation.id != (org_id or 0))
    ):
        errors["slug"] = "单位标识已被使用"
    if form.org_type not in set(OrgType):
        errors["org_type"] = "请选择单位类型"
    return errors


def create_org(db: Session, actor: Actor, form: OrgForm) -> Organisation:
    """The operator registers a provider organisation on the platform."""
    require_operator(actor)
    errors = _org_errors(db, form, None)
    if errors:
        raise InvalidInput("单位信息有误", fields=errors)
    org = Organisation(**{**form.__dict__, "name": form.name.strip()})
    db.add(org)
    db.flush()
    record(db, actor, Tag.org_created, "organisation", org.id, summary={"after": form.__dict__})
    return org


def update_org(db: Session, actor: Actor, org_id: int, form: OrgForm) -> Organisation:
    require_operator(actor)
    org = get_org(db, org_id)
    errors = _org_errors(db, form, org_id)
    if errors:
        raise InvalidInput("单位信息有误", fields=errors)
    before = {k: getattr(org, k) for k in form.__dict__}
    for k, v in form.__dict__.items():
        setattr(org, k, v.strip() if isinstance(v, str) else v)
    record(db, actor, Tag.org_updated, "organisation", org.id, summary=diff(before, form.__dict__))
    _reindex_entries(db, org)
    return org


def _reindex_entries(db: Session, org: Organisation) -> None:
    """The provider's name is searchable and its slug is a facet value: reindex its entries."""
    from kaifang.catalog import search
    from kaifang.catalog.models import Entry

    for entry in db.scalars(select(Entry).where(Entry.provider_id == org.id)):
        search.index_entry(db, entry)
    search.touch_catalog(db)


def set_org_active(db: Session, actor: Actor, org_id: int, active: bool, comment: str = "") -> Organisation:
    require_operator(actor)
    org = get_org(db, org_id)
    org.is_active = active
    record(
        db, actor, Tag.org_enabled if active else Tag.org_disabled, "organisation", org.id, comment=comment
    )
    return org


def get_org(db: Session, org_id: int) -> Organisation:
    org = db.scalar(
        select(Organisation)
        .where(Organisation.id == org_id)
        .options(selectinload(Organisation.staff), selectinload(Organisation.memberships))
    )
    if org is None:
        raise NotFound("未找到该单位")
    return org


def get_org_by_slug(db: Session, slug: str) -> Organisation:
    org = db.scalar(select(Organisation).where(Organisation.slug == slug, Organisation.is_active.is_(True)))
    if org is None:
        raise NotFound("未找到该数据提供单位")
    return org


def list_orgs(db: Session, *, include_inactive: bool = False) -> list[Organisation]:
    query = select(Organisation).order_by(Organisation.id)
    if not include_inactive:
        query = query.where(Organisation.is_active.is_(True))
    return list(db.scalars(query))


# --- members and staff list (organisation admin) ------------------------------------------------


def org_members(db: Session, actor: Actor, org_id: int) -> list[Membership]:
    require_login(actor)
    require(actor.is_member(org_id) or actor.is_supervisor, "仅本单位人员可查看成员")
    return list(
        db.scalars(
            select(Membership)
            .where(Membership.org_id == org_id)
            .options(selectinload(Membership.user))
            .order_by(Membership.user_id, Membership.role)
        )
    )


def add_member(db: Session, actor: Actor, org_id: int, username: str, role: str) -> Membership:
    """The organisation admin (or the operator) gives a registered user a staff role."""
    if not actor.is_operator:
        require_org_role(actor, org_id, OrgRole.admin)
    if role not in set(OrgRole):
        raise InvalidInput("请选择岗位：单位管理员、目录发布员或申请审核员", fields={"role": "岗位无效"})
    get_org(db, org_id)
    user = db.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise InvalidInput("该用户不存在，请先让其在平台注册", fields={"username": "用户不存在"})
    if db.scalar(
        select(Membership.id).where(
            Membership.user_id == user.id, Membership.org_id == org_id, Membership.role == role
        )
    ):
        raise Conflict("该用户已担任此岗位")
    member = Membership(user_id=user.id, org_id=org_id, role=role)
    db.add(member)
    db.flush()
    record(
        db,
        actor,
        Tag.org_member_added,
        "organisation",
        org_id,
        summary={"after": {"username": user.username, "role": role}},
    )
    return member


def remove_member(db: Session, actor: Actor, org_id: int, membership_id: int) -> None:
    if not actor.is_operator:
        require_org_role(actor, org_id, OrgRole.admin)
    member = db.get(Membership, membership_id)
    if member is None or member.org_id != org_id:
        raise NotFound("未找到该成员")
    if member.role == OrgRole.admin and member.user_id == actor.user_id:
        admins = db.scalar(
            select(func.count())
            .select_from(Membership)
            .where(Membership.org_id == org_id, Membership.role == OrgRole.admin)
        )
        if (admins or 0) <= 1:
            raise Conflict("不能移除本单位最后一名单位管理员")
    record(
        db,
        actor,
        Tag.org_member_removed,
        "organisation",
        org_id,
        summary={"before": {"user_id": member.user_id, "role": member.role}},
    )
    db.delete(member)


def org_staff(db: Session, actor: Actor, org_id: int) -> Organisation:
    """The organisation with its responsible office and staff list: for its members and the supervisors."""
    require_login(actor)
    require(actor.is_member(org_id) or actor.is_supervisor, "仅本单位人员和主管部门可查看人员名单")
    return get_org(db, org_id)


def my_orgs(db: Session, actor: Actor) -> list[Organisation]:
    """The organisations the actor works for, by name."""
    require_login(actor)
    ids = list(actor.org_roles)
    return list(db.scalars(select(Organisation).where(Organisation.id.in_(ids)).order_by(Organisation.name)))


def account_counts(db: Session, actor: Actor) -> dict[str, int]:
    """Users, active users and organisations on the platform (the supervisors' dashboard)."""
    require_login(actor)
    require(actor.is_supervisor, "仅运营和主管部门可查看平台统计")
    count = select(func.count()).select_from
    return {
        "users": db.scalar(count(User)) or 0,
        "active_users": db.scalar(count(User).where(User.is_active.is_(True))) or 0,
        "organisations": db.scalar(count(Organisation)) or 0,
    }


@dataclass
class StaffForm:
    responsible_office: str
    staff: list[dict[str, str]] = field(default_factory=list)  # name, position, phone, email, duty


def update_staff(db: Session, actor: Actor, org_id: int, form: StaffForm) -> Organisation:
    """The responsible office and staff list a provider reports (Art. 30), replaced as a whole."""
    require_org_role(actor, org_id, OrgRole.admin)
    org = get_org(db, org_id)
    if not form.responsible_office.strip():
        raise InvalidInput("请填写牵头负责开放工作的内设机构", fields={"responsible_office": "必填"})
    rows = [s for s in form.staff if any((v or "").strip() for v in s.values())]
    for i, s in enumerate(rows, 1):
        if not s.get("name", "").strip():
            raise InvalidInput(f"第 {i} 名人员缺少姓名", fields={"staff": f"第 {i} 行缺少姓名"})
    before = {"responsible_office": org.responsible_office, "staff": [s.name for s in org.staff]}
    org.responsible_office = form.responsible_office.strip()
    org.staff.clear()
    for s in rows:
        org.staff.append(
            StaffContact(
                **{k: (s.get(k) or "").strip()[:200] for k in ("name", "position", "phone", "email", "duty")}
            )
        )
    org.staff_updated_at = utcnow()
    record(
        db,
        actor,
        Tag.org_staff_updated,
        "organisation",
        org.id,
        summary=diff(
            before, {"responsible_office": org.responsible_office, "staff": [s["name"] for s in rows]}
        ),
    )
    return org


# --- the operator's user management -------------------------------------------------------------


@dataclass
class UserForm:
    username: str
    email: str
    display_name: str
    user_type: str = UserType.individual
    system_role: str | None = None
    password: str = ""
    is_active: bool = True


def list_users(db: Session, actor: Actor, q: str = "", *, limit: int = 200) -> list[User]:
    require_operator(actor)
    query = select(User).order_by(User.id).limit(limit)
    if q.strip():
        like = f"%{q.strip()}%"
        query = query.where(
            User.username.ilike(like) | User.display_name.ilike(like) | User.email.ilike(like)
        )
    return list(db.scalars(query))


def get_user_admin(db: Session, actor: Actor, user_id: int) -> User:
    require_operator(actor)
    user = db.scalar(select(User).where(User.id == user_id).options(selectinload(User.memberships)))
    if user is None:
        raise NotFound("未找到该用户")
    return user


def _check_user_form(db: Session, form: UserForm, user_id: int | None) -> dict[str, str]:
    errors: dict[str, str] = {}
    if user_id is None and not USERNAME_RE.match(form.username):
        errors["username"] = "用户名须为 3-32 位小写字母、数字、下划线或连字符"
    elif user_id is None and db.scalar(select(User.id).where(User.username == form.username)):
        errors["username"] = "该用户名已被注册"
    try:
        form.email = normalise_email(form.email)
        if db.scalar(select(User.id).where(User.email == form.email, User.id != (user_id or 0))):
            errors["email"] = "该邮箱已被使用"
    except InvalidInput as exc:
        errors.update(exc.fields)
    if not form.display_name.strip():
        errors["display_name"] = "请填写姓名或名称"
    if form.user_type not in set(UserType):
        errors["user_type"] = "用户类型无效"
    if form.system_role not in (None, *SystemRole):
        errors["system_role"] = "平台角色无效"
    return errors


def create_user(db: Session, settings: Settings, actor: Actor, form: UserForm) -> User:
    """The operator creates an account (e.g. provider staff); its e-mail counts as verified."""
    require_operator(actor)
    form.username = form.username.strip().lower()
    errors = _check_user_form(db, form, None)
    try:
        check_password_policy(form.password, form.username, settings)
    except InvalidInput as exc:
        errors.update(exc.fields)
    if errors:
        raise InvalidInput("用户信息有误", fields=errors)
    user = User(
        username=form.username,
        email=form.email,
        display_name=form.display_name.strip(),
        user_type=form.user_type,
        system_role=form.system_role or None,
        password_hash=hash_password(form.password),
        email_verified_at=utcnow(),
        is_active=form.is_active,
    )
    db.add(user)
    db.flush()
    record(
        db,
        actor,
        Tag.account_user_created,
        "user",
        user.id,
        summary={"after": {"username": user.username, "system_role": user.system_role}},
    )
    return user


def update_user(db: Session, actor: Actor, user_id: int, form: UserForm) -> User:
    require_operator(actor)
    user = get_user_admin(db, actor, user_id)
    errors = _check_user_form(db, form, user_id)
    if errors:
        raise InvalidInput("用户信息有误", fields=errors)
    fields = ("email", "display_name", "user_type", "system_role")
    before = {k: getattr(user, k) for k in fields}
    after = {
        "email": form.email,
        "display_name": form.display_name.strip(),
        "user_type": form.user_type,
        "system_role": form.system_role or None,
    }
    for k, v in after.items():
        setattr(user, k, v)
    record(db, actor, Tag.account_user_updated, "user", user.id, summary=diff(before, after))
    return user


def set_user_active(db: Session, actor: Actor, user_id: int, active: bool, comment: str = "") -> User:
    """Disable (sessions end at once, keys stop working) or re-enable an account."""
    require_operator(actor)
    user = get_user_admin(db, actor, user_id)
    if user.id == actor.user_id and not active:
        raise Conflict("不能停用自己的账号")
    user.is_active = active
    if not active:
        end_all_sessions(db, user.id)
    record(
        db,
        actor,
        Tag.account_user_enabled if active else Tag.account_user_disabled,
        "user",
        user.id,
        comment=comment,
    )
    return user
