"""Accounts as a government system must protect them: password policy, argon2, lockout, verified
e-mail, idle sessions, single-use reset links, hashed API keys, and the `kaifang apikey` command."""

from __future__ import annotations

import re
from datetime import timedelta
from email import policy
from email.parser import BytesParser

import pytest
from sqlalchemy import select, text

from kaifang import cli
from kaifang.accounts import service
from kaifang.accounts.models import ApiKey, AuthSession, EmailToken, User
from kaifang.accounts.service import Registration
from kaifang.audit.models import AuditRecord
from kaifang.audit.tags import Tag
from kaifang.db import utcnow
from kaifang.errors import InvalidInput, Locked, NotFound, PermissionDenied
from tests.conftest import CJK, PASSWORD, Factory

GOOD = "Haihe-River-2026"


def _link_token(platform, kind: str) -> str:
    """The token of the newest mailed link of a kind (verify-email / reset-password)."""
    parser = BytesParser(policy=policy.default)
    for path in sorted(platform.settings.outbox_dir.glob("*.eml"), reverse=True):
        body = parser.parsebytes(path.read_bytes()).get_body(("plain",)).get_content()
        found = re.search(rf"/{kind}\?token=([\w-]+)", body)
        if found:
            return found.group(1)
    raise AssertionError(f"no {kind} mail in the outbox")


# --- password policy and hashing ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("Ab1-x", "至少"),
        ("Short-1a", "至少"),
        ("onlylowercaseletters", "三类"),
        ("lowercase-and-symbols", "三类"),
        ("ALLUPPER1234567", "三类"),
        ("Zhangsan-2026!", "用户名"),
        ("My-Password-2026", "常见"),
        ("Qwerty-Haihe-2026", "常见"),
    ],
)
def test_password_policy_refuses(platform, password: str, problem: str) -> None:
    with pytest.raises(InvalidInput) as err:
        service.check_password_policy(password, "zhangsan", platform.settings)
    assert problem in err.value.message
    assert CJK.search(err.value.fields["password"])


@pytest.mark.parametrize("password", [GOOD, "海河市-Open-2026", "correct horse Battery 9"])
def test_password_policy_accepts(platform, password: str) -> None:
    service.check_password_policy(password, "zhangsan", platform.settings)


def test_registration_stores_an_argon2_hash_and_needs_verification(platform, db) -> None:
    user = service.register(
        db,
        platform.mailer,
        platform.settings,
        Registration(username="Li-Ming", email="Li.Ming@Example.com", password=GOOD, display_name="李明"),
    )
    db.commit()
    assert user.username == "li-ming" and user.email == "li.ming@example.com"
    assert user.password_hash.startswith("$argon2")
    assert GOOD not in user.password_hash
    with pytest.raises(PermissionDenied) as err:
        service.authenticate(db, platform.settings, "li-ming", GOOD)
    assert "邮箱" in err.value.message
    db.rollback()
    verified = service.verify_email(db, _link_token(platform, "verify-email"))
    assert verified.email_verified_at is not None
    db.commit()
    assert service.authenticate(db, platform.settings, "LI.MING@example.com", GOOD).id == user.id
    with pytest.raises(InvalidInput):  # the verification link works once
        service.verify_email(db, _link_token(platform, "verify-email"))


def test_registration_validates_every_field(platform, db, factory: Factory) -> None:
    factory.user("taken")
    with pytest.raises(InvalidInput) as err:
        service.register(
            db,
            platform.mailer,
            platform.settings,
            Registration(
                username="taken",
                email="taken@example.com",
                password="weak",
                display_name="",
                user_type="legal_person",
                organisation_name="",
                credit_code="91350100M000100Y44",
            ),
        )
    assert set(err.value.fields) == {
        "username",
        "email",
        "password",
        "display_name",
        "organisation_name",
        "credit_code",
    }
    assert all(CJK.search(m) for m in err.value.fields.values())


def test_legal_person_registers_with_a_valid_credit_code(platform, db) -> None:
    user = service.register(
        db,
        platform.mailer,
        platform.settings,
        Registration(
            username="haihe-tech",
            email="ceo@haihe-tech.example.com",
            password=GOOD,
            display_name="王总",
            user_type="legal_person",
            organisation_name="海河科技有限公司",
            credit_code="91350100m000100y43",
        ),
    )
    assert user.credit_code == "91350100M000100Y43"


