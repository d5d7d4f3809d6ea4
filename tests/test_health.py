"""Probes and metrics for the operators of the platform."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from kaifang.app import Platform


def test_readyz_reports_each_part(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "storage": "ok"}}


def test_readyz_names_an_unreachable_redis(
    client: TestClient, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(platform.settings, "ratelimit_storage_url", "redis://127.0.0.1:1")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"] == "Redis 不可用"


def test_readyz_names_an_unmigrated_database(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("kaifang.migrate.head", lambda: "9999")
    body = client.get("/readyz").json()
    assert body["status"] == "not_ready" and "kaifang migrate" in body["checks"]["database"]


def test_metrics_count_requests_by_route(
    client: TestClient, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.get("/datasets")
    client.get("/api/v1/datasets/999999")
    client.get("/no/such/page")
    # The test client's address ("testclient") is no IP: pretend a scrape from loopback.
    monkeypatch.setattr("kaifang.web.health.client_ip", lambda request: "127.0.0.1")
    body = client.get("/metrics").text
    assert 'kaifang_http_requests_total{method="GET",route="/datasets",status="200"}' in body
    assert 'route="/api/v1/datasets/{entry_id}",status="404"' in body
    assert 'route="unmatched"' in body and "/no/such/page" not in body
    assert "kaifang_versions_processing 0.0" in body and "kaifang_audit_buffered_records" in body


def test_metrics_are_not_public(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 404  # "testclient" is no loopback address
