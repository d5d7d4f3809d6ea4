"""E-mail for notifications, sent only after the transaction that wrote them has committed.

`install` hooks the platform's sessions: `notify` queues each e-mail in the session, the
`after_commit` event sends the queue, and a rollback drops it. A message whose row did not survive
(e.g. a rolled-back savepoint) is not sent. A mail failure is logged and never reaches the request,
whose change is already committed; the in-platform message stays in the inbox either way.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, inspect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, SessionTransaction

from kaifang.db import Database
from kaifang.mail import Mailer
from kaifang.notify.service import PENDING_MAIL, PendingMail, unread_count
from kaifang.settings import Settings

if TYPE_CHECKING:
    from kaifang.app import Platform

log = logging.getLogger(__name__)


def install(platform: Platform) -> None:
    """Send notification e-mail after commit on the platform's sessions; give pages the unread count."""
    event.listen(platform.db.sessionmaker, "after_commit", partial(_send, platform.mailer, platform.settings))
    platform.templates.globals["unread_messages"] = partial(_unread_for_page, platform.db)


@event.listens_for(Session, "after_soft_rollback")
def _drop(session: Session, previous: SessionTransaction) -> None:
    """The whole transaction rolled back: nothing it queued is sent. A rolled-back savepoint keeps
    the queue; `_send` skips the messages whose rows went with it."""
    if previous.parent is None:
        session.info.pop(PENDING_MAIL, None)


def compose(settings: Settings, mail: PendingMail) -> tuple[str, str]:
    """Subject and body of the e-mail for one message."""
    lines = [mail.body, ""]
    if mail.link:
        lines.append(f"查看详情：{settings.base_url.rstrip('/')}{mail.link}")
    lines.append(f"此邮件由{settings.site_name}自动发送，消息同时保存在平台“站内消息”中。")
    return f"【{settings.site_name}】{mail.title}", "\n".join(lines)


def _send(mailer: Mailer, settings: Settings, session: Session) -> None:
    for mail in session.info.pop(PENDING_MAIL, []):
        if not inspect(mail.message).persistent:
            continue  # its row went with a rolled-back savepoint
        subject, body = compose(settings, mail)
        try:
            mailer.send(mail.to, subject, body)
        except Exception:  # the change is committed; a mail outage must not fail it
            log.exception("notification e-mail to user %s failed", mail.message.user_id)


def _unread_for_page(database: Database, request: Any) -> int:
    """The signed-in user's unread count for the header, counted once per request."""
    current = getattr(request.state, "current_user", None)
    if current is None:
        return 0
    cached = getattr(request.state, "unread_messages", None)
    if cached is None:
        try:
            with database.sessionmaker() as session:
                cached = unread_count(session, current.id)
        except SQLAlchemyError:  # the header must not break a page (e.g. the database error page)
            log.exception("unread count failed")
            cached = 0
        request.state.unread_messages = cached
    return int(cached)
