"""The application path through the service: apply, accept or return, approve or refuse with
reason and basis, sign, grant, revoke — with who may do each, and the audit trail."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from kaifang.access import service as access
from kaifang.access.agreement import sha256_of
from kaifang.access.grants import active_grant_ids, city_today
from kaifang.access.models import Agreement, Application, Grant
from kaifang.accounts.models import Membership
from kaifang.audit.models import AuditRecord
from kaifang.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from tests.access.conftest import Scene


def actions(db, target_type: str, target_id: int) -> list[str]:
    return list(
        db.scalars(
            select(AuditRecord.action)
            .where(AuditRecord.target_type == target_type, AuditRecord.target_id == str(target_id))
            .order_by(AuditRecord.id)
        )
    )


def test_the_whole_path_creates_a_grant_and_an_audit_trail(scene: Scene, db) -> None:
    app_id = scene.apply()
    accepted = scene.call("reviewer", access.accept, app_id)
    assert (
        accepted.status == "accepted" and accepted.due_on is not None and accepted.due_on > date(2026, 1, 1)
    )
    agreement = scene.call("reviewer", access.approve, app_id)
    text = agreement.text
    for part in (
        "海河市生态环境局",
        "空气质量监测明细",
        "研究城市空气质量",
        "30 日",
        "内网服务器",
        "使用情况报告",
        "数据来源",
        "不得将数据或其副本向任何第三方转让",
    ):
        assert part in text, part
    assert agreement.sha256 == sha256_of(text)
    scene.sign("applicant", app_id)
    assert db.scalar(select(Grant)) is None  # one signature is not enough
    scene.sign("reviewer", app_id)
    grant = db.scalar(select(Grant))
    assert grant is not None and grant.user_id == scene.users["applicant"].id
    assert grant.starts_on == city_today() and grant.ends_on == city_today() + timedelta(days=30)
    signed = db.get(Agreement, agreement.id)
    assert signed.user_signed_sha256 == signed.provider_signed_sha256 == signed.sha256
    assert signed.provider_signed_by == scene.users["reviewer"].id
    assert db.get(Application, app_id).status == "granted"
    assert actions(db, "application", app_id) == [
        "access:application:submitted",
        "access:application:accepted",
        "access:application:approved",
    ]
    assert actions(db, "agreement", agreement.id) == ["access:application:signed"] * 2
    assert actions(db, "grant", grant.id) == ["access:application:granted"]
    assert active_grant_ids(db, scene.users["applicant"].id) == {scene.entry_id: grant.id}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("purpose", "用"),
        ("security_measures", ""),
        ("contact", "王老师"),
        ("period_days", 0),
        ("period_days", 366),
        ("period_days", "三十天"),
        ("resource_ids", []),
        ("resource_ids", [999999]),
    ],
)
def test_missing_or_nonsense_fields_are_refused(scene: Scene, db, field: str, value) -> None:
    with pytest.raises(InvalidInput) as caught:
        scene.call("applicant", access.apply, scene.entry_id, scene.form(**{field: value}))
    assert field in caught.value.fields
    assert db.scalar(select(Application)) is None


def test_one_open_application_per_user_and_entry(scene: Scene) -> None:
    first = scene.apply()
    with pytest.raises(Conflict, match=str(first)):
        scene.apply()
    scene.apply("user")  # another user may apply for the same entry


def test_only_published_conditional_entries_take_applications(scene: Scene) -> None:
    with pytest.raises(Conflict):
        scene.call("applicant", access.apply, scene.open_entry_id, scene.form())
    with pytest.raises(Conflict, match="本单位"):
        scene.call("publisher", access.apply, scene.entry_id, scene.form())


def test_return_for_completion_then_resubmit(scene: Scene, db) -> None:
    app_id = scene.apply()
    with pytest.raises(InvalidInput):
        scene.call("reviewer", access.return_for_completion, app_id, "")
    scene.call("reviewer", access.return_for_completion, app_id, "请补充安全保障措施的具体内容")
    returned = db.get(Application, app_id)
    assert returned.status == "returned" and "安全保障" in returned.return_note and returned.due_on is None
    scene.call(
        "applicant", access.resubmit, app_id, scene.form(security_measures="加密存储，双人审批访问，期满销毁")
    )
    db.expire_all()
    assert db.get(Application, app_id).status == "submitted"
    assert db.get(Application, app_id).security_measures.startswith("加密存储")


@pytest.mark.parametrize(("reason", "basis"), [("", "《办法》第十条"), ("用途与数据不符", ""), ("", "")])
def test_a_refusal_needs_both_reason_and_basis(scene: Scene, db, reason: str, basis: str) -> None:
    app_id = scene.apply()
    scene.call("reviewer", access.accept, app_id)
    with pytest.raises(InvalidInput, match="理由和依据"):
        scene.call("reviewer", access.refuse, app_id, reason, basis)
    assert db.get(Application, app_id).status == "accepted"


def test_a_refusal_with_both_is_recorded(scene: Scene, db) -> None:
    app_id = scene.apply()
    scene.call("reviewer", access.accept, app_id)
    scene.call("reviewer", access.refuse, app_id, "申请用途超出开放条件", "《海河市公共数据开放办法》第十条")
    refused = db.get(Application, app_id)
    assert refused.status == "refused" and refused.refusal_basis.startswith("《")
    assert actions(db, "application", app_id)[-1] == "access:application:refused"
    scene.apply()  # a refused application no longer blocks a new one


def test_nobody_reviews_their_own_application(scene: Scene, db) -> None:
    app_id = scene.apply()
    # the applicant later joins the provider as a reviewer
    db.add(
        Membership(
            user_id=scene.users["applicant"].id,
            org_id=db.get(Application, app_id).provider_id,
            role="reviewer",
        )
    )
    db.commit()
    with pytest.raises(PermissionDenied, match="本人"):
        scene.call("applicant", access.accept, app_id)


@pytest.mark.parametrize("who", ["other_reviewer", "publisher", "user", "regulator"])
def test_only_the_providers_reviewers_review(scene: Scene, db, who: str) -> None:
    app_id = scene.apply()
    with pytest.raises((PermissionDenied, NotFound)):
        scene.call(who, access.accept, app_id)
    assert db.get(Application, app_id).status == "submitted"
    assert actions(db, "application", app_id) == ["access:application:submitted"]


def test_other_provider_cannot_see_or_sign(scene: Scene) -> None:
    app_id = scene.approved()
    with pytest.raises(NotFound):
        scene.call("other_reviewer", access.get_application, app_id)
    with pytest.raises(NotFound):
        scene.call("user", access.get_agreement, app_id)


def test_signing_a_different_text_is_refused(scene: Scene, db) -> None:
    app_id = scene.approved()
    with pytest.raises(Conflict, match="不一致"):
        scene.call("applicant", access.sign, app_id, sha256_of("另一份文本"))
    scene.sign("applicant", app_id)
    with pytest.raises(Conflict):
        scene.sign("applicant", app_id)
    assert db.scalar(select(Grant)) is None


def test_revocation_needs_a_reason_and_the_provider(scene: Scene, db) -> None:
    scene.granted()
    grant_id = db.scalar(select(Grant.id))
    with pytest.raises(PermissionDenied):
        scene.call("other_reviewer", access.revoke_grant, grant_id, "违反协议约定")
    with pytest.raises(InvalidInput):
        scene.call("reviewer", access.revoke_grant, grant_id, "")
    scene.call("reviewer", access.revoke_grant, grant_id, "发现向第三方提供数据")
    db.expire_all()
    assert db.get(Grant, grant_id).revoke_reason == "发现向第三方提供数据"
    assert active_grant_ids(db, scene.users["applicant"].id) == {}


def test_grants_expire_by_date(scene: Scene, db) -> None:
    scene.granted()
    grant = db.scalar(select(Grant))
    user_id = scene.users["applicant"].id
    assert active_grant_ids(db, user_id, grant.ends_on - timedelta(days=1)) == {scene.entry_id: grant.id}
    assert active_grant_ids(db, user_id, grant.ends_on) == {}
    assert active_grant_ids(db, user_id, grant.starts_on - timedelta(days=1)) == {}


def test_due_state_flags_overdue(scene: Scene, db) -> None:
    app_id = scene.apply()
    scene.call("reviewer", access.accept, app_id)
    application = db.get(Application, app_id)
    assert access.due_state(application, application.due_on) == "due_today"
    assert access.due_state(application, application.due_on - timedelta(days=1)) == ""
    assert access.due_state(application, application.due_on + timedelta(days=1)) == "overdue"


def test_review_queue_is_per_provider(scene: Scene) -> None:
    app_id = scene.apply()
    assert [a.id for a in scene.call("reviewer", access.review_queue)] == [app_id]
    assert scene.call("other_reviewer", access.review_queue) == []
    assert [a.id for a in scene.call("regulator", access.review_queue)] == [app_id]
    with pytest.raises(PermissionDenied):
        scene.call("user", access.review_queue)
