"""Who is acting, and what they may do. The service layer is the only place these are checked."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from kaifang.accounts.models import OrgRole, SystemRole
from kaifang.errors import NotAuthenticated, PermissionDenied


class Permission(enum.StrEnum):
    """`scope:resource:action`, the vocabulary of permission checks and of the permission tests."""

    catalog_entry_create = "catalog:entry:create"
    catalog_entry_edit = "catalog:entry:edit"
    catalog_entry_submit = "catalog:entry:submit"
    catalog_entry_confirm = "catalog:entry:confirm"
    catalog_entry_return = "catalog:entry:return"
    catalog_entry_publish = "catalog:entry:publish"
    catalog_entry_retire = "catalog:entry:retire"
    catalog_entry_history = "catalog:entry:history"
    catalog_taxonomy_manage = "catalog:taxonomy:manage"
    accounts_user_manage = "accounts:user:manage"
    accounts_org_manage = "accounts:org:manage"
    accounts_members_manage = "accounts:members:manage"


@dataclass(frozen=True)
class Actor:
    """The authenticated principal of one request (or of a shell command)."""

    user_id: int | None = None
    username: str = "anonymous"
    system_role: str | None = None
    # organisation id -> roles held there
    org_roles: dict[int, frozenset[str]] = field(default_factory=dict)
    api_key_id: int | None = None
    ip: str = ""
    # entry id -> grant id of the user's grants in force (有条件开放, Art. 10)
    grants: dict[int, int] = field(default_factory=dict)

    @property
    def is_authenticated(self) -> bool:
        return self.user_id is not None

    @property
    def is_regulator(self) -> bool:
        return self.system_role == SystemRole.regulator

    @property
    def is_operator(self) -> bool:
        return self.system_role == SystemRole.operator

    @property
    def is_supervisor(self) -> bool:
        """Regulator and operator see every entry in every state."""
        return self.is_regulator or self.is_operator

    @property
    def is_provider_staff(self) -> bool:
        return bool(self.org_roles)

    def has_org_role(self, org_id: int, *roles: str) -> bool:
        held = self.org_roles.get(org_id, frozenset())
        return any(role in held for role in roles)

    def is_member(self, org_id: int) -> bool:
        return org_id in self.org_roles

    def orgs_with_role(self, *roles: str) -> list[int]:
        return [org for org, held in self.org_roles.items() if any(r in held for r in roles)]


ANONYMOUS = Actor()
SYSTEM = Actor(user_id=None, username="system")


def require_login(actor: Actor) -> None:
    if not actor.is_authenticated:
        raise NotAuthenticated("请先登录")


def require(condition: bool, message: str = "您没有执行此操作的权限") -> None:
    if not condition:
        raise PermissionDenied(message)


def require_regulator(actor: Actor) -> None:
    require_login(actor)
    require(actor.is_regulator, "此操作仅限市互联网信息主管部门")


def require_operator(actor: Actor) -> None:
    require_login(actor)
    require(actor.is_operator, "此操作仅限市大数据管理中心")


def require_org_role(actor: Actor, org_id: int, *roles: OrgRole) -> None:
    require_login(actor)
    require(actor.has_org_role(org_id, *roles), "您不是该单位的相应岗位人员")
