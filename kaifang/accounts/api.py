"""JSON routes of accounts: who am I, API keys."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from kaifang.accounts import service
from kaifang.web.security import DB, CurrentActor, RowId

router = APIRouter(prefix="/api/v1", tags=["账号"])


class Me(BaseModel):
    username: str
    display_name: str
    user_type: str
    system_role: str | None
    organisations: dict[int, list[str]]


class ApiKeyOut(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class NewApiKey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field("", max_length=100)


class CreatedApiKey(ApiKeyOut):
    key: str = Field(description="完整密钥，只显示这一次")


@router.get("/me", response_model=Me, summary="当前用户")
def me(db: DB, actor: CurrentActor) -> Me:
    user = service.get_user(db, actor)
    return Me(
        username=user.username,
        display_name=user.display_name,
        user_type=user.user_type,
        system_role=user.system_role,
        organisations={org: sorted(roles) for org, roles in actor.org_roles.items()},
    )


@router.get("/me/api-keys", response_model=list[ApiKeyOut], summary="我的 API 密钥")
def list_keys(db: DB, actor: CurrentActor) -> list[ApiKeyOut]:
    return [ApiKeyOut.model_validate(k, from_attributes=True) for k in service.list_api_keys(db, actor)]


@router.post("/me/api-keys", response_model=CreatedApiKey, status_code=201, summary="创建 API 密钥")
def create_key(body: NewApiKey, db: DB, actor: CurrentActor) -> CreatedApiKey:
    key, plain = service.create_api_key(db, actor, body.name)
    return CreatedApiKey(**ApiKeyOut.model_validate(key, from_attributes=True).model_dump(), key=plain)


@router.delete("/me/api-keys/{key_id}", response_model=ApiKeyOut, summary="撤销 API 密钥")
def revoke_key(key_id: RowId, db: DB, actor: CurrentActor) -> ApiKeyOut:
    return ApiKeyOut.model_validate(service.revoke_api_key(db, actor, key_id), from_attributes=True)
