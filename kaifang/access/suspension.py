"""Suspension of a user (停止提供服务, Art. 29): "经市大数据管理中心与资源提供单位核实确认后". A
provider's reviewer proposes it with the reason and the evidence; a platform operator confirms or
rejects. On confirmation the user's sessions are deleted, their API keys are refused, their grants
freeze and they cannot log in (the checks live in `access.grants`, called by `accounts.service`).
Reinstatement is proposed and confirmed the same way; grants that have not ended resume.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, selectinload

from kaifang.access.models import Application, Grant, Suspension, SuspensionStatus
from kaifang.accounts.models import AuthSession, OrgRole, User
from kaifang.accounts.permissions import Actor, require, require_login, require_operator, require_org_role
from kaifang.audit.service import record
from kaifang.audit.tags import Tag
from kaifang.db import MAX_ID, utcnow
from kaifang.errors import Conflict, InvalidInput, NotFound
from kaifang.notify.service import notify, operators, provider_staff

MAX_TEXT = 4000
LINK = "/suspensions"


def _text(value: str, name: str, label: str, errors: dict[str, str], minimum: int = 4) -> str:
    value = (value or "").strip()
    if not minimum <= len(value) <= MAX_TEXT:
        errors[name] = f"请填写{label}（{minimum} 至 {MAX_TEXT} 字）"
    return value


def _open_for(db: Session, user_id: int) -> Suspension | None:
    return db.scalar(
        select(Suspension).where(
            Suspension.user_id == user_id,
            Suspension.status.in_((SuspensionStatus.proposed, SuspensionStatus.active)),
        )
    )


def _load(db: Session, actor: Actor, suspension_id: int) -> Suspension:
    """A suspension for the supervisors and the proposing provider's staff; others get 404."""
    require_login(actor)
    suspension = db.get(Suspension, suspension_id) if 0 < suspension_id <= MAX_ID else None
    if suspension is None or not (actor.is_supervisor or actor.is_member(suspension.provider_id)):
        raise NotFound("未找到该暂停服务记录")
    return suspension


def list_suspensions(db: Session, actor: Actor) -> list[Suspension]:
    """Every suspension for the operator and the regulator; a provider's own for its staff."""
    require_login(actor)
    query = select(Suspension).options(selectinload(Suspension.user), selectinload(Suspension.provider))
    if not actor.is_supervisor:
        orgs = actor.orgs_with_role(OrgRole.reviewer)
        require(bool(orgs), "此页面仅限数据提供单位的申请审核人员和平台运营单位")
        query = query.where(Suspension.provider_id.in_(orgs))
    return list(db.scalars(query.order_by(Suspension.id.desc())))


def suspendable_users(db: Session, actor: Actor, provider_id: int) -> list[User]:
    """The users holding (or having held) a grant on the provider's entries: whom it may propose."""
    require_org_role(actor, provider_id, OrgRole.reviewer)
    return list(
        db.scalars(
            select(User)
            .join(Grant, Grant.user_id == User.id)
            .join(Application, Application.id == Grant.application_id)
            .where(Application.provider_id == provider_id)
            .distinct()
            .order_by(User.username)
        )
    )


def propose(
    db: Session, actor: Actor, provider_id: int, user_id: int, reason: str, evidence: str
) -> Suspension:
    """A provider's reviewer proposes suspending one of its grantees, with reason and evidence."""
    require_org_role(actor, provider_id, OrgRole.reviewer)
    if user_id not in {u.id for u in suspendable_users(db, actor, provider_id)}:
        raise NotFound("该用户没有本单位数据的使用授权")
    require(actor.user_id != user_id, "不能对本人提出暂停服务")
    errors: dict[str, str] = {}
    reason = _text(reason, "reason", "暂停理由（违反的平台使用要求或协议条款）", errors)
    evidence = _text(evidence, "evidence", "核实的事实和证据", errors)
    if errors:
        raise InvalidInput("暂停服务须说明理由和证据：" + "；".join(errors.values()), fields=errors)
    if _open_for(db, user_id) is not None:
        raise Conflict("该用户已有待确认或生效中的暂停服务")
    suspension = Suspension(
        user_id=user_id, provider_id=provider_id, reason=reason, evidence=evidence, proposed_by=actor.user_id
    )
    db.add(suspension)
    db.flush()
    record(
        db,
        actor,
        Tag.access_suspension_proposed,
        "suspension",
        suspension.id,
        summary={"after": {"user_id": user_id, "provider_id": provider_id, "reason": reason}},
    )
    notify(db, operators(db), "暂停服务申请待核实确认", f"数据提供单位提出暂停用户服务，理由：{reason}", LINK)
    return suspension


def _decidable(db: Session, actor: Actor, suspension_id: int) -> Suspension:
    require_operator(actor)
    return _load(db, actor, suspension_id)


def _note(note: str, label: str) -> str:
    note = (note or "").strip()
    if not 4 <= len(note) <= MAX_TEXT:
        raise InvalidInput(f"请填写{label}", fields={"note": f"请填写{label}"})
    return note


