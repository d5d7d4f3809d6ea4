"""Notifications (Art. 10, 22, 29: every step tells the other side): an in-platform message to each
recipient, written in the caller's transaction, and an e-mail sent only once that transaction has
committed, so a rolled-back step tells nobody. The e-mail goes out from `kaifang.notify.delivery`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from kaifang.accounts.models import Membership, OrgRole, SystemRole, User
from kaifang.accounts.permissions import Actor, require_login
from kaifang.audit.service import record
from kaifang.audit.tags import Tag
from kaifang.db import MAX_ID, utcnow
from kaifang.errors import NotFound
from kaifang.notify.models import Notification

# session.info key: the e-mails this transaction will send once it commits
PENDING_MAIL = "kaifang.notify.pending_mail"
INBOX_LIMIT = 200  # the inbox shows the newest messages; older ones stay in the table


@dataclass(frozen=True)
class PendingMail:
    """One e-mail waiting for its transaction; `message` tells whether that transaction kept it."""

    message: Notification
    to: str
    title: str
    body: str
    link: str


def notify(db: Session, user_ids: Iterable[int], title: str, body: str, link: str = "") -> None:
    """In-platform message to each user, in the caller's transaction; e-mail sent after commit.

    Disabled accounts still get the message (they see it when reinstated) but no e-mail."""
    ids = sorted({int(u) for u in user_ids})
    if not ids:
        return
    pending: list[PendingMail] = db.info.setdefault(PENDING_MAIL, [])
    for user in db.scalars(select(User).where(User.id.in_(ids)).order_by(User.id)):
        message = Notification(user_id=user.id, title=title[:200], body=body, link=link[:300])
        db.add(message)
        if user.is_active and user.email:
            pending.append(PendingMail(message, user.email, title, body, link))


def provider_staff(db: Session, provider_id: int, role: OrgRole = OrgRole.reviewer) -> list[int]:
    """The active members of a provider holding `role`; when nobody holds it, the provider's
    administrators, who assign the role, so a message to a provider is never lost."""
    for wanted in (role, OrgRole.admin):
        ids = list(
            db.scalars(
                select(Membership.user_id)
                .join(User, User.id == Membership.user_id)
                .where(Membership.org_id == provider_id, Membership.role == wanted, User.is_active)
                .distinct()
                .order_by(Membership.user_id)
            )
        )
        if ids:
            return ids
    return []


def operators(db: Session) -> list[int]:
    """The active accounts of the platform operator (市大数据管理中心)."""
    return list(
        db.scalars(
            select(User.id).where(User.system_role == SystemRole.operator, User.is_active).order_by(User.id)
        )
    )


# --- the inbox ----------------------------------------------------------------------------------


def inbox(db: Session, actor: Actor) -> list[Notification]:
    """The actor's own messages, newest first."""
    require_login(actor)
    return list(
        db.scalars(
            select(Notification)
            .where(Notification.user_id == actor.user_id)
            .order_by(Notification.id.desc())
            .limit(INBOX_LIMIT)
        )
    )


def unread_count(db: Session, user_id: int) -> int:
    """One COUNT over the (user_id, read_at) index, for the header."""
    count = db.scalar(
        select(func.count())
        .select_from(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
    )
    return int(count or 0)


def open_message(db: Session, actor: Actor, message_id: int) -> Notification:
    """The actor opens one of their messages, which marks it read; anyone else's is not found."""
    require_login(actor)
    message = db.get(Notification, message_id) if 0 < message_id <= MAX_ID else None
    if message is None or message.user_id != actor.user_id:
        raise NotFound("未找到该消息")
    if message.read_at is None:
        message.read_at = utcnow()
        record(db, actor, Tag.notify_message_read, "notification", message.id)
    return message


def mark_all_read(db: Session, actor: Actor) -> int:
    """Marks every unread message of the actor read; returns how many."""
    require_login(actor)
    result = db.execute(
        update(Notification)
        .where(Notification.user_id == actor.user_id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        record(db, actor, Tag.notify_inbox_read, "user", actor.user_id, summary={"after": {"read": count}})
    return count