@pytest.mark.parametrize(
    ("code", "valid"),
    [
        ("91350100M000100Y43", True),
        ("91350100M000100Y44", False),  # wrong check character
        ("91350100M000100Y4", False),  # 17 characters
        ("91350100M000100Y433", False),
        ("91350100I000100Y43", False),  # I is not in the code alphabet
        ("", False),
    ],
)
def test_credit_code_check_character(code: str, valid: bool) -> None:
    assert service.valid_credit_code(code) is valid


# --- login: lockout, verification, disabled accounts --------------------------------------------


@pytest.fixture
def few_failures(platform, monkeypatch) -> int:
    """A lower lockout threshold, read from the settings as in production (each try is an argon2 check)."""
    monkeypatch.setattr(platform.settings, "login_max_failures", 3)
    return 3


def _login(platform, login: str, password: str) -> User:
    """Authenticate in its own transaction, rolled back on refusal as a request would be."""
    with platform.db.session() as db:
        return service.authenticate(db, platform.settings, login, password, ip="203.0.113.9")


def _user(platform, username: str) -> User:
    with platform.db.session() as db:
        return db.scalars(select(User).where(User.username == username)).one()


def test_failed_login_count_survives_the_refusal(platform, factory: Factory) -> None:
    factory.user("li")
    with pytest.raises(InvalidInput) as err:
        _login(platform, "li", "wrong-password")
    assert err.value.message == "用户名或密码错误"
    assert _user(platform, "li").failed_logins == 1
    with platform.db.session() as db:
        failures = db.scalars(select(AuditRecord).where(AuditRecord.action == Tag.account_login_failed)).all()
    assert len(failures) == 1 and failures[0].ip == "203.0.113.9"


def test_lockout_after_max_failures_even_with_the_right_password(
    platform, factory: Factory, few_failures: int
) -> None:
    factory.user("li")
    for i in range(few_failures):
        if i == few_failures - 1:
            assert _user(platform, "li").locked_until is None  # not locked one failure before the limit
        with pytest.raises(InvalidInput):
            _login(platform, "li", "wrong-password")
    locked_until = _user(platform, "li").locked_until
    assert locked_until is not None and locked_until > utcnow()
    with pytest.raises(Locked) as err:
        _login(platform, "li", PASSWORD)
    assert "锁定" in err.value.message
    with pytest.raises(Locked):
        _login(platform, "li", "wrong-password")
    assert _user(platform, "li").locked_until == locked_until  # refusing a locked account extends nothing
    with platform.db.session() as db:
        db.execute(
            text("UPDATE users SET locked_until = :t WHERE username = 'li'"),
            {"t": utcnow() - timedelta(seconds=1)},
        )
    user = _login(platform, "li", PASSWORD)
    assert user.failed_logins == 0 and user.locked_until is None and user.last_login_at is not None
    with platform.db.session() as db:
        actions = db.scalars(
            select(AuditRecord.action).where(AuditRecord.target_id == str(user.id)).order_by(AuditRecord.id)
        ).all()
    assert actions.count(Tag.account_login_locked) == 1
    assert actions[-1] == Tag.account_login_succeeded


def test_lockout_counts_login_by_email_too(platform, factory: Factory, few_failures: int) -> None:
    factory.user("li")
    for i in range(few_failures):
        with pytest.raises(InvalidInput):
            _login(platform, "li@example.com" if i % 2 else "LI", "wrong-password")
    with pytest.raises(Locked):
        _login(platform, "li", PASSWORD)


def test_unknown_user_gets_the_same_answer(platform) -> None:
    with pytest.raises(InvalidInput) as err:
        _login(platform, "nobody", "wrong-password")
    assert err.value.message == "用户名或密码错误"


def test_unverified_email_refused(platform, factory: Factory) -> None:
    factory.user("li", verified=False)
    with pytest.raises(PermissionDenied) as err:
        _login(platform, "li", PASSWORD)
    assert "邮箱尚未验证" in err.value.message


def test_disabled_user_refused(platform, factory: Factory) -> None:
    factory.user("li", active=False)
    with pytest.raises(PermissionDenied) as err:
        _login(platform, "li", PASSWORD)
    assert "停用" in err.value.message


# --- sessions -----------------------------------------------------------------------------------


