"""审计记录 pages: the operator's and the regulator's search, export and chain verification, and
every user's own access history. Every inspection is itself recorded (by the service)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from kaifang.accounts import orgs
from kaifang.accounts.permissions import require_login
from kaifang.audit import inspection, stats
from kaifang.audit.models import RecordKind
from kaifang.audit.receipts import is_receipt
from kaifang.audit.tags import Tag
from kaifang.db import MAX_ID
from kaifang.errors import InvalidInput
from kaifang.web.security import DB, CurrentActor, RowId
from kaifang.web.templating import redirect, render

router = APIRouter(include_in_schema=False)

CITY_ZONE = ZoneInfo("Asia/Shanghai")  # dates in the filters are the city's calendar days
PAGE_SIZE = 50
STAT_LABELS = {"views": "浏览", "downloads": "下载", "api_calls": "接口调用"}
KIND_LABELS = {
    RecordKind.change: "状态变更",
    RecordKind.access: "数据访问",
    RecordKind.request: "页面与接口请求",
}
ACTION_GROUPS = {
    "data:access:": "数据访问（全部）",
    "catalog:": "目录变更（全部）",
    "data:": "数据资源（全部）",
    "account:": "账号（全部）",
    "org:": "单位（全部）",
    "audit:": "审计查阅与核验（全部）",
}
Text = Annotated[str, Query(max_length=64)]


def _day(value: str, field: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput("日期格式应为 YYYY-MM-DD", fields={field: "日期格式应为 YYYY-MM-DD"}) from exc


@dataclass(frozen=True)
class AuditFilters:
    """The audit search's filters as typed (shown back in the form); `query` checks them."""

    actor: str = ""
    entry: str = ""
    action: str = ""
    kind: str = ""
    ip: str = ""
    since: str = ""
    until: str = ""
    receipt: str = ""

    def given(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v}

    def query(self) -> inspection.AuditQuery:
        entry, kind, action = self.entry, self.kind, self.action
        if entry and not (entry.isdigit() and 0 < int(entry) <= MAX_ID):
            raise InvalidInput("目录编号应为正整数", fields={"entry": "目录编号应为正整数"})
        if kind and kind not in KIND_LABELS:
            raise InvalidInput("记录类别不在可选范围内", fields={"kind": "不在可选范围内"})
        if action and action not in ACTION_GROUPS and action not in {str(t) for t in Tag}:
            raise InvalidInput("动作不在可选范围内", fields={"action": "不在可选范围内"})
        receipt = self.receipt.strip().upper()
        if receipt and not is_receipt(receipt):
            message = "下载回执编号格式不对，应形如 KF20261127-ABCDEFGHIJKLMNOP"
            raise InvalidInput(message, fields={"receipt": message})
        first, last = _day(self.since, "since"), _day(self.until, "until")
        return inspection.AuditQuery(
            actor=self.actor.strip().lower(),
            entry_id=int(entry) if entry else None,
            action=action,
            kind=kind,
            ip=self.ip.strip(),
            receipt=receipt,
            since=datetime.combine(first, time(), CITY_ZONE) if first else None,
            until=datetime.combine(last + timedelta(days=1), time(), CITY_ZONE) if last else None,
        )


def audit_filters(
    actor_name: Annotated[str, Query(alias="actor", max_length=64)] = "",
    entry: Text = "",
    action: Text = "",
    kind: Text = "",
    ip: Text = "",
    since: Text = "",
    until: Text = "",
    receipt: Text = "",
) -> AuditFilters:
    return AuditFilters(actor_name, entry, action, kind, ip, since, until, receipt)


Filters = Annotated[AuditFilters, Depends(audit_filters)]


