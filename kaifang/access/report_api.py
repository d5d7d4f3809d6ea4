"""JSON routes for use reports, compliance checks, suspensions and the regulator's statistics (the
same service functions as the pages)."""

from __future__ import annotations

from datetime import date, datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from kaifang.access import reports, stats, suspension
from kaifang.access.models import ComplianceCheck, Suspension
from kaifang.web.security import DB, CurrentActor, RowId

router = APIRouter(prefix="/api/v1", tags=["有条件开放：报告、核查、暂停服务、统计"])


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    work: str = Field("", max_length=4000, description="使用情况（不少于 10 个字）")
    results: str = Field("", max_length=4000, description="成果")
    links: str = Field("", max_length=2000, description="相关链接，空白分隔，http(s):// 开头")


class PointOut(BaseModel):
    point: int
    due_on: date
    final: bool = Field(description="期末报告")
    state: str = Field(description="upcoming | due | overdue（逾期未报） | submitted | accepted | needs_more")
    report_id: int | None
    work: str
    results: str
    links: str
    attachment_name: str = Field(description="附件文件名（网页提交时可上传附件）；空为无附件")
    submitted_at: datetime | None
    review_note: str


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    accepted: bool = Field(description="true 认可；false 需补充（须填写 note）")
    note: str = Field("", max_length=2000)


class CheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    checked_on: str = Field("", max_length=20, description="核查日期 YYYY-MM-DD")
    method: str = Field("", max_length=200, description="核查方式")
    finding: str = Field("", max_length=4000, description="核查发现")
    conclusion: str = Field("", max_length=20, description="compliant（合规）| non_compliant（不合规）")
    follow_up: str = Field("", max_length=4000, description="后续措施（不合规时必填）")


class CheckOut(BaseModel):
    id: int
    checked_on: date
    method: str
    finding: str
    conclusion: str
    follow_up: str
    recorded_at: datetime


class ProposalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider_id: int = Field(ge=1, le=2**31 - 1)
    user_id: int = Field(ge=1, le=2**31 - 1)
    reason: str = Field("", max_length=4000)
    evidence: str = Field("", max_length=4000)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field("", max_length=4000)


class SuspensionOut(BaseModel):
    id: int
    user_id: int
    provider_id: int
    status: str = Field(description="proposed | active | rejected | lifted")
    reason: str
    evidence: str
    proposed_at: datetime
    decided_at: datetime | None
    decision_note: str
    reinstatement_pending: bool
    reinstate_reason: str
    lifted_at: datetime | None


class DueOut(BaseModel):
    id: int
    entry_id: int
    accepted_at: datetime | None
    due_on: date | None


class StatsOut(BaseModel):
    provider_id: int
    provider_name: str
    received: int
    accepted: int
    decided: int
    median_hours: float | None
    p90_hours: float | None
    in_time_share: float | None = Field(description="期限内答复的比例（0 至 1）")
    due_soon: list[DueOut]
    overdue: list[DueOut]


def _point(p: reports.ReportPoint) -> PointOut:
    r = p.report
    return PointOut(
        point=p.number,
        due_on=p.due_on,
        final=p.final,
        state=p.state,
        report_id=r.id if r else None,
        work=r.work if r else "",
        results=r.results if r else "",
        links=r.links if r else "",
        attachment_name=r.attachment_name if r else "",
        submitted_at=r.submitted_at if r else None,
        review_note=r.review_note if r else "",
    )


def _check(c: ComplianceCheck) -> CheckOut:
    return CheckOut(**{name: getattr(c, name) for name in CheckOut.model_fields})


def _suspension(s: Suspension) -> SuspensionOut:
    return SuspensionOut(**{name: getattr(s, name) for name in SuspensionOut.model_fields})


@router.get(
    "/grants/{grant_id}/reports", response_model=list[PointOut], summary="授权的报告时点和使用情况报告"
)
def grant_reports(grant_id: RowId, db: DB, actor: CurrentActor) -> list[PointOut]:
    return [_point(p) for p in reports.grant_points(db, actor, grant_id)]


@router.post(
    "/grants/{grant_id}/reports/{point}", response_model=PointOut, summary="提交使用情况报告（被授权人）"
)
def file_report(grant_id: RowId, point: RowId, body: ReportIn, db: DB, actor: CurrentActor) -> PointOut:
    reports.file_report(db, actor, grant_id, point, reports.ReportForm(**body.model_dump()))
    return next(_point(p) for p in reports.grant_points(db, actor, grant_id) if p.number == point)


