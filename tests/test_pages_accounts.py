"""Account pages: register → verify → log in → log out, lockout, password reset, 个人中心, API keys, CSRF."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from fastapi.testclient import TestClient

from kaifang.app import Platform
from tests.conftest import PASSWORD, Factory, csrf_token, login

NEW_PASSWORD = "Brand-new-pass-2027"
KEY = re.compile(r"kf_[0-9a-f]{8}_[A-Za-z0-9_-]{20,}")


def post(client: TestClient, url: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """A form post from our own pages: with the CSRF token, without following the redirect."""
    return client.post(
        url, data={**(data or {}), "csrf_token": csrf_token(client)}, follow_redirects=False, **kwargs
    )


def mail_link(platform: Platform, to: str, path: str) -> str:
    """The path and query of the newest link to `path` mailed to `to`."""
    for message in reversed(platform.mailer.messages()):  # type: ignore[attr-defined]
        if message["To"] == to:
            match = re.search(r"https?://\S+" + re.escape(path) + r"\S*", message.get_content())
            if match:
                url = urlsplit(match.group())
                return f"{url.path}?{url.query}"
    raise AssertionError(f"no mail to {to} with {path}")


def signed_in(client: TestClient) -> bool:
    return client.get("/account", follow_redirects=False).status_code == 200


REGISTRATION = {
    "user_type": "individual",
    "username": "zhang-san",
    "display_name": "张三",
    "email": "zhangsan@example.com",
    "password": "Haihe-River-2026!",
    "password2": "Haihe-River-2026!",
}


# --- register, verify, log in, log out ------------------------------------------------------------


def test_register_verify_login_logout(client: TestClient, platform: Platform) -> None:
    assert "自然人" in client.get("/register").text
    done = post(client, "/register", REGISTRATION)
    assert done.status_code == 200
    assert "验证邮件已发送至 zhangsan@example.com" in done.text
    assert 'href="/dev/outbox"' in done.text
    assert "请验证您的邮箱" in client.get("/dev/outbox").text

    refused = post(client, "/login", {"login": "zhang-san", "password": REGISTRATION["password"]})
    assert refused.status_code == 403 and "邮箱尚未验证" in refused.text

    verified = client.get(
        mail_link(platform, "zhangsan@example.com", "/verify-email"), follow_redirects=False
    )
    assert verified.status_code == 303 and verified.headers["location"] == "/login"
    assert "邮箱验证成功" in client.get("/login").text

    response = post(client, "/login", {"login": "zhangsan@example.com", "password": REGISTRATION["password"]})
    assert response.status_code == 303 and response.headers["location"] == "/account"
    cookie = response.headers["set-cookie"]
    assert (
        "kf_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    )
    account = client.get("/account").text
    assert "zhang-san" in account and "张三" in account and "已验证" in account

    out = post(client, "/logout")
    assert out.status_code == 303 and out.headers["location"] == "/"
    assert not signed_in(client)


def test_register_as_legal_person_needs_organisation_and_credit_code(client: TestClient) -> None:
    form = {**REGISTRATION, "user_type": "legal_person"}
    response = post(client, "/register", form)
    assert response.status_code == 422
    assert "法人和其他组织须填写单位名称" in response.text
    assert "统一社会信用代码应为 18 位且校验位正确" in response.text
    assert 'value="zhang-san"' in response.text  # what was typed is kept
    ok = post(
        client,
        "/register",
        {**form, "organisation_name": "海河数据科技有限公司", "credit_code": "91120100MA05KF0F0N"},
    )
    assert ok.status_code == 200 and "验证邮件已发送至" in ok.text


@pytest.mark.parametrize(
    ("password", "password2", "message"),
    [
        ("short1A!", "short1A!", "至少 10 个字符"),
        ("alllowercaseletters", "alllowercaseletters", "至少三类"),
        ("Zhang-san-2026!", "Zhang-san-2026!", "不得包含用户名"),
        ("Haihe-River-2026!", "Haihe-River-2027!", "两次输入的密码不一致"),
    ],
)
def test_registration_shows_password_policy_errors(
    client: TestClient, password: str, password2: str, message: str
) -> None:
    response = post(client, "/register", {**REGISTRATION, "password": password, "password2": password2})
    assert response.status_code == 422
    assert message in response.text
    assert 'aria-invalid="true"' in response.text
    assert password not in response.text  # passwords are never echoed back


def test_bad_verification_link_offers_a_new_one(
    client: TestClient, factory: Factory, platform: Platform
) -> None:
    response = client.get("/verify-email", params={"token": "not-a-token"})
    assert response.status_code == 400
    assert "验证链接无效或已过期" in response.text and 'action="/verify-email/resend"' in response.text
    factory.user("lisi", verified=False)
    resent = post(client, "/verify-email/resend", {"email": "lisi@example.com"})
    assert resent.status_code == 303
    assert (
        client.get(
            mail_link(platform, "lisi@example.com", "/verify-email"), follow_redirects=False
        ).status_code
        == 303
    )


def test_unverified_login_is_refused_with_a_resend_form(client: TestClient, factory: Factory) -> None:
    factory.user("lisi", verified=False)
    response = post(client, "/login", {"login": "lisi", "password": PASSWORD})
    assert response.status_code == 403
    assert "邮箱尚未验证" in response.text
    assert 'value="lisi@example.com"' in response.text and '<details class="card" open>' in response.text
    assert "kf_session" not in response.headers.get("set-cookie", "")


def test_login_goes_to_a_local_next_page_only(client: TestClient, factory: Factory) -> None:
    factory.user("wangwu")
    for next_, expected in (
        ("/datasets?q=公交", "/datasets?q=公交"),
        ("//evil.example/x", "/account"),
        ("https://evil.example", "/account"),
        ("/\\evil.example", "/account"),
    ):
        response = post(client, "/login", {"login": "wangwu", "password": PASSWORD, "next": next_})
        assert unquote(response.headers["location"]) == expected, next_
    assert 'name="next" value="/account"' in TestClient(client.app).get("/login?next=/account").text


def test_wrong_password_five_times_locks_the_account(client: TestClient, factory: Factory) -> None:
    factory.user("wangwu")
    for _ in range(5):
        response = post(client, "/login", {"login": "wangwu", "password": "Wrong-password-1"})
        assert response.status_code == 422
        assert "用户名或密码错误" in response.text
        assert 'value="wangwu"' in response.text
    locked = post(client, "/login", {"login": "wangwu", "password": PASSWORD})
    assert locked.status_code == 423
    assert "账号已临时锁定" in locked.text
    assert not signed_in(client)


def test_login_attempts_are_rate_limited_per_ip(
    client: TestClient, factory: Factory, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(platform.settings, "login_rate_limit", "3/minute")
    for _ in range(3):
        assert post(client, "/login", {"login": "nobody", "password": "x"}).status_code == 422
    limited = post(client, "/login", {"login": "nobody", "password": "x"})
    assert limited.status_code == 429 and "尝试过于频繁" in limited.text


# --- password reset and change --------------------------------------------------------------------


def test_forgot_and_reset_password_ends_old_sessions(
    client: TestClient, app: Any, factory: Factory, platform: Platform
) -> None:
    factory.user("wangwu")
    login(client, "wangwu")
    with TestClient(app) as other:
        unknown = post(other, "/forgot-password", {"email": "nobody@example.com"})
        known = post(other, "/forgot-password", {"email": "wangwu@example.com"})
        assert unknown.status_code == known.status_code == 200
        assert "我们已向它发送了重置密码的邮件" in known.text
        assert len(platform.mailer.messages()) == 1  # type: ignore[attr-defined]
        link = mail_link(platform, "wangwu@example.com", "/reset-password")
        form = other.get(link).text
        token = re.search(r'name="token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]

        mismatch = post(
            other, "/reset-password", {"token": token, "password": NEW_PASSWORD, "password2": "x"}
        )
        assert mismatch.status_code == 422 and "两次输入的密码不一致" in mismatch.text
        weak = post(other, "/reset-password", {"token": token, "password": "weak", "password2": "weak"})
        assert weak.status_code == 422 and "密码不符合要求" not in weak.text and "至少 10 个字符" in weak.text
        done = post(
            other, "/reset-password", {"token": token, "password": NEW_PASSWORD, "password2": NEW_PASSWORD}
        )
        assert done.status_code == 303 and done.headers["location"] == "/login"
        again = post(
            other, "/reset-password", {"token": token, "password": NEW_PASSWORD, "password2": NEW_PASSWORD}
        )
        assert again.status_code == 400 and "链接无效或已过期" in again.text

    assert not signed_in(client)  # the session opened before the reset has ended
    login(client, "wangwu", NEW_PASSWORD)
    assert signed_in(client)


def test_change_password_keeps_this_browser_signed_in_and_ends_others(
    client: TestClient, app: Any, factory: Factory
) -> None:
    factory.user("wangwu")
    login(client, "wangwu")
    with TestClient(app) as other:
        login(other, "wangwu")
        wrong = post(
            client,
            "/account/password",
            {"old_password": "nope", "new_password": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        )
        assert wrong.status_code == 422 and "原密码不正确" in wrong.text
        weak = post(
            client,
            "/account/password",
            {"old_password": PASSWORD, "new_password": "abc", "new_password2": "abc"},
        )
        assert weak.status_code == 422 and "至少 10 个字符" in weak.text
        ok = post(
            client,
            "/account/password",
            {"old_password": PASSWORD, "new_password": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        )
        assert ok.status_code == 303
        assert signed_in(client)
        assert not signed_in(other)


# --- 个人中心 and API keys ------------------------------------------------------------------------


def test_account_page_needs_login_and_shows_memberships(client: TestClient, factory: Factory) -> None:
    response = client.get("/account", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login?next=/account")
    org = factory.org("jtw", "海河市交通运输委员会")
    factory.user("pub", org=org, roles=("publisher", "reviewer"))
    html = login(client, "pub").get("/account").text
    assert "海河市交通运输委员会：目录发布员、申请审核员" in html


def test_api_key_is_shown_once_works_and_can_be_revoked(
    client: TestClient, app: Any, factory: Factory
) -> None:
    factory.user("dev")
    login(client, "dev")
    created = post(client, "/account/api-keys", {"name": "公交查询小程序"})
    assert created.status_code == 200
    assert "它只显示这一次" in created.text and created.headers["cache-control"] == "no-store"
    key = KEY.search(created.text).group()  # type: ignore[union-attr]
    account = client.get("/account").text
    assert "公交查询小程序" in account and key not in account and f"kf_{key.split('_')[1]}_…" in account

    with TestClient(app) as program:
        me = program.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"})
        assert me.status_code == 200 and me.json()["username"] == "dev"
        key_id = re.search(r'action="/account/api-keys/(\d+)/revoke"', account).group(1)  # type: ignore[union-attr]
        revoked = post(client, f"/account/api-keys/{key_id}/revoke")
        assert revoked.status_code == 303
        assert "已撤销" in client.get("/account").text
        assert program.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"}).status_code == 401


def test_other_users_keys_cannot_be_revoked(client: TestClient, factory: Factory) -> None:
    owner = factory.user("owner")
    factory.api_key(owner)
    factory.user("dev")
    login(client, "dev")
    assert post(client, "/account/api-keys/1/revoke").status_code == 404
    assert post(client, "/account/api-keys/abc/revoke").status_code == 404


# --- CSRF -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/login", "/register", "/forgot-password", "/logout", "/account/api-keys"])
def test_form_posts_without_csrf_token_are_refused(client: TestClient, factory: Factory, url: str) -> None:
    factory.user("dev")
    login(client, "dev")
    response = client.post(
        url, data={"login": "dev", "password": PASSWORD, "name": "x"}, follow_redirects=False
    )
    assert response.status_code == 403
    assert "页面已过期或请求来源无法验证" in response.text
    assert signed_in(client)
