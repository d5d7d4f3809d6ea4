"""The provider's review page of a version: scan → rules → preview → review → publish.

Provider staff only (the preview shows unmasked rows); every check is in the service layer.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from kaifang.accounts.permissions import Actor
from kaifang.datastore.models import ResourceKind, VersionStatus
from kaifang.desensitize import service
from kaifang.desensitize.models import CONCLUSION_LABELS, ColumnRule
from kaifang.desensitize.params import OP_LABELS, PARAM_FIELDS, TARGET_CHOICES, describe, parse_params
from kaifang.errors import InvalidInput, ServiceError
from kaifang.web.forms import form_text
from kaifang.web.security import DB, CurrentActor, RowId
from kaifang.web.templating import redirect, render

router = APIRouter(include_in_schema=False)
MAX_COLUMNS = 1000


def _url(resource_id: int, number: int) -> str:
    return f"/workspace/resources/{resource_id}/versions/{number}/desensitize"


def _page(
    request: Request,
    db: Session,
    actor: Actor,
    resource_id: int,
    number: int,
    error: ServiceError | None = None,
) -> Response:
    kf = request.app.state.kf
    state = service.review_state(db, actor, kf.store, kf.settings, resource_id, number)
    in_review = state.version.status == VersionStatus.review
    is_table = state.resource.kind == ResourceKind.table
    preview = None
    if in_review and is_table:
        preview = service.preview(db, actor, kf.store, kf.settings, resource_id, number)
    context: dict[str, Any] = {
        "state": state,
        "resource": state.resource,
        "version": state.version,
        "entry": state.entry,
        "in_review": in_review,
        "is_table": is_table,
        "findings": {f.column: f for f in state.findings},
        "kind_label": service.kind_label,
        "preview": preview,
        "op_labels": OP_LABELS,
        "param_fields": PARAM_FIELDS,
        "target_choices": TARGET_CHOICES,
        "describe": describe,
        "conclusions": CONCLUSION_LABELS,
        "threshold": kf.settings.desensitize_k_threshold,
        "errors": error.fields if error else {},
        "error_message": error.message if error else "",
    }
    return render(
        request, "workspace/desensitize_review.html", context, status=error.status if error else 200
    )


@router.get("/workspace/resources/{resource_id}/versions/{number}/desensitize")
def review_page(request: Request, resource_id: RowId, number: RowId, db: DB, actor: CurrentActor) -> Response:
    """The scan, the rules form, original and masked rows side by side, the risk report and the review."""
    return _page(request, db, actor, resource_id, number)


def _rule_inputs(form: FormData, saved: dict[str, ColumnRule]) -> list[service.RuleInput]:
    """One rule per row of the form; parameters the form does not show stay as saved."""
    posted_count = form_text(form, "count", 10)
    count = min(int(posted_count), MAX_COLUMNS) if posted_count.isdecimal() else 0
    inputs = []
    for i in range(count):
        column, op = form_text(form, f"column_{i}", 64), form_text(form, f"op_{i}", 20)
        before = saved.get(column)
        posted = {k: form_text(form, f"{k}_{i}", 200) for k, _label in PARAM_FIELDS.get(op, ())}
        params = parse_params(op, posted, before.params if before and before.op == op else None)
        inputs.append(service.RuleInput(column, op, params, form_text(form, f"quasi_{i}", 5) == "on"))
    return inputs


@router.post("/workspace/resources/{resource_id}/versions/{number}/desensitize/rules")
async def save_rules(
    request: Request, resource_id: RowId, number: RowId, db: DB, actor: CurrentActor
) -> Response:
    """The rules form: one row of operation, parameters and quasi-identifier mark per column."""
    form = await request.form()
    try:
        inputs = _rule_inputs(form, service.resource_rules(db, resource_id))
        service.save_rules(db, actor, resource_id, number, inputs)
    except (ServiceError, ValueError) as exc:
        db.rollback()
        failure = exc if isinstance(exc, ServiceError) else InvalidInput(f"脱敏参数有误：{exc}")
        return _page(request, db, actor, resource_id, number, failure)
    settings = request.app.state.kf.settings
    return redirect(_url(resource_id, number), settings, "脱敏规则已保存；发布前请按新的规则记录审查结论")


@router.post("/workspace/resources/{resource_id}/versions/{number}/desensitize/review")
async def record_review(
    request: Request, resource_id: RowId, number: RowId, db: DB, actor: CurrentActor
) -> Response:
    """The 保密审查 and 安全风险评估 form."""
    form = await request.form()
    kf = request.app.state.kf
    given = service.ReviewInput(
        form_text(form, "confidentiality", 10),
        form_text(form, "risk_assessment", 10),
        form_text(form, "notes"),
        form_text(form, "override_justification"),
    )
    try:
        review = service.record_review(db, actor, kf.store, kf.settings, resource_id, number, given)
    except ServiceError as exc:
        db.rollback()
        return _page(request, db, actor, resource_id, number, exc)
    message = "审查结论已记录，可以发布" if review.passed else "审查结论为不通过，该版本不能发布"
    return redirect(_url(resource_id, number), kf.settings, message, "success" if review.passed else "info")