@router.post("/reports/{report_id}/review", response_model=PointOut, summary="审阅使用情况报告（提供单位）")
def review_report(report_id: RowId, body: ReviewIn, db: DB, actor: CurrentActor) -> PointOut:
    report = reports.review_report(db, actor, report_id, body.accepted, body.note)
    points = reports.grant_points(db, actor, report.grant_id)
    return next(_point(p) for p in points if p.number == report.point)


@router.get("/grants/{grant_id}/checks", response_model=list[CheckOut], summary="履约核查记录")
def checks(grant_id: RowId, db: DB, actor: CurrentActor) -> list[CheckOut]:
    return [_check(c) for c in reports.compliance_checks(db, actor, grant_id)]


@router.post(
    "/grants/{grant_id}/checks", response_model=CheckOut, status_code=201, summary="记录履约核查（提供单位）"
)
def record_check(grant_id: RowId, body: CheckIn, db: DB, actor: CurrentActor) -> CheckOut:
    return _check(reports.record_check(db, actor, grant_id, reports.CheckForm(**body.model_dump())))


@router.get("/suspensions", response_model=list[SuspensionOut], summary="暂停服务记录")
def suspensions(db: DB, actor: CurrentActor) -> list[SuspensionOut]:
    return [_suspension(s) for s in suspension.list_suspensions(db, actor)]


@router.post(
    "/suspensions", response_model=SuspensionOut, status_code=201, summary="提出暂停服务（提供单位）"
)
def propose(body: ProposalIn, db: DB, actor: CurrentActor) -> SuspensionOut:
    return _suspension(
        suspension.propose(db, actor, body.provider_id, body.user_id, body.reason, body.evidence)
    )


@router.post(
    "/suspensions/{suspension_id}/confirm", response_model=SuspensionOut, summary="确认暂停服务（运营单位）"
)
def confirm(suspension_id: RowId, body: NoteIn, db: DB, actor: CurrentActor) -> SuspensionOut:
    return _suspension(suspension.confirm(db, actor, suspension_id, body.note))


@router.post(
    "/suspensions/{suspension_id}/reject", response_model=SuspensionOut, summary="不予确认（运营单位）"
)
def reject(suspension_id: RowId, body: NoteIn, db: DB, actor: CurrentActor) -> SuspensionOut:
    return _suspension(suspension.reject(db, actor, suspension_id, body.note))


@router.post(
    "/suspensions/{suspension_id}/reinstate", response_model=SuspensionOut, summary="提出恢复服务（提供单位）"
)
def reinstate(suspension_id: RowId, body: NoteIn, db: DB, actor: CurrentActor) -> SuspensionOut:
    return _suspension(suspension.propose_reinstatement(db, actor, suspension_id, body.note))


@router.post(
    "/suspensions/{suspension_id}/reinstate/confirm",
    response_model=SuspensionOut,
    summary="确认恢复服务（运营单位）",
)
def confirm_reinstatement(suspension_id: RowId, db: DB, actor: CurrentActor) -> SuspensionOut:
    return _suspension(suspension.confirm_reinstatement(db, actor, suspension_id))


@router.post(
    "/suspensions/{suspension_id}/reinstate/reject",
    response_model=SuspensionOut,
    summary="不予恢复服务（运营单位）",
)
def reject_reinstatement(suspension_id: RowId, body: NoteIn, db: DB, actor: CurrentActor) -> SuspensionOut:
    return _suspension(suspension.reject_reinstatement(db, actor, suspension_id, body.note))


def _due(a: object) -> DueOut:
    return DueOut(**{name: getattr(a, name) for name in DueOut.model_fields})


@router.get("/access/stats", response_model=list[StatsOut], summary="开放申请办理时效（监管）")
def access_stats(db: DB, actor: CurrentActor) -> list[StatsOut]:
    """Per provider: received, accepted, decided, median and 90th-percentile hours from acceptance to
    decision, share decided within the deadline, and the due-soon and overdue applications."""
    return [
        StatsOut(
            provider_id=s.provider_id,
            provider_name=s.provider_name,
            received=s.received,
            accepted=s.accepted,
            decided=s.decided,
            median_hours=s.median_hours,
            p90_hours=s.p90_hours,
            in_time_share=s.in_time_share,
            due_soon=[_due(a) for a in s.due_soon],
            overdue=[_due(a) for a in s.overdue],
        )
        for s in stats.provider_stats(db, actor)
    ]