def test_session_ends_when_idle(platform, factory: Factory) -> None:
    user = factory.user("li")
    settings = platform.settings
    with platform.db.session() as db:
        token = service.create_session(db, settings, db.get(User, user.id))
    with platform.db.session() as db:
        assert service.resolve_session(db, settings, token).id == user.id
        stored = db.scalars(select(AuthSession)).one()
        assert stored.token_hash != token and token not in stored.token_hash
        stored.last_seen_at = utcnow() - timedelta(minutes=settings.session_idle_minutes - 1)
    with platform.db.session() as db:
        assert service.resolve_session(db, settings, token) is not None  # still within the idle time
        db.scalars(select(AuthSession)).one().last_seen_at = utcnow() - timedelta(
            minutes=settings.session_idle_minutes + 1
        )
    with platform.db.session() as db:
        assert service.resolve_session(db, settings, token) is None
    with platform.db.session() as db:
        row = db.scalars(select(AuthSession)).one()
        assert row.ended_at is not None
        row.last_seen_at = utcnow()  # an ended session stays ended
    with platform.db.session() as db:
        assert service.resolve_session(db, settings, token) is None


def test_session_ends_at_its_absolute_lifetime(platform, factory: Factory) -> None:
    user = factory.user("li")
    with platform.db.session() as db:
        token = service.create_session(db, platform.settings, db.get(User, user.id))
        db.flush()
        db.scalars(select(AuthSession)).one().expires_at = utcnow() - timedelta(seconds=1)
    with platform.db.session() as db:
        assert service.resolve_session(db, platform.settings, token) is None


def test_session_of_disabled_user_is_refused(platform, factory: Factory) -> None:
    user = factory.user("li")
    with platform.db.session() as db:
        token = service.create_session(db, platform.settings, db.get(User, user.id))
    with platform.db.session() as db:
        db.get(User, user.id).is_active = False
    with platform.db.session() as db:
        assert service.resolve_session(db, platform.settings, token) is None


# --- password reset -----------------------------------------------------------------------------


def test_password_reset_is_single_use_and_ends_sessions(platform, factory: Factory) -> None:
    user = factory.user("li")
    settings = platform.settings
    with platform.db.session() as db:
        session_token = service.create_session(db, settings, db.get(User, user.id))
        service.request_password_reset(db, platform.mailer, settings, "LI@example.com ")
    token = _link_token(platform, "reset-password")
    with platform.db.session() as db:
        assert db.scalars(select(EmailToken)).one().token_hash != token
    with pytest.raises(InvalidInput), platform.db.session() as db:  # the new password meets the policy too
        service.reset_password(db, settings, token, "weak")
    with platform.db.session() as db:
        service.reset_password(db, settings, token, GOOD)
    with platform.db.session() as db:
        assert service.resolve_session(db, settings, session_token) is None
        with pytest.raises(InvalidInput) as err:
            service.reset_password(db, settings, token, "Another-Pass-2027")
        assert CJK.search(err.value.message)
    assert _login(platform, "li", GOOD).id == user.id
    with pytest.raises(InvalidInput):
        _login(platform, "li", PASSWORD)


def test_weak_password_does_not_use_up_the_reset_link(platform, factory: Factory) -> None:
    factory.user("li")
    with platform.db.session() as db:
        service.request_password_reset(db, platform.mailer, platform.settings, "li@example.com")
    token = _link_token(platform, "reset-password")
    with pytest.raises(InvalidInput), platform.db.session() as db:
        service.reset_password(db, platform.settings, token, "weak")
    with platform.db.session() as db:
        service.reset_password(db, platform.settings, token, GOOD)


def test_expired_reset_link_refused(platform, factory: Factory) -> None:
    factory.user("li")
    with platform.db.session() as db:
        service.request_password_reset(db, platform.mailer, platform.settings, "li@example.com")
    token = _link_token(platform, "reset-password")
    with platform.db.session() as db:
        db.scalars(select(EmailToken)).one().expires_at = utcnow() - timedelta(seconds=1)
    with pytest.raises(InvalidInput), platform.db.session() as db:
        service.reset_password(db, platform.settings, token, GOOD)
    assert _login(platform, "li", PASSWORD).username == "li"


def test_reset_link_is_not_a_verification_link(platform, factory: Factory) -> None:
    factory.user("li")
    with platform.db.session() as db:
        service.request_password_reset(db, platform.mailer, platform.settings, "li@example.com")
    with pytest.raises(InvalidInput), platform.db.session() as db:
        service.verify_email(db, _link_token(platform, "reset-password"))


