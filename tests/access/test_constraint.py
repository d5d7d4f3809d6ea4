"""One open application per user and entry is kept by the database (a partial unique index over
the open states), not only by the service, which still explains the refusal first."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from kaifang.access.models import OPEN_STATUSES, Application, ApplicationStatus
from kaifang.app import Platform
from kaifang.catalog.models import Entry
from kaifang.errors import Conflict
from tests.access.conftest import Scene


def insert(platform: Platform, scene: Scene, *statuses: str) -> None:
    """Writes applications of the applicant for the entry directly, past the service, in one transaction."""
    with platform.db.session() as db:
        entry = db.get(Entry, scene.entry_id)
        assert entry is not None
        for status in statuses:
            db.add(
                Application(
                    entry_id=entry.id,
                    provider_id=entry.provider_id,
                    user_id=scene.users["applicant"].id,
                    status=status,
                    purpose="研究城市空气质量与交通出行的关系",
                    scenario="高校科研",
                    period_days=30,
                    security_measures="内网服务器存放，仅课题组可访问，期满删除",
                    contact="13800138000",
                    resource_ids=[scene.resource_id],
                )
            )
            db.flush()


def count(platform: Platform) -> int:
    with platform.db.session() as db:
        return int(db.scalar(select(func.count()).select_from(Application)) or 0)


@pytest.mark.parametrize("second", [str(s) for s in OPEN_STATUSES])
def test_a_second_open_application_violates_the_index(scene: Scene, platform: Platform, second: str) -> None:
    with pytest.raises(IntegrityError):
        insert(platform, scene, ApplicationStatus.submitted, second)
    assert count(platform) == 0  # the whole transaction went


def test_closed_applications_do_not_count(scene: Scene, platform: Platform) -> None:
    closed = (ApplicationStatus.refused, ApplicationStatus.granted, ApplicationStatus.refused)
    insert(platform, scene, *closed, ApplicationStatus.accepted)
    assert count(platform) == 4
    other = scene.factory.user("second-applicant")
    scene.users["second"] = other
    assert scene.apply("second")  # another user holds their own open application


def test_the_service_still_says_why(scene: Scene) -> None:
    first = scene.apply()
    with pytest.raises(Conflict, match=f"已有一份正在办理的申请（申请编号 {first}）"):
        scene.apply()
