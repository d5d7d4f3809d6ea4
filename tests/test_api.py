"""The JSON API contract: the error shape with Chinese messages, no 500 for hostile input, the
accepted API-key headers, the OpenAPI document, and creating an entry."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import CJK, Cast, assert_error

API = "/api/v1/datasets"


# --- the error shape ----------------------------------------------------------------------------


def test_401_for_anonymous_write_and_bad_key(client, cast: Cast) -> None:
    assert_error(client.post(API, json={"title": "x", "provider": "jtw"}), 401, "not_authenticated")
    response = client.get(API, headers={"Authorization": "Bearer kf_deadbeef_notakey"})
    assert_error(response, 401, "not_authenticated")
    assert response.headers["www-authenticate"] == "Bearer"
    assert_error(client.get("/api/v1/me"), 401)


def test_403_404_409_422_from_the_service(client, cast: Cast) -> None:
    assert_error(
        client.post(API, json={"title": "x", "provider": "jtw"}, headers=cast.headers("user")),
        403,
        "forbidden",
    )
    assert_error(client.get(f"{API}/999999"), 404, "not_found")
    assert_error(
        client.post(API, json={"title": "x", "provider": "no-such-org"}, headers=cast.headers("publisher")),
        404,
        "not_found",
    )
    draft = cast.entry("draft")
    assert_error(
        client.post(f"{API}/{draft}/publish", json={}, headers=cast.headers("publisher")), 409, "conflict"
    )
    submitted = cast.entry("submitted")
    error = assert_error(
        client.post(f"{API}/{submitted}/return", json={"comment": ""}, headers=cast.headers("regulator")),
        422,
        "invalid",
    )
    assert CJK.search(error["fields"]["reason"])


def test_unknown_route_and_method(client) -> None:
    assert_error(client.get("/api/v1/no-such-thing"), 404)
    assert_error(client.delete(f"{API}/1", headers={"Content-Type": "application/json"}), 405)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"title": "公交", ', None),  # malformed JSON
        ("[]", None),
        ('"just a string"', None),
        ("null", None),
        ('{"title": 123, "provider": "jtw"}', "title"),
        ('{"title": "公交", "keywords": "公交"}', "keywords"),
        ('{"title": "公交", "keywords": [1, 2]}', None),
        ('{"title": "公交", "temporal_start": "2024-13-45"}', "temporal_start"),
        ('{"title": "公交", "temporal_start": 20240101}', "temporal_start"),
        ('{"title": "公交", "unknown_field": 1}', "unknown_field"),
        ('{"title": "公交", "id": 5}', "id"),
        ('{"title": "公交", "status": "published"}', "status"),
        ('{"title": ""}', "title"),
        ('{"summary": "缺少名称"}', "title"),
        ('{"title": "' + "长" * 201 + '"}', "title"),
        ('{"title": "公交", "theme": "no-such-theme"}', "theme"),
        ('{"title": "公交", "open_type": "public"}', "open_type"),
        ('{"title": "公交", "formats": ["EXE"]}', "formats"),
        ('{"title": "公交", "access_methods": ["ftp"]}', "access_methods"),
        (
            '{"title": "公交", "keywords": ' + str([f"词{i}" for i in range(21)]).replace("'", '"') + "}",
            "keywords",
        ),
    ],
)
def test_422_for_bad_bodies(client, cast: Cast, body: str, field: str | None) -> None:
    headers = {**cast.headers("publisher"), "Content-Type": "application/json"}
    error = assert_error(client.post(API, content=body.encode(), headers=headers), 422, "invalid")
    if field is not None:
        assert field in error.get("fields", {}), error
        assert CJK.search(error["fields"][field])


def test_422_for_bad_patch(client, cast: Cast) -> None:
    entry_id = cast.entry("draft")
    headers = cast.headers("publisher")
    for body in ({"title": None}, {"title": ""}, {"pending": {}}, {"grade": "L9"}, {"title": ["a"]}):
        assert_error(client.patch(f"{API}/{entry_id}", json=body, headers=headers), 422, "invalid")
    assert client.get(f"{API}/{entry_id}", headers=headers).json()["title"] == "海河市公交线路及站点信息"


@pytest.mark.parametrize(
    "params",
    [
        {"page": "0"},
        {"page": "-1"},
        {"page": "abc"},
        {"page": "1.5"},
        {"page": "99999999999999999999"},
        {"page_size": "0"},
        {"page_size": "100000"},
        {"page_size": "101"},
        {"page_size": "x"},
        {"q": "公" * 201},
        {"q": "a" * 5000},
        {"sort": "random"},
        {"sort": "title desc"},
    ],
)
def test_422_for_bad_query_parameters(client, params: dict[str, str]) -> None:
    error = assert_error(client.get(API, params=params), 422, "invalid")
    assert set(error["fields"]) & set(params), error


@pytest.mark.parametrize(
    "path",
    [
        f"{API}/abc",
        f"{API}/1.5",
        f"{API}/-1",
        f"{API}/99999999999999999999",
        f"{API}/%00",
        f"{API}/1%27%20OR%201=1",
    ],
)
def test_bad_entry_ids(client, path: str) -> None:
    response = client.get(path)
    assert response.status_code in (404, 422), (path, response.status_code)
    assert_error(response, response.status_code)


# --- never a 500 ----------------------------------------------------------------------------------

HOSTILE = [
    "' OR 1=1 --",
    "'; DROP TABLE entries; --",
    '" OR ""="',
    "1; SELECT pg_sleep(5)",
    "') OR ('1'='1",
    "\\",
    "\\'",
    "%",
    "%%",
    "_",
    "*",
    "**",
    '"',
    '""',
    "(",
    ")",
    "(((",
    "NEAR(a b)",
    "title:公交",
    "{title}:公交",
    "公交 AND OR NOT",
    "-",
    "^",
    ":*",
    "&",
    "|",
    "!",
    "<->",
    "a & b | !c",
    "公交:*",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "${jndi:ldap://x}",
    "{{7*7}}",
    "\x00",
    "a\x00b",
    "公交\x00",
    "\t\n\r",
    " ",
    "\u200b",
    "\ufeff",
    "😀",
    "𠀀",
    "\u202e",
    "ＰＭ２．５",
    "公" * 200,
    "a" * 200,
    "a " * 100,
    "公 " * 100,
    "1e308",
    "-0",
    "NaN",
    "null",
    "undefined",
    "[]",
    "{}",
]


def test_hostile_queries_never_500(client, cast: Cast) -> None:
    cast.entry("published")
    failures: list[tuple[Any, int]] = []
    for q in HOSTILE:
        response = client.get(API, params={"q": q})
        if response.status_code != 200:
            failures.append((q, response.status_code))
        else:
            assert isinstance(response.json()["count"], int)
    assert not failures, failures


@pytest.mark.parametrize("name", ["theme", "provider", "open_type", "format", "update_frequency", "grade"])
def test_hostile_facet_values_never_500(client, cast: Cast, name: str) -> None:
    cast.entry("published")
    failures = []
    for value in [*HOSTILE[:40], "x" * 5000]:
        response = client.get(API, params={name: value})
        if response.status_code >= 500:
            failures.append((value, response.status_code))
        elif response.status_code == 200:
            assert response.json()["count"] == 0, value
        else:
            assert_error(response, response.status_code)
    many = client.get(API, params=[(name, f"v{i}") for i in range(500)])
    assert many.status_code < 500
    assert not failures, failures


def test_hostile_headers_and_keys_never_500(client) -> None:
    for headers in (
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic Zm9v"},
        {"X-API-Key": "kf_"},
        {"X-API-Key": "kf_a_b_c_d"},
        {"X-API-Key": "kf_' OR 1=1 --_x"},
        {"X-API-Key": "kf_%00_x"},
        {"X-CKAN-API-Key": "x" * 10000},
        {"Cookie": "kf_session=abc"},
        {"Cookie": "kf_session=" + "a" * 4000},
        {"Accept": "text/html"},
    ):
        response = client.get(API, headers=headers)
        assert response.status_code in (200, 401), (headers, response.status_code)


def test_hostile_methods_and_bodies_never_500(client, cast: Cast) -> None:
    entry_id = cast.entry("draft")
    headers = cast.headers("publisher")
    failures = []
    for method, path, body in [
        ("POST", API, b"\x00\x01\x02"),
        ("POST", API, b'{"title": "\x00"}'),
        ("POST", API, b'{"title": "a\\u0000b", "provider": "jtw"}'),
        ("PATCH", f"{API}/{entry_id}", b'{"summary": "\\u0000"}'),
        ("PATCH", f"{API}/{entry_id}", b'{"keywords": ["\\u0000"]}'),
        ("POST", API, b'{"title": "' + b"a" * 2_000_000 + b'"}'),
        ("POST", f"{API}/{entry_id}/submit", b'{"comment": "\\u0000"}'),
        ("POST", API, b"\xff\xfe{}"),
        ("PATCH", f"{API}/{entry_id}", b"{" * 10000),
    ]:
        response = client.request(
            method, path, content=body, headers={**headers, "Content-Type": "application/json"}
        )
        if response.status_code >= 500:
            failures.append((method, path, body[:40], response.status_code))
        elif response.status_code >= 400:
            assert_error(response, response.status_code)
    assert not failures, failures


# --- API keys in every accepted header --------------------------------------------------------------


@pytest.mark.parametrize("style", ["bearer", "x-api-key", "raw-authorization", "x-ckan-api-key", "lowercase"])
def test_key_header_styles(client, cast: Cast, style: str) -> None:
    key = cast.key("publisher")
    headers = {
        "bearer": {"Authorization": f"Bearer {key}"},
        "x-api-key": {"X-API-Key": key},
        "raw-authorization": {"Authorization": key},
        "x-ckan-api-key": {"X-CKAN-API-Key": key},
        "lowercase": {"authorization": f"bearer {key}"},
    }[style]
    me = client.get("/api/v1/me", headers=headers)
    assert me.status_code == 200 and me.json()["username"] == "pub"
    created = client.post(API, json={"title": "接口创建的目录"}, headers=headers)
    assert created.status_code == 201, created.text[:300]
    bad = {k: v.replace(key, key[:-2] + "xx") for k, v in headers.items()}
    assert_error(client.get("/api/v1/me", headers=bad), 401)
    assert_error(client.get(API, headers=bad), 401)


def test_api_key_client_needs_no_csrf_but_a_cookie_session_does(client, cast: Cast) -> None:
    """API-key clients pass without a CSRF token; a form POST with a session cookie does not."""
    key = cast.key("publisher")
    created = client.post(API, json={"title": "接口创建的目录"}, headers={"X-API-Key": key})
    assert created.status_code == 201
    client.cookies.set("kf_session", "forged")
    form = client.post(API, data={"title": "跨站提交"})
    assert form.status_code == 403 and form.json()["error"]["code"] == "csrf"
    client.cookies.clear()


# --- OpenAPI and creation ---------------------------------------------------------------------------


def test_openapi_lists_the_catalog_routes(client) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path, methods in {
        API: {"get", "post"},
        API + "/{entry_id}": {"get", "patch"},
        API + "/{entry_id}/submit": {"post"},
        API + "/{entry_id}/confirm": {"post"},
        API + "/{entry_id}/return": {"post"},
        API + "/{entry_id}/publish": {"post"},
        API + "/{entry_id}/retire": {"post"},
    }.items():
        assert path in paths, path
        assert methods <= set(paths[path]), (path, set(paths[path]))
        for operation in paths[path].values():
            assert CJK.search(operation.get("summary", "")), (path, operation)
    assert not any(p in paths for p in ("/login", "/healthz", "/datasets"))  # pages are not API
    docs = client.get("/docs")
    assert docs.status_code == 200 and "cdn" not in docs.text.lower()  # offline docs


def test_publisher_creates_a_draft(client, cast: Cast) -> None:
    response = client.post(
        API,
        json={
            "title": "海河市出租汽车服务质量信誉考核结果",
            "provider": "jtw",
            "keywords": [" 出租车", "信誉考核", "出租车", "服务质量 "],
            "formats": ["csv", "xlsx"],
        },
        headers=cast.headers("publisher"),
    )
    assert response.status_code == 201
    body = response.json()
    assert isinstance(body["id"], int) and body["status"] == "draft"
    assert body["provider"] == {"slug": "jtw", "name": "海河市交通运输委员会"}
    assert body["keywords"] == ["出租车", "信誉考核", "服务质量"]
    assert body["formats"] == ["CSV", "XLSX"]
    assert body["url"] == f"/datasets/{body['id']}"
    mine = client.get(f"{API}/{body['id']}", headers=cast.headers("publisher"))
    assert mine.status_code == 200 and mine.json()["title"] == "海河市出租汽车服务质量信誉考核结果"
    assert client.get(f"{API}/{body['id']}").status_code == 404


def test_provider_may_be_omitted_for_a_single_organisation(client, cast: Cast, factory) -> None:
    created = client.post(API, json={"title": "省略提供单位"}, headers=cast.headers("publisher"))
    assert created.status_code == 201 and created.json()["provider"]["slug"] == "jtw"
    two = factory.user("two-orgs", org=cast.org, roles=("publisher",))
    with factory.platform.db.session() as db:
        from kaifang.accounts.models import Membership

        db.add(Membership(user_id=two.id, org_id=cast.other_org.id, role="publisher"))
    headers = {"Authorization": f"Bearer {factory.api_key(two)}"}
    error = assert_error(client.post(API, json={"title": "哪个单位"}, headers=headers), 422)
    assert "provider" in error["fields"]
    other = client.post(API, json={"title": "卫健委目录", "provider": "wjw"}, headers=headers)
    assert other.status_code == 201 and other.json()["provider"]["slug"] == "wjw"


def test_search_response_shape(client, cast: Cast) -> None:
    cast.entry("published")
    body = client.get(API, params={"q": "公交", "page_size": 5}).json()
    assert set(body) >= {"count", "results", "facets", "page", "page_size", "partial", "sort"}
    assert body["page_size"] == 5 and body["page"] == 1
    assert set(body["facets"]) == {"theme", "provider", "open_type", "format", "update_frequency", "grade"}
    result = body["results"][0]
    assert result["open_type_label"] == "无条件开放"
    assert result["closed_reason"] is None and result["pending"] is None