def test_reset_for_unknown_address_sends_nothing(platform) -> None:
    with platform.db.session() as db:
        service.request_password_reset(db, platform.mailer, platform.settings, "nobody@example.com")
    assert list(platform.settings.outbox_dir.glob("*.eml")) == []


def test_reset_unlocks_a_locked_account(platform, factory: Factory, few_failures: int) -> None:
    factory.user("li")
    for _ in range(few_failures):
        with pytest.raises(InvalidInput):
            _login(platform, "li", "wrong-password")
    with platform.db.session() as db:
        service.request_password_reset(db, platform.mailer, platform.settings, "li@example.com")
        service.reset_password(db, platform.settings, _link_token(platform, "reset-password"), GOOD)
    assert _login(platform, "li", GOOD).username == "li"


# --- API keys -----------------------------------------------------------------------------------


def _all_text(db, table: str) -> str:
    return "\n".join(str(tuple(row)) for row in db.execute(text(f"SELECT * FROM {table}")))


def test_api_keys_are_stored_hashed(client, platform, factory: Factory) -> None:
    user = factory.user("li")
    with platform.db.session() as db:
        key, plain = service.create_api_key(db, factory.actor(user), "数据分析脚本")
        key_id = key.id
    with platform.db.session() as db:
        for table in ("api_keys", "audit_records"):
            dump = _all_text(db, table)
            assert plain not in dump and plain.split("_", 2)[2] not in dump, table
        assert db.get(ApiKey, key_id).key_hash == service.sha256(plain)
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {plain}"})
    assert me.status_code == 200 and me.json()["username"] == "li"


def test_revoked_key_refused(client, platform, factory: Factory) -> None:
    user = factory.user("li")
    plain = factory.api_key(user)
    headers = {"Authorization": f"Bearer {plain}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    with platform.db.session() as db:
        key_id = db.scalars(select(ApiKey.id)).one()
        service.revoke_api_key(db, factory.actor(user), key_id)
    with platform.db.session() as db:
        assert service.resolve_api_key(db, plain) is None
    response = client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401 and CJK.search(response.json()["error"]["message"])
    assert client.get("/api/v1/datasets", headers=headers).status_code == 401  # a bad key is not ignored


def test_key_of_disabled_user_refused(client, platform, factory: Factory) -> None:
    user = factory.user("li")
    plain = factory.api_key(user)
    with platform.db.session() as db:
        db.get(User, user.id).is_active = False
    assert client.get("/api/v1/me", headers={"X-API-Key": plain}).status_code == 401


def test_users_cannot_revoke_each_others_keys(platform, factory: Factory) -> None:
    owner, other = factory.user("li"), factory.user("wang")
    factory.api_key(owner)
    with platform.db.session() as db:
        key_id = db.scalars(select(ApiKey.id)).one()
        with pytest.raises(NotFound):
            service.revoke_api_key(db, factory.actor(other), key_id)
        assert db.get(ApiKey, key_id).revoked_at is None


def test_tampered_key_refused(platform, factory: Factory) -> None:
    plain = factory.api_key(factory.user("li"))
    prefix, secret = plain.rsplit("_", 1)
    with platform.db.session() as db:
        for bad in (
            prefix + "_" + secret[:-1] + ("A" if secret[-1] != "A" else "B"),
            prefix + "_",
            "kf_",
            "",
            "kf_00000000_" + secret,
            plain.upper(),
        ):
            assert service.resolve_api_key(db, bad) is None, bad


def test_cli_apikey_create_prints_a_working_key(
    client, monkeypatch, capsys, database_url, home, factory: Factory
) -> None:
    factory.user("li")
    monkeypatch.setenv("KAIFANG_HOME", str(home))
    monkeypatch.setenv("KAIFANG_DATABASE_URL", database_url)
    assert cli.main(["apikey", "create", "LI", "--name", "夜间同步"]) == 0
    plain = capsys.readouterr().out.strip()
    assert plain.startswith("kf_")
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {plain}"})
    assert me.status_code == 200 and me.json()["username"] == "li"
    keys = client.get("/api/v1/me/api-keys", headers={"Authorization": f"Bearer {plain}"}).json()
    assert [k["name"] for k in keys] == ["夜间同步"]
    assert cli.main(["apikey", "create", "nobody"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and CJK.search(captured.err)
