"""The review before opening (Art. 26): who may record it, what it holds, what the regulator sees,
and that no personal value ever reaches the audit log."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from kaifang.accounts.models import Organisation, User
from kaifang.accounts.permissions import ANONYMOUS
from kaifang.audit.models import AuditRecord
from kaifang.desensitize import service
from kaifang.desensitize.models import SecurityReview
from kaifang.errors import NotAuthenticated
from tests.conftest import Factory, assert_error, csrf_token, login
from tests.desensitize.flow_data import people_csv
from tests.desensitize.test_flow import PEOPLE, Scene, scene

__all__ = ["scene"]


def test_who_may_record_a_review(scene: Scene) -> None:
    rid = scene.upload()
    assert scene.accept(rid).status_code == 200
    for who in ("citizen", "other_pub", "reg"):  # the entry is published: visible, but not theirs
        assert_error(scene.review(rid, who=who), 403)
    assert scene.review(rid, who="reviewer").status_code == 201  # a reviewer-only member may review
    assert_error(scene.publish(rid, who="reviewer"), 403)  # but only a publisher publishes
    assert_error(scene.accept(rid, who="reviewer"), 403)  # and edits the rules


def test_conclusions_must_be_chosen_and_a_failed_review_blocks(scene: Scene) -> None:
    rid = scene.upload()
    assert scene.accept(rid).status_code == 200
    assert_error(scene.review(rid, confidentiality="maybe"), 422)
    assert_error(scene.publish(rid), 409)  # no review yet
    failed = scene.review(rid, risk_assessment="failed", notes="住址精确到门牌，风险过高")
    assert failed.status_code == 201 and not failed.json()["passed"]
    assert "不通过" in assert_error(scene.publish(rid), 409)["message"]


def test_the_review_keeps_reviewer_date_rules_and_the_risk_report(scene: Scene) -> None:
    rid = scene.upload()
    assert (
        scene.accept(
            rid, 性别={"op": "keep", "quasi": True}, 出生日期={"op": "keep", "quasi": True}
        ).status_code
        == 200
    )
    body = scene.review(rid, notes="同意开放").json()
    k = body["risk_report"]["k"]
    assert k["quasi"] == ["性别", "出生日期"] and k["rows"] == 60
    assert k["k"] == 1 and k["unique"] == 60 and k["below"] == 60  # everyone is alone on a full birth date
    assert any(s["change"] == "出生日期 → 年" for s in k["suggestions"])
    assert {r["column"] for r in body["rules"]} >= {"身份证号", "手机号"}
    with scene.platform.db.session() as db:
        row = db.scalars(select(SecurityReview)).one()
        assert row.reviewer_id is not None and row.reviewed_on.isoformat() == body["reviewed_on"]
        assert row.rules_sha256 == body["risk_report"]["rules_sha256"]


def test_no_personal_value_reaches_the_audit_log(scene: Scene) -> None:
    rid = scene.upload()
    scene.full_publish(rid, 手机号="pseudonym")
    values = {cell for line in PEOPLE.splitlines()[1:] for cell in line.split(",")[:3]}
    with scene.platform.db.session() as db:
        records = db.scalars(select(AuditRecord).where(AuditRecord.action.like("desensitize:%"))).all()
        assert {r.action for r in records} >= {
            "desensitize:rules:proposed",
            "desensitize:rules:updated",
            "desensitize:review:recorded",
        }
        every = db.scalars(select(AuditRecord)).all()
        dumped = " ".join(json.dumps(r.summary, ensure_ascii=False) + r.comment for r in every)
    assert not [v for v in values if v in dumped]
    secret = scene.platform.settings.desensitize_master_key or scene.platform.settings.secret_key
    assert secret not in dumped


def test_the_regulator_sees_the_review_when_confirming(scene: Scene, factory: Factory) -> None:
    entry_id = _submitted_entry(scene, factory)
    files = {"file": ("c.csv", people_csv(rows=20).encode(), "text/csv")}
    response = scene.client.post(
        f"/api/v1/datasets/{entry_id}/resources", headers=scene.h("pub"), files=files
    )
    assert response.status_code == 202, response.text
    scene.platform.jobs.drain()
    rid = int(response.json()["id"])
    assert scene.accept(rid, 身份证号="keep").status_code == 200
    reason = "依据《海河市高龄津贴办法》第九条须公示领取人身份证号码"
    assert scene.review(rid, override_justification=reason, notes="公示用途").status_code == 201
    login(scene.client, "reg")
    page = scene.client.get("/admin/confirmations")
    assert page.status_code == 200
    assert "数据资源的保密审查和安全风险评估" in page.text
    assert reason in page.text and "身份证号" in page.text and "公示用途" in page.text


def _submitted_entry(scene: Scene, factory: Factory) -> int:
    with scene.platform.db.session() as db:
        org = db.scalars(select(Organisation).where(Organisation.slug == "jtw")).one()
        user = db.scalars(select(User).where(User.username == "pub")).one()
        db.expunge_all()
    regulator = factory.user("reg-2", system_role="regulator")
    return factory.entry(user, org, status="submitted", title="海河市残疾人补贴发放名单", regulator=regulator)


def test_the_workspace_pages_walk_from_rules_to_publication(scene: Scene) -> None:
    rid = scene.upload()
    client = login(scene.client, "pub")
    url = f"/workspace/resources/{rid}/versions/1/desensitize"
    page = client.get(url)
    assert page.status_code == 200
    assert "居民身份证号码" in page.text and "待确认</span>" in page.text and "脱敏效果预览" in page.text
    findings = scene.overview(rid)["findings"]
    rules = {r["column"]: r for r in scene.overview(rid)["rules"]}
    form: dict[str, Any] = {"csrf_token": csrf_token(client), "count": str(len(findings))}
    for i, finding in enumerate(findings):
        column = finding["column"]
        rule = rules.get(column, {"op": "keep", "params": {}})
        form[f"column_{i}"], form[f"op_{i}"] = column, "suppress" if column == "姓名" else rule["op"]
        form.update({f"{k}_{i}": str(v) for k, v in rule["params"].items() if not isinstance(v, bool)})
        if column in ("性别", "所在区"):
            form[f"quasi_{i}"] = "on"
    saved = client.post(f"{url}/rules", data=form)
    assert saved.status_code == 200 and "脱敏规则已保存" in saved.text and "待确认</span>" not in saved.text
    assert "最小分组人数 k" in saved.text

    refused = client.post(f"{url}/review", data={"csrf_token": csrf_token(client)})
    assert refused.status_code == 422 and "请选择保密审查结论" in refused.text
    verdict = {"confidentiality": "passed", "risk_assessment": "passed", "notes": "已去除姓名"}
    reviewed = client.post(f"{url}/review", data={**verdict, "csrf_token": csrf_token(client)})
    assert reviewed.status_code == 200 and "审查结论已记录" in reviewed.text
    published = client.post(
        f"/workspace/resources/{rid}/versions/1/publish", data={"csrf_token": csrf_token(client)}
    )
    assert published.status_code == 200 and "第 1 版已发布" in published.text
    table = scene.published(rid)
    assert "姓名" not in table.column_names
    assert all("****" in phone for phone in table.column("手机号").to_pylist())
    after = client.get(url)
    assert after.status_code == 200 and "已去除姓名" in after.text and "脱敏效果预览" not in after.text


def test_a_bad_parameter_in_the_form_is_named_in_chinese(scene: Scene) -> None:
    rid = scene.upload()
    client = login(scene.client, "pub")
    url = f"/workspace/resources/{rid}/versions/1/desensitize/rules"
    form = {"csrf_token": csrf_token(client), "count": "1", "column_0": "手机号", "op_0": "mask"}
    for value, message in (("三", "应为整数"), ("99", "应为 0 到 32")):
        response = client.post(url, data={**form, "keep_first_0": value})
        assert response.status_code == 422 and message in response.text


def test_a_file_resource_is_reviewed_and_published_as_uploaded(scene: Scene) -> None:
    pdf = b"%PDF-1.4\n% \xe8\xaf\xb4\xe6\x98\x8e\n"
    files = {"file": ("发放办法.pdf", pdf, "application/pdf")}
    url = f"/api/v1/datasets/{scene.entries['jtw']}/resources"
    rid = int(scene.client.post(url, headers=scene.h("pub"), files=files).json()["id"])
    scene.platform.jobs.drain()
    page = login(scene.client, "pub").get(f"/workspace/resources/{rid}/versions/1/desensitize")
    assert page.status_code == 200 and "保密审查结论" in page.text and "脱敏效果预览" not in page.text
    scene.client.cookies.clear()  # back to the API key alone (a session would need the CSRF token)
    assert_error(scene.publish(rid), 409)
    assert scene.review(rid).status_code == 201
    assert scene.publish(rid).status_code == 200
    download = scene.client.get(f"/api/v1/resources/{rid}/download", headers=scene.h("citizen"))
    assert download.status_code == 200 and download.content == pdf


def test_anonymous_callers_are_asked_to_log_in(scene: Scene) -> None:
    rid = scene.upload()
    assert_error(scene.client.get(f"/api/v1/resources/{rid}/versions/1/desensitize"), 401)
    settings, store = scene.platform.settings, scene.platform.store
    verdict = service.ReviewInput("passed", "passed")
    calls = [
        lambda db: service.review_state(db, ANONYMOUS, store, settings, rid, 1),
        lambda db: service.save_rules(db, ANONYMOUS, rid, 1, []),
        lambda db: service.preview(db, ANONYMOUS, store, settings, rid, 1),
        lambda db: service.record_review(db, ANONYMOUS, store, settings, rid, 1, verdict),
        lambda db: service.pass_review(db, ANONYMOUS, store, settings, rid, 1, service.Vouched("匿名")),
    ]
    for call in calls:
        with scene.platform.db.session() as db, pytest.raises(NotAuthenticated):
            call(db)
