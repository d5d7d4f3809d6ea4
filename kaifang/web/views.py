"""Site-wide pages: home, help, developer docs, the demo mail outbox, health."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from kaifang.accounts.permissions import Actor
from kaifang.catalog import search, service
from kaifang.errors import NotFound
from kaifang.ratelimit import rate_label
from kaifang.web.security import DB, CurrentActor
from kaifang.web.templating import render

router = APIRouter(include_in_schema=False)

NEWEST_ON_HOME = 8
OUTBOX_LIMIT = 100
DEMO_MODES = ("dev", "demo", "test")
ERROR_STATUSES = (
    (400, "请求格式不正确，例如缺少参数"),
    (401, "未登录或 API 密钥无效、已撤销"),
    (403, "没有执行该操作的权限"),
    (404, "数据目录或资源不存在，或对您不可见"),
    (409, "当前状态不允许该操作，例如目录正在等待确认"),
    (422, "参数或提交内容有误，fields 列出每个字段的问题"),
    (423, "账号因多次登录失败被临时锁定"),
    (429, "调用过于频繁，请稍后再试"),
)


# --- home -----------------------------------------------------------------------------------------


@dataclass
class ThemeTile:
    code: str
    name: str
    count: int


@router.get("/")
def home(request: Request, db: DB, actor: CurrentActor) -> Response:
    """Search box, theme tiles, open figures and the newest entries of the public catalog.

    The figures are those of the public catalog (an anonymous visitor's view), so the home page
    says the same to everyone and a 不予开放 entry is never counted as open.
    """
    public = Actor(ip=actor.ip)
    result = search.search_catalog(
        db, public, "", sort="newest", page_size=NEWEST_ON_HOME, labels=service.term_names(db)
    )
    theme_counts = {fv.value: fv.count for fv in result.facets["theme"]}
    tiles = [ThemeTile(t.code, t.name, theme_counts.get(t.code, 0)) for t in service.list_terms(db, "theme")]
    context = {
        "newest": result.entries,
        "entry_count": result.count,
        "provider_count": len(result.facets["provider"]),
        "theme_count": sum(1 for t in tiles if t.count),
        "tiles": tiles,
        "names": service.term_names(db),
    }
    return render(request, "home.html", context)


# --- help -----------------------------------------------------------------------------------------


@router.get("/help")
def help_page(request: Request, db: DB, actor: CurrentActor) -> Response:
    """帮助中心: guides for users and the training guide for provider staff (Art. 31)."""
    context = {"grades": service.list_terms(db, "grade"), "themes": service.list_terms(db, "theme")}
    return render(request, "help.html", context)


# --- developer docs (/docs) -----------------------------------------------------------------------


@dataclass
class ApiParameter:
    name: str
    location: str
    required: bool
    type: str
    description: str


@dataclass
class ApiOperation:
    method: str
    path: str
    summary: str
    description: str
    tag: str
    parameters: list[ApiParameter]
    body_schema: str
    body_fields: list[ApiParameter]
    response_schema: str
    curl: str
    anchor: str


@dataclass
class ApiGroup:
    name: str
    operations: list[ApiOperation] = field(default_factory=list)


# Descriptions of common parameters that the routes do not describe themselves.
PARAMETER_HINTS = {
    "page": "页码，从 1 开始",
    "page_size": "每页条数",
    "entry_id": "数据目录编号",
    "key_id": "密钥编号",
    "rid": "数据资源编号",
}
_CJK = re.compile(r"[\u4e00-\u9fff]")
LOCATION_LABELS = {"query": "查询参数", "path": "路径参数", "header": "请求头", "cookie": "Cookie"}
TYPE_LABELS = {
    "string": "文本",
    "integer": "整数",
    "number": "数字",
    "boolean": "布尔",
    "array": "列表",
    "object": "对象",
}


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        return dict(spec.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[1], {}))
    return schema


def _type_label(schema: dict[str, Any]) -> str:
    """A short Chinese type description: 整数（1–10000），文本列表 …"""
    options = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    first = options[0] if options else {}
    kind = first.get("type", "")
    label = TYPE_LABELS.get(kind, kind or "对象")
    if kind == "array":
        label = TYPE_LABELS.get(first.get("items", {}).get("type", ""), "") + "列表"
    if "enum" in first:
        label += "：" + " | ".join(str(v) for v in first["enum"])
    lo, hi = first.get("minimum"), first.get("maximum")
    if lo is not None or hi is not None:
        label += f"（{'' if lo is None else lo}–{'' if hi is None else hi}）"
    if "format" in first:
        label += "，" + {"date": "YYYY-MM-DD", "date-time": "ISO 8601 时间"}.get(
            first["format"], first["format"]
        )
    return label


def _chinese_only(text_: str) -> str:
    """Route docstrings are written for developers in English; the page shows Chinese text only."""
    return text_ if _CJK.search(text_) else ""


def _parameters(op: dict[str, Any]) -> list[ApiParameter]:
    out = []
    for p in op.get("parameters", []):
        schema = p.get("schema", {})
        description = p.get("description") or schema.get("description") or PARAMETER_HINTS.get(p["name"], "")
        if "default" in schema and schema["default"] not in ("", None):
            description = (description + f"（默认 {schema['default']}）").strip()
        out.append(
            ApiParameter(
                p["name"],
                LOCATION_LABELS.get(p["in"], p["in"]),
                bool(p.get("required")),
                _type_label(schema),
                description,
            )
        )
    return out


def _body(op: dict[str, Any], spec: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """(content type, schema name, resolved schema) of the request body, or empty values."""
    content = op.get("requestBody", {}).get("content", {})
    for content_type, media in content.items():
        schema = media.get("schema", {})
        name = schema.get("$ref", "").rsplit("/", 1)[-1]
        return content_type, name, _resolve(schema, spec)
    return "", "", {}


def _body_fields(schema: dict[str, Any]) -> list[ApiParameter]:
    required = set(schema.get("required", []))
    return [
        ApiParameter(name, "请求体", name in required, _type_label(prop), prop.get("description", ""))
        for name, prop in schema.get("properties", {}).items()
    ]


def _example_value(prop: dict[str, Any]) -> Any:
    options = [s for s in prop.get("anyOf", [prop]) if s.get("type") != "null"]
    kind = options[0].get("type") if options else "string"
    return {"integer": 1, "number": 1, "boolean": False, "array": [], "object": {}}.get(kind or "", "示例")


def _response_schema(op: dict[str, Any]) -> str:
    for status, response in op.get("responses", {}).items():
        if status.startswith("2"):
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            if "$ref" in schema:
                return str(schema["$ref"].rsplit("/", 1)[-1])
            if schema.get("type") == "array" and "$ref" in schema.get("items", {}):
                return str(schema["items"]["$ref"].rsplit("/", 1)[-1]) + " 列表"
    return ""


def _curl(base_url: str, method: str, path: str, content_type: str, schema: dict[str, Any]) -> str:
    url = base_url.rstrip("/") + path
    for segment in [s for s in path.split("/") if s.startswith("{")]:
        url = url.replace(segment, "1")
    lines = [
        f"curl -X {method}" if method != "GET" else "curl",
        '  -H "Authorization: Bearer $KAIFANG_API_KEY"',
    ]
    if content_type == "application/json":
        props = schema.get("properties", {})
        chosen = schema.get("required") or list(props)[:1]
        example = {name: _example_value(props.get(name, {})) for name in chosen}
        lines += [
            '  -H "Content-Type: application/json"',
            "  -d '" + json.dumps(example, ensure_ascii=False) + "'",
        ]
    elif content_type.startswith("multipart/"):
        lines.append('  -F "file=@数据文件.csv"')
    lines.append(f'  "{url}"')
    return " \\\n".join(lines)


def api_groups(spec: dict[str, Any], base_url: str) -> list[ApiGroup]:
    """Every path and method of the OpenAPI document, grouped by tag, in document order."""
    groups: dict[str, ApiGroup] = {}
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            if not isinstance(op, dict) or method.startswith("x-") or method == "parameters":
                continue
            tag = (op.get("tags") or ["其他"])[0]
            content_type, body_name, body_schema = _body(op, spec)
            anchor = (method + path).replace("/", "-").replace("{", "").replace("}", "")
            groups.setdefault(tag, ApiGroup(tag)).operations.append(
                ApiOperation(
                    method=method.upper(),
                    path=path,
                    summary=op.get("summary", ""),
                    description=_chinese_only(op.get("description", "")),
                    tag=tag,
                    parameters=_parameters(op),
                    body_schema=body_name,
                    body_fields=_body_fields(body_schema),
                    response_schema=_response_schema(op),
                    curl=_curl(base_url, method.upper(), path, content_type, body_schema),
                    anchor=anchor,
                )
            )
    return list(groups.values())


@router.get("/docs")
def docs(request: Request, actor: CurrentActor) -> Response:
    """数据接口: the developer guide, rendered offline from the app's own OpenAPI document."""
    kf = request.app.state.kf
    spec = request.app.openapi()
    context = {
        "api_title": spec.get("info", {}).get("title", ""),
        "api_version": spec.get("info", {}).get("version", ""),
        "groups": api_groups(spec, kf.settings.base_url),
        "base_url": kf.settings.base_url.rstrip("/"),
        "error_statuses": ERROR_STATUSES,
        "api_rate_limit": rate_label(kf.settings.api_rate_limit),
        "max_page_size": kf.settings.max_page_size,
    }
    return render(request, "docs.html", context)


# --- demo mail outbox -----------------------------------------------------------------------------


@dataclass
class OutboxMail:
    to: str
    subject: str
    body: str


@router.get("/dev/outbox")
def outbox(request: Request, actor: CurrentActor) -> Response:
    """The file mail outbox, newest first, so a demo user can follow verification and reset links.

    Only in dev, demo and test mode: in production the platform sends real mail and this page
    does not exist.
    """
    kf = request.app.state.kf
    messages = getattr(kf.mailer, "messages", None)
    if kf.settings.mode not in DEMO_MODES or messages is None:
        raise NotFound("页面不存在")
    mails = [
        OutboxMail(str(m["To"] or ""), str(m["Subject"] or ""), _body_text(m)) for m in reversed(messages())
    ][:OUTBOX_LIMIT]
    return render(request, "outbox.html", {"mails": mails})


def _body_text(message: Any) -> str:
    try:
        return str(message.get_content())
    except (KeyError, LookupError, AttributeError):
        return str(message.get_payload())
