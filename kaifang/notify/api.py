"""JSON route of 站内消息: a user's (or their API key's) own messages."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from kaifang.notify import service
from kaifang.web.security import DB, CurrentActor

router = APIRouter(prefix="/api/v1", tags=["站内消息"])


class NotificationOut(BaseModel):
    id: int
    title: str
    body: str
    link: str = Field(description="相关事项在平台上的路径，如 /applications/12")
    created_at: datetime
    read_at: datetime | None = Field(description="已读时间；未读为 null")


@router.get("/notifications", response_model=list[NotificationOut], summary="我的站内消息（最新在前）")
def notifications(db: DB, actor: CurrentActor) -> list[NotificationOut]:
    return [
        NotificationOut(
            id=m.id, title=m.title, body=m.body, link=m.link, created_at=m.created_at, read_at=m.read_at
        )
        for m in service.inbox(db, actor)
    ]
