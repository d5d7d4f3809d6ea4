"""Users, organisations (providers), memberships with staff roles, API keys, sessions, mail tokens."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kaifang.db import Base, UTCDateTime, utcnow


class UserType(enum.StrEnum):
    """资源利用主体 (Art. 35): citizens, legal persons and other organisations."""

    individual = "individual"  # 自然人
    legal_person = "legal_person"  # 法人
    other_org = "other_org"  # 其他组织


class SystemRole(enum.StrEnum):
    regulator = "regulator"  # 市互联网信息主管部门
    operator = "operator"  # 市大数据管理中心


class OrgType(enum.StrEnum):
    department = "department"  # 政务部门
    public_institution = "public_institution"  # 事业单位
    association = "association"  # 行业协会、学会、商会 (Art. 11)
    utility = "utility"  # 供水、供电、供气、供热、公共交通企业 (Art. 11)


class OrgRole(enum.StrEnum):
    admin = "admin"  # 单位管理员: members, roles, responsible office and staff list
    publisher = "publisher"  # 目录编制与发布
    reviewer = "reviewer"  # 申请审核


USER_TYPE_LABELS = {
    UserType.individual: "自然人",
    UserType.legal_person: "法人",
    UserType.other_org: "其他组织",
}
ORG_TYPE_LABELS = {
    OrgType.department: "政务部门",
    OrgType.public_institution: "事业单位",
    OrgType.association: "行业协会/学会/商会",
    OrgType.utility: "公共服务企业",
}
ORG_ROLE_LABELS = {
    OrgRole.admin: "单位管理员",
    OrgRole.publisher: "目录发布员",
    OrgRole.reviewer: "申请审核员",
}
SYSTEM_ROLE_LABELS = {SystemRole.regulator: "市互联网信息主管部门", SystemRole.operator: "市大数据管理中心"}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(32), unique=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    user_type: Mapped[str] = mapped_column(String(20), default=UserType.individual)
    organisation_name: Mapped[str] = mapped_column(String(200), default="")  # 法人/其他组织名称
    credit_code: Mapped[str] = mapped_column(String(18), default="")  # 统一社会信用代码
    phone: Mapped[str] = mapped_column(String(30), default="")
    system_role: Mapped[str | None] = mapped_column(String(20), default=None)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    memberships: Mapped[list[Membership]] = relationship(back_populates="user", cascade="all, delete-orphan")


class Organisation(Base):
    """A 资源提供单位: department, public institution, association or utility."""

    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    org_type: Mapped[str] = mapped_column(String(30), default=OrgType.department)
    description: Mapped[str] = mapped_column(Text, default="")
    responsible_office: Mapped[str] = mapped_column(String(200), default="")  # 牵头负责的内设机构 (Art. 30)
    contact_phone: Mapped[str] = mapped_column(String(50), default="")
    contact_email: Mapped[str] = mapped_column(String(254), default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    staff_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="organisation", cascade="all, delete-orphan"
    )
    staff: Mapped[list[StaffContact]] = relationship(
        back_populates="organisation", cascade="all, delete-orphan", order_by="StaffContact.id"
    )


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "org_id", "role", name="uq_membership"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="memberships")
    organisation: Mapped[Organisation] = relationship(back_populates="memberships")


class StaffContact(Base):
    """专人专岗: the staff list a provider reports to the regulator (Art. 30)."""

    __tablename__ = "staff_contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    position: Mapped[str] = mapped_column(String(100), default="")
    phone: Mapped[str] = mapped_column(String(50), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    duty: Mapped[str] = mapped_column(String(200), default="")

    organisation: Mapped[Organisation] = relationship(back_populates="staff")


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    user: Mapped[User] = relationship()


class AuthSession(Base):
    """A login session; the cookie carries a random token, the table only its hash."""

    __tablename__ = "auth_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")


class EmailToken(Base):
    """Single-use links for e-mail verification and password reset; only the hash is kept."""

    __tablename__ = "email_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(20))  # verify | reset
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class AuthStamp(Base):
    """One row counting the committed changes to what permissions are decided from: API keys,
    users, memberships, grants, suspensions, and the status and open type of entries, resources
    and versions. Database triggers move it (migration 0012), whoever writes; what a process
    keeps in memory about callers and versions is valid while it has not moved (`stamp.py`)."""

    __tablename__ = "auth_stamp"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)
