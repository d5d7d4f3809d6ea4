"""JSON routes of 有条件开放: apply, follow, review, sign (the same rules as the pages, in the
service). An API key acts as its user, so a grantee's scripts can also read the granted data."""

from __future__ import annotations

from datetime import date, datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from kaifang.access import service
from kaifang.access.models import Agreement, Application, Grant
from kaifang.web.security import DB, CurrentActor, RowId

router = APIRouter(prefix="/api/v1", tags=["有条件开放申请"])


class ApplicationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    purpose: str = Field("", max_length=2000, description="使用用途（不少于 10 个字）")
    scenario: str = Field("", max_length=2000, description="使用场景")
    period_days: int = Field(0, description="使用时限（天），1 至 365")
    security_measures: str = Field("", max_length=2000, description="安全保障措施（不少于 10 个字）")
    contact: str = Field("", max_length=200, description="联系电话或电子邮箱")
    resource_ids: list[int] = Field(default_factory=list, max_length=100, description="申请的数据资源编号")

    def form(self) -> service.ApplicationForm:
        return service.ApplicationForm(**self.model_dump())


class AgreementOut(BaseModel):
    id: int
    sha256: str = Field(description="协议文本的 SHA-256，签订时须原样提交")
    user_signed_at: datetime | None
    provider_signed_at: datetime | None


class AgreementTextOut(AgreementOut):
    text: str = Field(description="协议全文，签订的正是这份文本")


class ApplicationOut(BaseModel):
    id: int
    entry_id: int
    status: str = Field(description="submitted | returned | accepted | approved | refused | granted")
    purpose: str
    scenario: str
    period_days: int
    security_measures: str
    contact: str
    resource_ids: list[int]
    submitted_at: datetime
    accepted_at: datetime | None
    due_on: date | None = Field(description="答复期限：受理之次日起第二个工作日")
    due_estimated: bool = Field(description="该年度节假日安排尚未载入，期限按推定节假日计算")
    return_note: str
    refusal_reason: str
    refusal_basis: str
    renews_grant_id: int | None = Field(description="续期申请所续的授权编号；新申请为 null")
    agreement: AgreementOut | None


class GrantOut(BaseModel):
    id: int
    entry_id: int
    starts_on: date
    last_day: date = Field(description="授权有效的最后一天")
    revoked_at: datetime | None
    revoke_reason: str


class Comment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str = Field("", max_length=2000)


class Refusal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=2000, description="理由")
    basis: str = Field("", max_length=2000, description="依据")


class Signature(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sha256: str = Field(max_length=64, description="所签订协议文本的 SHA-256")


def _agreement(agreement: Agreement | None) -> AgreementOut | None:
    if agreement is None:
        return None
    return AgreementOut(
        id=agreement.id,
        sha256=agreement.sha256,
        user_signed_at=agreement.user_signed_at,
        provider_signed_at=agreement.provider_signed_at,
    )


def _out(a: Application) -> ApplicationOut:
    fields = {name: getattr(a, name) for name in ApplicationOut.model_fields if name != "agreement"}
    return ApplicationOut(**fields, agreement=_agreement(a.agreement))


def _grant(g: Grant) -> GrantOut:
    return GrantOut(**{name: getattr(g, name) for name in GrantOut.model_fields})


@router.post(
    "/datasets/{entry_id}/applications",
    response_model=ApplicationOut,
    status_code=201,
    summary="提交开放申请",
)
def apply(entry_id: RowId, body: ApplicationIn, db: DB, actor: CurrentActor) -> ApplicationOut:
    return _out(service.apply(db, actor, entry_id, body.form()))


@router.get("/applications", response_model=list[ApplicationOut], summary="我的开放申请")
def my_applications(db: DB, actor: CurrentActor) -> list[ApplicationOut]:
    return [_out(a) for a in service.my_applications(db, actor)]


@router.get("/applications/{application_id}", response_model=ApplicationOut, summary="开放申请详情")
def get_application(application_id: RowId, db: DB, actor: CurrentActor) -> ApplicationOut:
    return _out(service.get_application(db, actor, application_id))


@router.post(
    "/applications/{application_id}/accept", response_model=ApplicationOut, summary="受理（提供单位）"
)
def accept(application_id: RowId, db: DB, actor: CurrentActor) -> ApplicationOut:
    return _out(service.accept(db, actor, application_id))


@router.post(
    "/applications/{application_id}/return", response_model=ApplicationOut, summary="退回补正（提供单位）"
)
def return_for_completion(
    application_id: RowId, body: Comment, db: DB, actor: CurrentActor
) -> ApplicationOut:
    return _out(service.return_for_completion(db, actor, application_id, body.comment))


@router.post(
    "/applications/{application_id}/approve", response_model=ApplicationOut, summary="批准并生成使用协议"
)
def approve(application_id: RowId, db: DB, actor: CurrentActor) -> ApplicationOut:
    service.approve(db, actor, application_id)
    return _out(service.get_application(db, actor, application_id))


@router.post(
    "/applications/{application_id}/refuse",
    response_model=ApplicationOut,
    summary="不予批准（须说明理由和依据）",
)
def refuse(application_id: RowId, body: Refusal, db: DB, actor: CurrentActor) -> ApplicationOut:
    return _out(service.refuse(db, actor, application_id, body.reason, body.basis))


@router.get(
    "/applications/{application_id}/agreement", response_model=AgreementTextOut, summary="使用协议全文"
)
def get_agreement(application_id: RowId, db: DB, actor: CurrentActor) -> AgreementTextOut:
    agreement = service.get_agreement(db, actor, application_id)
    summary = _agreement(agreement)
    assert summary is not None
    return AgreementTextOut(**summary.model_dump(), text=agreement.text)


@router.post(
    "/applications/{application_id}/agreement/sign", response_model=ApplicationOut, summary="签订使用协议"
)
def sign(application_id: RowId, body: Signature, db: DB, actor: CurrentActor) -> ApplicationOut:
    service.sign(db, actor, application_id, body.sha256)
    return _out(service.get_application(db, actor, application_id))


@router.get("/grants", response_model=list[GrantOut], summary="我的使用授权")
def my_grants(db: DB, actor: CurrentActor) -> list[GrantOut]:
    return [_grant(g) for g in service.my_grants(db, actor)]


@router.get(
    "/grants/{grant_id}/renewal",
    response_model=ApplicationIn,
    summary="续期申请的预填内容（取自原申请）",
)
def renewal_form(grant_id: RowId, db: DB, actor: CurrentActor) -> ApplicationIn:
    form = service.renewal_form(db, actor, grant_id)
    return ApplicationIn(
        purpose=form.purpose,
        scenario=form.scenario,
        period_days=int(form.period_days),
        security_measures=form.security_measures,
        contact=form.contact,
        resource_ids=form.resource_ids,
    )


@router.post(
    "/grants/{grant_id}/renewal",
    response_model=ApplicationOut,
    status_code=201,
    summary="申请续期（授权有效期内或到期后 30 天内，未被撤销）",
)
def renew(grant_id: RowId, body: ApplicationIn, db: DB, actor: CurrentActor) -> ApplicationOut:
    return _out(service.renew(db, actor, grant_id, body.form()))