def confirm(db: Session, actor: Actor, suspension_id: int, note: str = "") -> Suspension:
    """The operator confirms after checking: sessions deleted, keys and grants stop at once."""
    suspension = _decidable(db, actor, suspension_id)
    if suspension.status != SuspensionStatus.proposed:
        raise Conflict("该暂停服务申请已处理")
    require(actor.user_id != suspension.user_id, "不能确认对本人的暂停服务")
    suspension.status, suspension.decided_by, suspension.decided_at = (
        SuspensionStatus.active,
        actor.user_id,
        utcnow(),
    )
    suspension.decision_note = (note or "").strip()[:MAX_TEXT]
    ended = db.execute(delete(AuthSession).where(AuthSession.user_id == suspension.user_id))
    record(
        db,
        actor,
        Tag.access_suspension_confirmed,
        "suspension",
        suspension.id,
        summary={"after": {"user_id": suspension.user_id, "sessions_ended": getattr(ended, "rowcount", 0)}},
        comment=suspension.decision_note,
    )
    notify(
        db,
        [suspension.user_id],
        "您的账号已被暂停使用",
        f"经数据提供单位和市大数据管理中心核实确认，平台暂停对您提供服务。原因：{suspension.reason}",
    )
    notify(db, provider_staff(db, suspension.provider_id), "暂停服务已确认", "运营单位已确认暂停服务。", LINK)
    return suspension


def reject(db: Session, actor: Actor, suspension_id: int, note: str) -> Suspension:
    """The operator does not confirm the proposal, saying why."""
    suspension = _decidable(db, actor, suspension_id)
    if suspension.status != SuspensionStatus.proposed:
        raise Conflict("该暂停服务申请已处理")
    note = _note(note, "不予确认的理由")
    suspension.status, suspension.decided_by, suspension.decided_at = (
        SuspensionStatus.rejected,
        actor.user_id,
        utcnow(),
    )
    suspension.decision_note = note
    record(db, actor, Tag.access_suspension_rejected, "suspension", suspension.id, comment=note)
    notify(db, provider_staff(db, suspension.provider_id), "暂停服务未予确认", f"运营单位意见：{note}", LINK)
    return suspension


def propose_reinstatement(db: Session, actor: Actor, suspension_id: int, reason: str) -> Suspension:
    """The provider that proposed the suspension proposes lifting it (e.g. the breach is remedied)."""
    suspension = _load(db, actor, suspension_id)
    require_org_role(actor, suspension.provider_id, OrgRole.reviewer)
    if suspension.status != SuspensionStatus.active or suspension.reinstatement_pending:
        raise Conflict("只有生效中且尚未申请恢复的暂停服务可以申请恢复")
    reason = _note(reason, "恢复服务的理由（如整改情况）")
    suspension.reinstate_reason, suspension.reinstate_note = reason, ""
    suspension.reinstate_proposed_by, suspension.reinstate_proposed_at = actor.user_id, utcnow()
    record(db, actor, Tag.access_reinstatement_proposed, "suspension", suspension.id, comment=reason)
    notify(db, operators(db), "恢复服务申请待核实确认", f"数据提供单位申请恢复用户服务，理由：{reason}", LINK)
    return suspension


def confirm_reinstatement(db: Session, actor: Actor, suspension_id: int) -> Suspension:
    """The operator confirms: the user may log in again, keys work, unexpired grants resume."""
    suspension = _decidable(db, actor, suspension_id)
    if not suspension.reinstatement_pending:
        raise Conflict("没有待确认的恢复服务申请")
    suspension.status, suspension.lifted_by, suspension.lifted_at = (
        SuspensionStatus.lifted,
        actor.user_id,
        utcnow(),
    )
    record(
        db,
        actor,
        Tag.access_reinstatement_confirmed,
        "suspension",
        suspension.id,
        summary={"after": {"user_id": suspension.user_id}},
    )
    notify(
        db, [suspension.user_id], "您的账号已恢复服务", "平台已恢复对您提供服务，未到期的使用授权继续有效。"
    )
    notify(db, provider_staff(db, suspension.provider_id), "恢复服务已确认", "运营单位已确认恢复服务。", LINK)
    return suspension


def reject_reinstatement(db: Session, actor: Actor, suspension_id: int, note: str) -> Suspension:
    """The operator keeps the suspension in force, saying why."""
    suspension = _decidable(db, actor, suspension_id)
    if not suspension.reinstatement_pending:
        raise Conflict("没有待确认的恢复服务申请")
    note = _note(note, "不予恢复的理由")
    suspension.reinstate_note = note
    suspension.reinstate_proposed_by, suspension.reinstate_proposed_at = None, None
    record(db, actor, Tag.access_reinstatement_rejected, "suspension", suspension.id, comment=note)
    notify(db, provider_staff(db, suspension.provider_id), "恢复服务未予确认", f"运营单位意见：{note}", LINK)
    return suspension


def suspended_user_ids(db: Session) -> set[int]:
    """The users suspended now (a handful at most), to show their grants as frozen."""
    return set(db.scalars(select(Suspension.user_id).where(Suspension.status == SuspensionStatus.active)))