@router.get("/admin/audit")
def audit_page(
    request: Request,
    db: DB,
    actor: CurrentActor,
    filters: Filters,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    """审计记录: search by actor, entry, action, time and IP; export; verify the chain."""
    require_login(actor)
    inspection.require_inspector(actor)
    q = filters.query()
    archive = request.app.state.kf.audit.archive
    found = inspection.search_records(db, actor, q, page=page, page_size=PAGE_SIZE, archive=archive)
    query_string = urlencode(filters.given())
    context = {
        "filters": asdict(filters),
        "rows": found.rows,
        "total": found.total,
        "archived": found.archived,
        "archived_ids": found.archived_ids,
        "page": page,
        "pages": max(1, -(-found.total // PAGE_SIZE)),
        "query_string": query_string,
        "page_url": lambda n: "/admin/audit?" + urlencode({**filters.given(), "page": n}),
        "kind_labels": KIND_LABELS,
        "action_groups": ACTION_GROUPS,
        "tags": sorted(str(t) for t in Tag),
        "last_check": inspection.last_verification(db, actor),
        "archive": inspection.archive_status(db, actor, archive),
    }
    return render(request, "admin/audit.html", context)


@router.get("/admin/audit/export.csv")
def audit_export(
    request: Request,
    db: DB,
    actor: CurrentActor,
    filters: Filters,
) -> Response:
    """The search result as CSV, archived records included when the time range reaches them (the
    export is recorded before the first row)."""
    require_login(actor)
    kf = request.app.state.kf
    q = filters.query()
    export = inspection.export_records(db, actor, q, kf.audit.archive)
    db.commit()
    chunks = inspection.csv_chunks(kf.db, export)
    stamp = datetime.now(CITY_ZONE).strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"'},
    )


@router.post("/admin/audit/verify")
def audit_verify(request: Request, db: DB, actor: CurrentActor) -> Response:
    """Verify the whole chain now; the outcome shows on the audit page."""
    require_login(actor)
    kf = request.app.state.kf
    result = inspection.verify_chain(db, actor, kf.audit.key, kf.audit.archive)
    if result.ok:
        message = (
            f"审计记录完整：已核验 {result.records} 条记录（其中 {result.archived} 条在 "
            f"{result.archive_files} 个归档文件中）、{result.checkpoints} 个签名检查点"
        )
        return redirect("/admin/audit", kf.settings, message, "success")
    return redirect("/admin/audit", kf.settings, f"审计记录被篡改：{result.problem}", "error")


@router.get("/account/history")
def my_history(
    request: Request, db: DB, actor: CurrentActor, page: Annotated[int, Query(ge=1, le=10_000)] = 1
) -> Response:
    """我的访问记录: the signed-in user's own data accesses and API calls."""
    rows, total = inspection.own_history(db, actor, page=page, page_size=PAGE_SIZE)
    context = {
        "rows": rows,
        "total": total,
        "page": page,
        "pages": max(1, -(-total // PAGE_SIZE)),
        "page_url": lambda n: f"/account/history?page={n}",
        "kind_labels": KIND_LABELS,
    }
    return render(request, "accounts/history.html", context)


@router.get("/workspace/org/{org_id}/stats")
def provider_stats_page(
    request: Request,
    db: DB,
    actor: CurrentActor,
    org_id: RowId,
    days: Annotated[int, Query(ge=7, le=366)] = 30,
) -> Response:
    """访问统计: views, downloads, API calls and distinct users of the organisation's entries."""
    require_login(actor)
    figures = stats.provider_stats(db, actor, org_id, days)
    series = {
        "days": [d.isoformat() for d in figures.days],
        "series": [{"name": label, "values": figures.by_day[key]} for key, label in STAT_LABELS.items()],
    }
    context = {
        "org": orgs.get_org(db, org_id),
        "figures": figures,
        "days": days,
        "totals": {key: sum(figures.by_day[key]) for key in STAT_LABELS},
        "stat_labels": STAT_LABELS,
        "series_json": json.dumps(series, ensure_ascii=False),
    }
    return render(request, "workspace/stats.html", context)
