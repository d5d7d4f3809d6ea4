"""The provider's flow of desensitization end to end, through the real HTTP API and storage:
scan → rules → review → publish, with the staging data unreachable by anyone but the provider."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from kaifang.app import Platform
from kaifang.audit.models import AuditRecord
from kaifang.datastore.models import Resource, ResourceVersion
from kaifang.desensitize.detect import scan_table
from kaifang.desensitize.models import ColumnRule
from tests.conftest import PASSING_REVIEW, Factory, assert_error
from tests.desensitize.flow_data import people_csv

PEOPLE = people_csv()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Scene:
    """Two providers (jtw publishes, wjw is another provider), a reviewer-only member of jtw, a
    citizen and the regulator, each with an API key; one published entry per provider."""

    client: TestClient
    platform: Platform
    keys: dict[str, str]
    entries: dict[str, int]

    def upload(
        self, text: str = PEOPLE, rid: int | None = None, who: str = "pub", name: str = "a.csv"
    ) -> int:
        files = {"file": (name, text.encode(), "text/csv")}
        if rid is None:
            entry = self.entries["other" if who == "other_pub" else "jtw"]
            response = self.client.post(
                f"/api/v1/datasets/{entry}/resources", headers=self.h(who), files=files
            )
        else:
            response = self.client.post(f"/api/v1/resources/{rid}/versions", headers=self.h(who), files=files)
        assert response.status_code == 202, response.text
        self.platform.jobs.drain()
        return int(response.json()["id"]) if rid is None else rid

    def h(self, who: str) -> dict[str, str]:
        return auth(self.keys[who])

    def overview(self, rid: int, n: int = 1, who: str = "pub") -> dict[str, Any]:
        response = self.client.get(f"/api/v1/resources/{rid}/versions/{n}/desensitize", headers=self.h(who))
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def accept(self, rid: int, n: int = 1, who: str = "pub", **changes: Any) -> Any:
        """Confirm the rules on the page as they are, with `changes` ({column: op or rule dict})."""
        rules = {r["column"]: r for r in self.overview(rid, n, who)["rules"]}
        for column, change in changes.items():
            rules[column] = {
                "column": column,
                "params": {},
                **(change if isinstance(change, dict) else {"op": change}),
            }
        body = [
            {k: r.get(k, False if k == "quasi" else {}) for k in ("column", "op", "params", "quasi")}
            for r in rules.values()
        ]
        url = f"/api/v1/resources/{rid}/versions/{n}/rules"
        return self.client.put(url, json={"rules": body}, headers=self.h(who))

    def review(self, rid: int, n: int = 1, who: str = "pub", **fields: Any) -> Any:
        url = f"/api/v1/resources/{rid}/versions/{n}/review"
        return self.client.post(url, json={**PASSING_REVIEW, **fields}, headers=self.h(who))

    def publish(self, rid: int, n: int = 1, who: str = "pub") -> Any:
        return self.client.post(f"/api/v1/resources/{rid}/versions/{n}/publish", headers=self.h(who))

    def version(self, rid: int, n: int = 1) -> ResourceVersion:
        with self.platform.db.session() as db:
            version = db.scalars(
                select(ResourceVersion).where(ResourceVersion.resource_id == rid, ResourceVersion.number == n)
            ).one()
            db.expunge(version)
        return version

    def published(self, rid: int, n: int = 1) -> Any:
        return pq.read_table(self.platform.store.path(self.version(rid, n).data_key))

    def full_publish(self, rid: int, n: int = 1, who: str = "pub", **changes: Any) -> None:
        assert self.accept(rid, n, who, **changes).status_code == 200
        assert self.review(rid, n, who).status_code == 201
        published = self.publish(rid, n, who)
        assert published.status_code == 200, published.text


@pytest.fixture
def scene(client: TestClient, platform: Platform, factory: Factory) -> Scene:
    jtw, wjw = factory.org("jtw", "海河市人力资源和社会保障局"), factory.org("wjw", "海河市卫生健康委员会")
    regulator = factory.user("reg", system_role="regulator")
    users = {
        "pub": factory.user("pub", org=jtw, roles=("publisher",)),
        "reviewer": factory.user("rev", org=jtw, roles=("reviewer",)),
        "other_pub": factory.user("other-pub", org=wjw, roles=("publisher",)),
        "citizen": factory.user("citizen"),
        "reg": regulator,
    }
    keys = {name: factory.api_key(user) for name, user in users.items()}
    entries = {
        "jtw": factory.entry(users["pub"], jtw, title="海河市高龄津贴发放名单", regulator=regulator),
        "other": factory.entry(users["other_pub"], wjw, title="海河市家庭医生签约名单", regulator=regulator),
    }
    return Scene(client, platform, keys, entries)


def an_id(text: str = PEOPLE) -> str:
    return text.splitlines()[1].split(",")[1]


def test_the_scan_is_kept_and_personal_columns_get_proposed_rules(scene: Scene) -> None:
    rid = scene.upload()
    overview = scene.overview(rid)
    kinds = {f["column"]: f["kind"] for f in overview["findings"]}
    assert kinds["身份证号"] == "id_card" and kinds["手机号"] == "mobile"
    assert kinds["补贴金额"] is None
    rules = {r["column"]: r for r in overview["rules"]}
    assert {"身份证号", "手机号"} <= set(rules)
    assert not any(r["confirmed"] for r in rules.values())
    assert "补贴金额" not in rules
    version = scene.version(rid)
    assert version.data_key == f"staging/{rid}/1.parquet"
    assert not list(scene.platform.settings.files_dir.glob("data/**/*.parquet"))


def test_the_review_waits_for_the_proposed_rules_to_be_confirmed(scene: Scene) -> None:
    rid = scene.upload()
    error = assert_error(scene.review(rid), 409, "conflict")
    assert "身份证号" in error["message"]
    assert scene.accept(rid).status_code == 200
    assert scene.review(rid).status_code == 201


STAGING_ROUTES = [
    "/api/v1/resources/{rid}/download?version=1",
    "/api/v1/resources/{rid}/download?version=1&format=parquet",
    "/api/v1/resources/{rid}/data?version=1",
    "/api/v1/resources/{rid}/sql?version=1&sql=SELECT%20*%20FROM%20data",
    "/api/v1/resources/{rid}/versions/1/desensitize",
    "/datasets/{entry}/resources/{rid}/chart.json?type=bar&x=所在区",
    "/workspace/resources/{rid}/versions/1/desensitize",
    "/workspace/resources/{rid}",
]


@pytest.mark.parametrize("who", ["anonymous", "citizen", "other_pub", "reg"])
def test_the_staging_data_is_unreachable_outside_the_provider(scene: Scene, who: str) -> None:
    rid = scene.upload()
    headers = {} if who == "anonymous" else scene.h(who)
    secret = an_id()
    for route in STAGING_ROUTES:
        url = route.format(rid=rid, entry=scene.entries["jtw"])
        response = scene.client.get(url, headers=headers, follow_redirects=False)
        to_login = response.status_code == 303 and response.headers["location"].startswith("/login")
        assert 400 <= response.status_code < 500 or to_login, (route, response.status_code)
        assert secret not in response.text
    page = scene.client.get(f"/datasets/{scene.entries['jtw']}", headers=headers)
    assert page.status_code == 200 and secret not in page.text
    assert not (scene.platform.settings.files_dir / "data" / str(rid)).exists()


def test_the_provider_reads_its_own_staging_data(scene: Scene) -> None:
    rid = scene.upload()
    for who in ("pub", "reviewer"):
        response = scene.client.get(f"/api/v1/resources/{rid}/download?version=1", headers=scene.h(who))
        assert response.status_code == 200 and an_id() in response.text
    page = scene.client.get(f"/workspace/resources/{rid}/versions/1/desensitize", headers=scene.h("pub"))
    assert page.status_code == 200 and an_id() in page.text  # the preview's original side


def test_publication_is_blocked_with_an_unmasked_id_column(scene: Scene) -> None:
    rid = scene.upload()
    assert scene.accept(rid, 身份证号="keep").status_code == 200
    review = scene.review(rid)
    assert review.status_code == 201
    assert [u["column"] for u in review.json()["risk_report"]["unmasked"]] == ["身份证号"]
    error = assert_error(scene.publish(rid), 409, "conflict")
    assert "身份证号" in error["message"] and "书面理由" in error["message"]
    version = scene.version(rid)
    assert version.status == "review" and version.data_key.startswith("staging/")
    with scene.platform.db.session() as db:
        assert db.get_one(Resource, rid).published_version_id is None


def test_the_override_needs_a_written_justification_kept_and_audited(scene: Scene) -> None:
    rid = scene.upload()
    assert scene.accept(rid, 身份证号="keep").status_code == 200
    assert_error(scene.review(rid, override_justification="同意"), 422, "invalid")
    reason = "依据《海河市高龄津贴办法》第九条须公示领取人身份证号码，已经本人书面同意"
    review = scene.review(rid, override_justification=reason)
    assert review.status_code == 201 and review.json()["override_justification"] == reason
    assert scene.publish(rid).status_code == 200
    assert an_id() in scene.published(rid).column("身份证号").to_pylist()
    with scene.platform.db.session() as db:
        overrides = db.scalars(
            select(AuditRecord).where(AuditRecord.action == "desensitize:review:overridden")
        ).all()
        assert [(r.comment, r.summary["after"]["unmasked"]) for r in overrides] == [(reason, ["身份证号"])]


def test_a_published_version_holds_no_direct_identifier(scene: Scene) -> None:
    rid = scene.upload()
    scene.full_publish(rid, 姓名="suppress")
    version = scene.version(rid)
    assert version.status == "published" and version.data_key == f"data/{rid}/1.parquet"
    table = scene.published(rid)
    assert "姓名" not in table.column_names and [c["name"] for c in version.schema] == table.column_names[1:]
    findings = scan_table(table.drop_columns(["_row"]))
    assert not [f for f in findings if f.personal], findings
    assert an_id() not in str(table.to_pylist())
    assert version.row_count == 60 and table.column("_row").to_pylist() == list(range(60))
    # The checksum and size describe the published file, the version names the rules behind it.
    raw = scene.platform.store.path(version.data_key).read_bytes()
    assert (hashlib.sha256(raw).hexdigest(), len(raw)) == (version.sha256, version.byte_size)
    applied = version.report["desensitize"]
    assert applied["rules_sha256"] and {r["column"] for r in applied["rules"]} >= {
        "身份证号",
        "手机号",
        "姓名",
    }
    assert not scene.platform.store.exists(f"staging/{rid}/1.parquet")  # deleted once published
    public = scene.client.get(f"/api/v1/resources/{rid}/download", headers=scene.h("citizen"))
    assert public.status_code == 200 and an_id() not in public.text


def test_rules_are_reapplied_to_a_new_version(scene: Scene) -> None:
    rid = scene.upload()
    scene.full_publish(rid, 手机号="pseudonym")
    scene.upload(people_csv(seed=8, extra_email=True), rid=rid)
    rules = {r["column"]: r for r in scene.overview(rid, 2)["rules"]}
    assert rules["手机号"]["op"] == "pseudonym" and rules["手机号"]["confirmed"]
    assert not rules["电子邮箱"]["confirmed"]  # a new column with personal data must be looked at
    assert_error(scene.review(rid, 2), 409)
    scene.full_publish(rid, 2)
    second = scene.published(rid, 2)
    assert not [f for f in scan_table(second.drop_columns(["_row"])) if f.personal]
    assert scene.version(rid, 2).report["desensitize"]["rules"] != []


def test_pseudonyms_join_across_versions_and_not_across_providers(scene: Scene) -> None:
    mine = scene.upload()
    scene.full_publish(mine, 手机号="pseudonym")
    scene.upload(PEOPLE, rid=mine)
    scene.full_publish(mine, 2)
    theirs = scene.upload(who="other_pub")
    scene.full_publish(theirs, who="other_pub", 手机号="pseudonym")
    first, second = (scene.published(mine, n).column("手机号").to_pylist() for n in (1, 2))
    other = scene.published(theirs).column("手机号").to_pylist()
    phones = [line.split(",")[2] for line in PEOPLE.splitlines()[1:]]
    assert first == second and len(set(first)) == len(set(phones))
    assert not set(first) & set(other) and not set(first) & set(phones)


def test_changing_the_rules_after_the_review_needs_a_new_review(scene: Scene) -> None:
    rid = scene.upload()
    assert scene.accept(rid).status_code == 200
    assert scene.review(rid).status_code == 201
    assert scene.accept(rid, 性别={"op": "keep", "quasi": True}).status_code == 200
    assert "重新审查" in assert_error(scene.publish(rid), 409)["message"]
    assert scene.review(rid).status_code == 201
    assert scene.publish(rid).status_code == 200


def test_a_failed_masking_publishes_nothing(scene: Scene, monkeypatch: pytest.MonkeyPatch) -> None:
    from kaifang.datastore import service

    rid = scene.upload()
    assert scene.accept(rid).status_code == 200
    assert scene.review(rid).status_code == 201

    def broken(*_args: Any) -> Any:
        raise ValueError("disk full")

    monkeypatch.setattr(service, "apply_rules", broken)
    assert_error(scene.publish(rid), 409)
    version = scene.version(rid)
    assert (version.status, version.data_key) == ("review", f"staging/{rid}/1.parquet")
    assert scene.platform.store.exists(version.data_key)
    assert not scene.platform.store.exists(f"data/{rid}/1.parquet")
    monkeypatch.undo()
    assert scene.publish(rid).status_code == 200


def test_the_retention_setting_keeps_the_staging_data(scene: Scene, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scene.platform.settings, "desensitize_keep_staging", True)
    rid = scene.upload()
    scene.full_publish(rid)
    assert scene.platform.store.exists(f"staging/{rid}/1.parquet")
    assert scene.version(rid).data_key == f"data/{rid}/1.parquet"


def test_a_table_without_personal_data_publishes_after_a_plain_review(scene: Scene) -> None:
    rid = scene.upload("区,站点数\n河西区,12\n河东区,9\n")
    assert scene.overview(rid)["rules"] == []
    assert scene.review(rid).status_code == 201
    assert scene.publish(rid).status_code == 200
    assert scene.published(rid).column("站点数").to_pylist() == [12, 9]


def test_a_discarded_version_leaves_no_staging_data(scene: Scene) -> None:
    rid = scene.upload()
    staged = [scene.version(rid).data_key, scene.version(rid).source_key]
    assert all(scene.platform.store.exists(key) for key in staged)
    assert (
        scene.client.post(f"/api/v1/resources/{rid}/versions/1/discard", headers=scene.h("pub")).status_code
        == 200
    )
    assert not any(scene.platform.store.exists(key) for key in staged)


def test_a_version_read_before_scanning_existed_is_scanned_at_its_review(scene: Scene) -> None:
    rid = scene.upload()
    with scene.platform.db.session() as db:
        version = db.scalars(select(ResourceVersion).where(ResourceVersion.resource_id == rid)).one()
        version.report = {k: v for k, v in version.report.items() if k != "desensitize"}
        db.execute(delete(ColumnRule))
    assert "身份证号" in assert_error(scene.review(rid), 409)["message"]  # scanned: proposals to confirm
    overview = scene.overview(rid)  # looking at it keeps the scan and the proposals
    assert {f["column"] for f in overview["findings"]} >= {"身份证号", "手机号"}
    assert not any(r["confirmed"] for r in overview["rules"])
    scene.full_publish(rid)
    assert an_id() not in scene.published(rid).column("身份证号").to_pylist()
