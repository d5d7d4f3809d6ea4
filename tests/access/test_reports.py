"""Use reports (Art. 22) and compliance checks (Art. 27): the schedule the agreement sets, 逾期未报
on frozen dates, who files and who reviews, and the pages and API that show them."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from kaifang.access import reports, stats, suspension
from kaifang.access import service as access
from kaifang.access.agreement import report_days
from kaifang.access.models import Application, ComplianceCheck, Grant, UseReport
from kaifang.accounts.permissions import ANONYMOUS
from kaifang.audit.models import AuditRecord
from kaifang.db import utcnow
from kaifang.errors import Conflict, InvalidInput, NotAuthenticated, NotFound, PermissionDenied
from kaifang.notify.models import Notification
from tests.access.conftest import Scene
from tests.conftest import assert_error, csrf_token, login

REPORT = reports.ReportForm(
    work="用于空气质量与出行关系研究，数据仅在课题组内网服务器使用",
    results="完成一篇学术论文初稿",
    links="https://example.edu.cn/paper",
)


def grant_of(days: int, start: date = date(2026, 1, 5)) -> Grant:
    return Grant(id=1, starts_on=start, ends_on=start + timedelta(days=days), revoked_at=None)


def test_the_schedule_follows_the_term() -> None:
    assert report_days(30) == [30]
    assert report_days(180) == [180]
    assert report_days(200) == [90, 200]
    assert report_days(365) == [90, 180, 270, 365]
    grant = grant_of(365)  # 2026-01-05 .. 2027-01-04
    assert reports.due_dates(grant) == [
        date(2026, 4, 4),
        date(2026, 7, 3),
        date(2026, 10, 1),
        date(2027, 1, 4),
    ]
    assert grant.last_day == date(2027, 1, 4)  # the final report is due on the term's last day


@pytest.mark.parametrize(
    ("today", "states"),
    [
        (date(2026, 1, 5), ["upcoming", "upcoming", "upcoming", "upcoming"]),
        (date(2026, 3, 5), ["due", "upcoming", "upcoming", "upcoming"]),  # 30 days before 04-04
        (date(2026, 4, 4), ["due", "upcoming", "upcoming", "upcoming"]),  # the due day itself
        (date(2026, 4, 5), ["overdue", "upcoming", "upcoming", "upcoming"]),
        (date(2027, 1, 5), ["overdue", "overdue", "overdue", "overdue"]),
    ],
)
def test_missing_reports_become_overdue_after_the_due_day(today: date, states: list[str]) -> None:
    points = reports.schedule(grant_of(365), [], today)
    assert [p.state for p in points] == states
    assert [p.label for p in points if p.state == "overdue"] == ["逾期未报"] * states.count("overdue")


def test_a_filed_report_is_no_longer_overdue_and_a_late_one_says_so() -> None:
    grant = grant_of(30)
    filed = UseReport(
        point=1, status="submitted", submitted_at=datetime(2026, 2, 10, 8, tzinfo=utcnow().tzinfo)
    )
    (point,) = reports.schedule(grant, [filed], date(2026, 2, 10))
    assert point.state == "submitted" and point.late and not point.flagged


def test_revocation_drops_later_points() -> None:
    grant = grant_of(365)
    grant.revoked_at = datetime(2026, 5, 1, tzinfo=utcnow().tzinfo)
    assert reports.due_dates(grant) == [date(2026, 4, 4), date(2026, 7, 3)]


def test_the_agreement_states_the_schedule(scene: Scene) -> None:
    app_id = scene.apply()
    with scene.platform.db.session() as db:
        db.execute(update(Application).where(Application.id == app_id).values(period_days=365))
    scene.call("reviewer", access.accept, app_id)
    scene.call("reviewer", access.approve, app_id)
    text = scene.call("applicant", access.get_agreement, app_id).text
    assert "第七条 使用情况报告" in text
    for day in (90, 180, 270):
        assert f"自签订之日起第 {day} 日（期中报告）" in text
    assert "使用期限最后一日，即自签订之日起第 365 日（期末报告）" in text


def _granted(scene: Scene) -> int:
    scene.granted()
    with scene.platform.db.session() as db:
        return int(db.scalar(select(Grant.id).where(Grant.user_id == scene.users["applicant"].id)))


def test_only_the_grantee_files_and_only_the_provider_reviews(scene: Scene, db) -> None:
    grant_id = _granted(scene)
    with pytest.raises(NotFound):
        scene.call("user", reports.file_report, grant_id, 1, REPORT)
    with pytest.raises(PermissionDenied):
        scene.call("reviewer", reports.file_report, grant_id, 1, REPORT)
    with pytest.raises(InvalidInput) as bad:
        scene.call("applicant", reports.file_report, grant_id, 1, reports.ReportForm("太短", "", "ftp://x"))
    assert set(bad.value.fields) == {"work", "results", "links"}
    with pytest.raises(NotFound):
        scene.call("applicant", reports.file_report, grant_id, 2, REPORT)  # a 30-day grant has one point
    report_id = scene.call("applicant", reports.file_report, grant_id, 1, REPORT).id
    with pytest.raises(Conflict):
        scene.call("applicant", reports.file_report, grant_id, 1, REPORT)

    with pytest.raises(NotFound):
        scene.call("other_reviewer", reports.review_report, report_id, True, "")
    with pytest.raises(PermissionDenied):
        scene.call("applicant", reports.review_report, report_id, True, "")
    with pytest.raises(PermissionDenied):
        scene.call("publisher", reports.review_report, report_id, True, "")  # staff, but not a reviewer
    with pytest.raises(InvalidInput):
        scene.call("reviewer", reports.review_report, report_id, False, "")
    scene.call("reviewer", reports.review_report, report_id, False, "请补充论文的数据引用方式")
    (point,) = scene.call("applicant", reports.grant_points, grant_id)
    assert point.state == "needs_more" and point.flagged
    scene.call("applicant", reports.file_report, grant_id, 1, REPORT)  # filed again after 需补充
    scene.call("reviewer", reports.review_report, report_id, True, "")
    (point,) = scene.call("regulator", reports.grant_points, grant_id)
    assert point.state == "accepted" and point.report is not None and point.report.id == report_id

    actions = list(
        db.scalars(
            select(AuditRecord.action).where(AuditRecord.target_type == "use_report").order_by(AuditRecord.id)
        )
    )
    assert actions == [
        "access:report:filed",
        "access:report:reviewed",
        "access:report:filed",
        "access:report:reviewed",
    ]
    titles = {(n.user_id, n.title) for n in db.scalars(select(Notification))}
    assert (scene.users["reviewer"].id, f"使用情况报告待审阅：授权 {grant_id} 第 1 期") in titles
    assert (scene.users["applicant"].id, "使用情况报告审阅结果：第 1 期已认可") in titles


def test_compliance_checks_are_the_providers(scene: Scene, db) -> None:
    grant_id = _granted(scene)
    good = reports.CheckForm(
        checked_on=str(date.today() - timedelta(days=1)),
        method="调阅访问记录",
        finding="下载次数与申请用途相符",
        conclusion="compliant",
    )
    with pytest.raises(PermissionDenied):
        scene.call("applicant", reports.record_check, grant_id, good)
    with pytest.raises(NotFound):
        scene.call("other_reviewer", reports.record_check, grant_id, good)
    bad = reports.CheckForm(
        checked_on="2999-01-01", method="现场检查", finding="发现向第三方提供", conclusion="non_compliant"
    )
    with pytest.raises(InvalidInput) as refused:
        scene.call("reviewer", reports.record_check, grant_id, bad)
    assert set(refused.value.fields) == {"checked_on", "follow_up"}
    scene.call("reviewer", reports.record_check, grant_id, good)
    (check,) = db.scalars(select(ComplianceCheck))
    assert check.conclusion == "compliant" and check.method == "调阅访问记录"
    assert [c.id for c in scene.call("applicant", reports.compliance_checks, grant_id)] == [check.id]
    assert db.scalar(select(AuditRecord.action).where(AuditRecord.target_type == "compliance_check")) == (
        "access:compliance:recorded"
    )


def test_overdue_reports_show_on_both_sides(client: TestClient, scene: Scene, db) -> None:
    grant_id = _granted(scene)
    past = utcnow().date() - timedelta(days=45)
    db.execute(
        update(Grant).where(Grant.id == grant_id).values(starts_on=past, ends_on=past + timedelta(days=30))
    )
    db.commit()
    login(client, "applicant")
    mine = client.get("/account/applications").text
    assert "逾期未报" in mine and f'href="/grants/{grant_id}#point-1"' in mine
    page = client.get(f"/grants/{grant_id}")
    assert page.status_code == 200 and "逾期未报" in page.text and "提交报告" in page.text
    filed = client.post(
        f"/grants/{grant_id}/reports/1",
        data={"work": REPORT.work, "results": REPORT.results, "links": "", "csrf_token": csrf_token(client)},
        follow_redirects=False,
    )
    assert filed.status_code == 303
    assert "逾期提交" in client.get(f"/grants/{grant_id}").text
    client.cookies.clear()
    login(client, "rev")
    queue = client.get("/workspace/applications").text
    assert "待审阅" in queue and f"/grants/{grant_id}#point-1" in queue
    report_id = db.scalar(select(UseReport.id))
    reviewed = client.post(
        f"/reports/{report_id}/review",
        data={"decision": "more", "note": "", "csrf_token": csrf_token(client)},
        follow_redirects=False,
    )
    assert reviewed.status_code == 422 and "请说明需要补充的内容" in reviewed.text
    client.cookies.clear()
    login(client, "citizen")
    assert client.get(f"/grants/{grant_id}").status_code == 404


def test_reports_through_the_api(client: TestClient, scene: Scene) -> None:
    grant_id = _granted(scene)
    url = f"/api/v1/grants/{grant_id}/reports"
    (point,) = client.get(url, headers=scene.headers("applicant")).json()
    assert point["state"] == "due" and point["final"] is True
    body = {"work": REPORT.work, "results": REPORT.results, "links": REPORT.links}
    assert_error(client.post(f"{url}/1", json=body, headers=scene.headers("user")), 404)
    filed = client.post(f"{url}/1", json=body, headers=scene.headers("applicant"))
    assert filed.status_code == 200 and filed.json()["state"] == "submitted"
    review = {"accepted": True, "note": ""}
    report_id = filed.json()["report_id"]
    assert_error(
        client.post(f"/api/v1/reports/{report_id}/review", json=review, headers=scene.headers("applicant")),
        403,
    )
    done = client.post(f"/api/v1/reports/{report_id}/review", json=review, headers=scene.headers("reviewer"))
    assert done.status_code == 200 and done.json()["state"] == "accepted"
    check = {"checked_on": "2026-01-01", "method": "查阅报告", "finding": "与用途相符", "conclusion": "maybe"}
    assert_error(
        client.post(f"/api/v1/grants/{grant_id}/checks", json=check, headers=scene.headers("reviewer")), 422
    )
    check["conclusion"] = "compliant"
    created = client.post(f"/api/v1/grants/{grant_id}/checks", json=check, headers=scene.headers("reviewer"))
    assert created.status_code == 201 and created.json()["conclusion"] == "compliant"
    listed = client.get(f"/api/v1/grants/{grant_id}/checks", headers=scene.headers("applicant")).json()
    assert [c["id"] for c in listed] == [created.json()["id"]]


def stored(scene: Scene) -> set[Path]:
    """The report attachments in the file store."""
    return set(scene.platform.settings.home.rglob("reports/*"))


def test_a_report_carries_an_attachment(client: TestClient, scene: Scene, db) -> None:
    grant_id = _granted(scene)
    before = stored(scene)
    login(client, "applicant")
    url = f"/grants/{grant_id}/reports/1?csrf_token={csrf_token(client)}"
    fields = {"work": REPORT.work, "results": REPORT.results, "links": ""}
    page = client.post(url, data=fields, files={"attachment": ("page.html", b"<script>", "text/html")})
    assert page.status_code == 422 and "附件须为以下格式之一" in page.text
    assert stored(scene) == before  # a refused file is not kept
    paper = b"%PDF-1.4 demo paper"
    filed = client.post(
        url,
        data=fields,
        files={"attachment": ("论文初稿.pdf", paper, "application/pdf")},
        follow_redirects=False,
    )
    assert filed.status_code == 303
    report = db.scalar(select(UseReport))
    assert report.attachment_name == "论文初稿.pdf" and report.attachment_size == len(paper)
    assert len(stored(scene) - before) == 1
    assert "论文初稿.pdf" in client.get(f"/grants/{grant_id}").text
    download = client.get(f"/reports/{report.id}/attachment")
    assert download.status_code == 200 and download.content == paper
    assert "attachment" in download.headers["content-disposition"]
    client.cookies.clear()
    login(client, "citizen")
    assert client.get(f"/reports/{report.id}/attachment").status_code == 404


ARGUMENTS: dict[str, Any] = {
    "grant_id": 1,
    "number": 1,
    "report_id": 1,
    "suspension_id": 1,
    "provider_id": 1,
    "user_id": 1,
    "accepted": True,
    "note": "匿名的意见",
    "reason": "匿名的理由",
    "evidence": "匿名的证据",
}


def _anonymous_call(func: Callable[..., Any], db: Any) -> None:
    args: dict[str, Any] = {"db": db, "actor": ANONYMOUS}
    for name, param in inspect.signature(func).parameters.items():
        if name == "form":
            args[name] = reports.CheckForm() if "CheckForm" in str(param.annotation) else REPORT
        elif name in ARGUMENTS:
            args[name] = ARGUMENTS[name]
        elif name not in args:
            assert param.default is not inspect.Parameter.empty, (func.__name__, name)
    func(**args)


@pytest.mark.parametrize("module", [reports, suspension, stats], ids=lambda m: m.__name__)
def test_every_entry_point_refuses_the_anonymous_actor(module: ModuleType, platform) -> None:
    entry_points = [
        f
        for name, f in inspect.getmembers(module, inspect.isfunction)
        if not name.startswith("_")
        and f.__module__ == module.__name__
        and {"db", "actor"} <= set(inspect.signature(f).parameters)
    ]
    assert entry_points
    with platform.db.session() as db:
        for func in entry_points:
            with pytest.raises(NotAuthenticated):
                _anonymous_call(func, db)
