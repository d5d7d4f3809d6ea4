"""站内消息 pages: the inbox, opening a message (which marks it read), marking all read."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from kaifang.notify import service
from kaifang.web.security import DB, CurrentActor, RowId
from kaifang.web.templating import redirect, render, settings_of

router = APIRouter(include_in_schema=False)


@router.get("/account/inbox")
def inbox(request: Request, db: DB, actor: CurrentActor) -> Response:
    """The signed-in user's messages, newest first, the unread ones marked."""
    messages = service.inbox(db, actor)
    return render(
        request,
        "notify/inbox.html",
        {"messages": messages, "unread": sum(m.read_at is None for m in messages)},
    )


@router.get("/account/inbox/{message_id}")
def open_message(request: Request, message_id: RowId, db: DB, actor: CurrentActor) -> Response:
    """Opening a message marks it read and leads to the matter it is about."""
    message = service.open_message(db, actor, message_id)
    link = message.link if message.link.startswith("/") and not message.link.startswith("//") else ""
    return redirect(link or "/account/inbox")


@router.post("/account/inbox/read")
def mark_all_read(request: Request, db: DB, actor: CurrentActor) -> Response:
    count = service.mark_all_read(db, actor)
    message = f"已将 {count} 条消息标为已读。" if count else "没有未读消息。"
    return redirect("/account/inbox", settings_of(request), message)
