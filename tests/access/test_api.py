"""The JSON routes: the whole path with API keys, and the errors in the API's shape."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.access.conftest import Scene
from tests.conftest import assert_error

BODY = {
    "purpose": "研究城市空气质量与交通出行的关系",
    "scenario": "高校科研",
    "period_days": 30,
    "security_measures": "内网服务器存放，仅课题组可访问，期满删除",
    "contact": "wang@example.edu.cn",
}


def test_the_path_through_the_api(client: TestClient, scene: Scene) -> None:
    user, rev = scene.headers("applicant"), scene.headers("reviewer")
    data_url = f"/api/v1/resources/{scene.resource_id}/data"
    assert_error(client.get(data_url, headers=user), 403)
    created = client.post(
        f"/api/v1/datasets/{scene.entry_id}/applications",
        json={**BODY, "resource_ids": [scene.resource_id]},
        headers=user,
    )
    assert created.status_code == 201, created.text
    app_id = created.json()["id"]
    assert created.json()["status"] == "submitted" and created.json()["due_on"] is None
    assert_error(client.post(f"/api/v1/applications/{app_id}/accept", headers=user), 403)
    accepted = client.post(f"/api/v1/applications/{app_id}/accept", headers=rev).json()
    assert accepted["status"] == "accepted" and accepted["due_on"]
    refusal = client.post(f"/api/v1/applications/{app_id}/refuse", json={"reason": "用途不符"}, headers=rev)
    assert "理由和依据" in assert_error(refusal, 422, "invalid")["message"]
    approved = client.post(f"/api/v1/applications/{app_id}/approve", headers=rev).json()
    assert approved["status"] == "approved"
    agreement = client.get(f"/api/v1/applications/{app_id}/agreement", headers=user).json()
    assert "使用协议" in agreement["text"] and agreement["sha256"] == approved["agreement"]["sha256"]
    for headers in (user, rev):
        signed = client.post(
            f"/api/v1/applications/{app_id}/agreement/sign",
            json={"sha256": agreement["sha256"]},
            headers=headers,
        )
        assert signed.status_code == 200, signed.text
    assert signed.json()["status"] == "granted"
    grants = client.get("/api/v1/grants", headers=user).json()
    assert len(grants) == 1 and grants[0]["entry_id"] == scene.entry_id and grants[0]["revoked_at"] is None
    assert client.get(data_url, headers=user).status_code == 200
    assert [a["id"] for a in client.get("/api/v1/applications", headers=user).json()] == [app_id]


def test_api_errors(client: TestClient, scene: Scene) -> None:
    assert_error(client.post(f"/api/v1/datasets/{scene.entry_id}/applications", json=BODY), 401)
    bad = client.post(
        f"/api/v1/datasets/{scene.entry_id}/applications", json=BODY, headers=scene.headers("applicant")
    )
    assert "resource_ids" in assert_error(bad, 422)["fields"]
    assert_error(client.get("/api/v1/applications/999", headers=scene.headers("applicant")), 404)
