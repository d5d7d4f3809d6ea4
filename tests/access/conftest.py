"""A provider with a published 有条件开放 entry holding one table, its reviewer, a second provider,
and an applicant; helpers walking an application through the real service functions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kaifang.access import service as access
from kaifang.accounts.models import User
from kaifang.accounts.service import actor_for
from kaifang.app import Platform
from tests.conftest import Factory
from tests.datastore.test_data_api import published_resource


@dataclass
class Scene:
    platform: Platform
    factory: Factory
    users: dict[str, User]
    entry_id: int
    resource_id: int
    open_entry_id: int
    keys: dict[str, str] = field(default_factory=dict)

    def key(self, who: str) -> str:
        if who not in self.keys:
            self.keys[who] = self.factory.api_key(self.users[who])
        return self.keys[who]

    def headers(self, who: str) -> dict[str, str]:
        return {} if who == "anonymous" else {"Authorization": f"Bearer {self.key(who)}"}

    def call(self, who: str, func: Callable[..., Any], *args: Any) -> Any:
        """Run a service function as `who` in its own committed transaction."""
        with self.platform.db.session() as db:
            user = db.get(User, self.users[who].id)
            return func(db, actor_for(db, user), *args)

    def form(self, **overrides: Any) -> access.ApplicationForm:
        values: dict[str, Any] = {
            "purpose": "研究城市空气质量与交通出行的关系，形成学术论文",
            "scenario": "高校科研",
            "period_days": 30,
            "security_measures": "数据存放于内网服务器，仅课题组三人可访问，期满删除",
            "contact": "王老师 13800138000",
            "resource_ids": [self.resource_id],
        }
        values.update(overrides)
        return access.ApplicationForm(**values)

    def apply(self, who: str = "applicant") -> int:
        return int(self.call(who, access.apply, self.entry_id, self.form()).id)

    def approved(self, who: str = "applicant") -> int:
        app_id = self.apply(who)
        self.call("reviewer", access.accept, app_id)
        self.call("reviewer", access.approve, app_id)
        return app_id

    def sign(self, who: str, app_id: int) -> None:
        digest = self.call(who, access.get_agreement, app_id).sha256
        self.call(who, access.sign, app_id, digest)

    def granted(self, who: str = "applicant") -> int:
        app_id = self.approved(who)
        self.sign(who, app_id)
        self.sign("reviewer", app_id)
        return app_id


@pytest.fixture
def scene(client: TestClient, platform: Platform, factory: Factory) -> Scene:
    org = factory.org("sthj", "海河市生态环境局")
    other = factory.org("wjw", "海河市卫生健康委员会")
    users = {
        "publisher": factory.user("pub", org=org, roles=("publisher",)),
        "reviewer": factory.user("rev", org=org, roles=("reviewer",)),
        "other_reviewer": factory.user("other-rev", org=other, roles=("reviewer", "publisher")),
        "applicant": factory.user("applicant"),
        "user": factory.user("citizen"),
        "regulator": factory.user("reg", system_role="regulator"),
    }
    key = factory.api_key(users["publisher"])
    entry_id = factory.entry(
        users["publisher"],
        org,
        title="空气质量监测明细",
        open_type="conditional",
        regulator=users["regulator"],
    )
    resource_id = published_resource(client, platform, key, entry_id)
    open_entry_id = factory.entry(users["publisher"], org, title="空气质量日报", regulator=users["regulator"])
    return Scene(platform, factory, users, entry_id, resource_id, open_entry_id, {"publisher": key})
