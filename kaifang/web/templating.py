"""Jinja2 pages: one `render` that gives every template the same base context."""

from __future__ import annotations

import base64
import gettext
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from kaifang.accounts.models import (
    ORG_ROLE_LABELS,
    ORG_TYPE_LABELS,
    SYSTEM_ROLE_LABELS,
    USER_TYPE_LABELS,
)
from kaifang.accounts.permissions import Actor
from kaifang.catalog.models import (
    ACCESS_METHOD_LABELS,
    FREQUENCY_LABELS,
    OPEN_TYPE_HELP,
    OPEN_TYPE_LABELS,
    STATUS_LABELS,
    TAXONOMY_LABELS,
)
from kaifang.datastore.models import VERSION_STATUS_LABELS
from kaifang.datastore.types import COLUMN_TYPE_LABELS
from kaifang.settings import Settings
from kaifang.web.security import CurrentUser, csrf_token_for

TEMPLATES = Path(__file__).parent / "templates"
LOCALES = Path(__file__).parent.parent / "locale"
CITY_TZ = ZoneInfo("Asia/Shanghai")
FLASH_COOKIE = "kf_flash"


def local_date(value: datetime | date | None, fmt: str = "%Y-%m-%d") -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(CITY_TZ)
    return value.strftime(fmt)


def local_datetime(value: datetime | None) -> str:
    return local_date(value, "%Y-%m-%d %H:%M") if value else ""


def cn_number(n: int | None) -> str:
    """Large numbers as people read them: 12,345 / 3.2万 / 1.5亿."""
    n = n or 0
    if n >= 100_000_000:
        return f"{n / 100_000_000:.1f}亿".replace(".0亿", "亿")
    if n >= 100_000:
        return f"{n / 10_000:.1f}万".replace(".0万", "万")
    return f"{n:,}"


def make_environment(settings: Settings) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined if settings.mode == "test" else jinja2.Undefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    translations = gettext.translation("messages", LOCALES, languages=["zh_CN"], fallback=True)
    env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(date=local_date, datetime=local_datetime, cn_number=cn_number)
    env.globals.update(
        OPEN_TYPE_LABELS={str(k): v for k, v in OPEN_TYPE_LABELS.items()},
        OPEN_TYPE_HELP={str(k): v for k, v in OPEN_TYPE_HELP.items()},
        STATUS_LABELS={str(k): v for k, v in STATUS_LABELS.items()},
        FREQUENCY_LABELS=FREQUENCY_LABELS,
        ACCESS_METHOD_LABELS=ACCESS_METHOD_LABELS,
        TAXONOMY_LABELS={str(k): v for k, v in TAXONOMY_LABELS.items()},
        USER_TYPE_LABELS={str(k): v for k, v in USER_TYPE_LABELS.items()},
        ORG_TYPE_LABELS={str(k): v for k, v in ORG_TYPE_LABELS.items()},
        ORG_ROLE_LABELS={str(k): v for k, v in ORG_ROLE_LABELS.items()},
        SYSTEM_ROLE_LABELS={str(k): v for k, v in SYSTEM_ROLE_LABELS.items()},
        VERSION_STATUS_LABELS={str(k): v for k, v in VERSION_STATUS_LABELS.items()},
        COLUMN_TYPE_LABELS={str(k): v for k, v in COLUMN_TYPE_LABELS.items()},
    )
    return env


@dataclass(frozen=True)
class Site:
    name: str
    sponsor: str
    organizer: str
    contact: str
    site_code: str
    icp: str
    police_record: str


def _sign(secret: str, payload: bytes) -> str:
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()[:32]


def flash(response: Response, settings: Settings, kind: str, message: str) -> Response:
    """Carry one message to the next page in a short-lived signed cookie."""
    payload = base64.urlsafe_b64encode(json.dumps([kind, message], ensure_ascii=False).encode())
    value = payload.decode() + "." + _sign(settings.secret_key, payload)
    response.set_cookie(
        FLASH_COOKIE, value, max_age=60, httponly=True, samesite="lax", secure=settings.cookie_secure
    )
    return response


def _read_flash(request: Request, settings: Settings) -> list[tuple[str, str]]:
    value = request.cookies.get(FLASH_COOKIE, "")
    payload, _, sig = value.partition(".")
    if not payload or not hmac.compare_digest(sig, _sign(settings.secret_key, payload.encode())):
        return []
    try:
        kind, message = json.loads(base64.urlsafe_b64decode(payload))
    except ValueError:
        return []
    return [(str(kind), str(message))]


def settings_of(request: Request) -> Settings:
    """The settings of the app serving the request."""
    settings: Settings = request.app.state.kf.settings
    return settings


def redirect(
    url: str, settings: Settings | None = None, message: str = "", kind: str = "success"
) -> Response:
    response = RedirectResponse(url, status_code=303)
    if settings is not None and message:
        flash(response, settings, kind, message)
    return response


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> Response:
    kf = request.app.state.kf
    settings: Settings = kf.settings
    actor: Actor = getattr(request.state, "actor", Actor())
    current: CurrentUser | None = getattr(request.state, "current_user", None)
    flashes = _read_flash(request, settings)
    base = {
        "request": request,
        "actor": actor,
        "current_user": current,
        "csrf_token": csrf_token_for(
            settings.secret_key, request.scope.get("state", {}).get("csrf_nonce", "")
        ),
        "site": kf.site,
        "flash": flashes,
        "settings": settings,
    }
    html = kf.templates.get_template(template).render({**base, **(context or {})})
    response = HTMLResponse(html, status_code=status)
    if flashes:
        response.delete_cookie(FLASH_COOKIE)
    return response
