"""JSON routes of desensitization: a version's scan and risk report, the rules, the review.

Provider staff only; the same service functions as the workspace pages.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from kaifang.desensitize import service
from kaifang.desensitize.models import SecurityReview
from kaifang.web.security import DB, CurrentActor, RowId

router = APIRouter(prefix="/api/v1", tags=["数据脱敏与发布前审查"])

ConclusionIn = Annotated[Literal["passed", "failed"], Field(description="passed 通过 | failed 不通过")]


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    column: str = Field(max_length=64)
    op: str = Field(
        max_length=20, description="keep | mask | pseudonym | generalize | suppress | replace | mask_spans"
    )
    params: dict[str, Any] = Field(default_factory=dict)
    quasi: bool = Field(False, description="是否为准标识符（用于重识别风险评估）")


class RulesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[RuleIn] = Field(max_length=1000)


class RuleOut(BaseModel):
    column: str
    op: str
    params: dict[str, Any]
    quasi: bool
    confirmed: bool


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    confidentiality: ConclusionIn
    risk_assessment: ConclusionIn
    notes: str = Field("", max_length=2000)
    override_justification: str = Field(
        "", max_length=2000, description="直接标识符不脱敏、原样开放时的书面理由（至少 10 个字）"
    )


class ReviewOut(BaseModel):
    id: int
    version: int
    reviewer_id: int | None
    reviewed_on: str
    confidentiality: str
    risk_assessment: str
    passed: bool
    notes: str
    override_justification: str
    rules: list[dict[str, Any]]
    rules_sha256: str
    risk_report: dict[str, Any]


class DesensitizeOut(BaseModel):
    resource: int
    version: int
    findings: list[dict[str, Any]]
    rules: list[RuleOut]
    risk_report: dict[str, Any]
    review: ReviewOut | None


def _review_out(number: int, review: SecurityReview) -> ReviewOut:
    return ReviewOut(
        id=review.id,
        version=number,
        reviewer_id=review.reviewer_id,
        reviewed_on=review.reviewed_on.isoformat(),
        confidentiality=review.confidentiality,
        risk_assessment=review.risk_assessment,
        passed=review.passed,
        notes=review.notes,
        override_justification=review.override_justification,
        rules=review.rules,
        rules_sha256=review.rules_sha256,
        risk_report=review.risk_report,
    )


@router.get(
    "/resources/{resource_id}/versions/{number}/desensitize",
    response_model=DesensitizeOut,
    summary="敏感数据识别结果、脱敏规则与风险报告（提供单位）",
)
def overview(
    request: Request, resource_id: RowId, number: RowId, db: DB, actor: CurrentActor
) -> DesensitizeOut:
    kf = request.app.state.kf
    state = service.review_state(db, actor, kf.store, kf.settings, resource_id, number)
    return DesensitizeOut(
        resource=resource_id,
        version=number,
        findings=[service.finding_to_dict(f) for f in state.findings],
        rules=[
            RuleOut(column=r.column, op=r.op, params=r.params, quasi=r.quasi, confirmed=r.confirmed)
            for r in state.rules.values()
        ],
        risk_report=state.risk_report,
        review=_review_out(number, state.review) if state.review else None,
    )


@router.put(
    "/resources/{resource_id}/versions/{number}/rules",
    response_model=list[RuleOut],
    summary="确认或修改脱敏规则（提供单位发布人员）",
)
def save_rules(
    resource_id: RowId, number: RowId, body: RulesIn, db: DB, actor: CurrentActor
) -> list[RuleOut]:
    inputs = [service.RuleInput(r.column, r.op, r.params, r.quasi) for r in body.rules]
    rows = service.save_rules(db, actor, resource_id, number, inputs)
    return [
        RuleOut(column=r.column, op=r.op, params=r.params, quasi=r.quasi, confirmed=r.confirmed)
        for r in rows.values()
    ]


@router.post(
    "/resources/{resource_id}/versions/{number}/review",
    response_model=ReviewOut,
    status_code=201,
    summary="记录保密审查和安全风险评估结论（提供单位）",
)
def review(
    request: Request, resource_id: RowId, number: RowId, body: ReviewIn, db: DB, actor: CurrentActor
) -> ReviewOut:
    kf = request.app.state.kf
    given = service.ReviewInput(
        body.confidentiality, body.risk_assessment, body.notes, body.override_justification
    )
    row = service.record_review(db, actor, kf.store, kf.settings, resource_id, number, given)
    return _review_out(number, row)
