"""Every error a client can cause answers with a 4xx and a Chinese message, never a 500 page."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from kaifang.errors import RateLimited, ServiceError

log = logging.getLogger("kaifang")

HTTP_MESSAGES = {
    400: "请求格式不正确",
    401: "请先登录或提供有效的 API 密钥",
    403: "您没有执行此操作的权限",
    404: "您访问的页面或数据不存在",
    405: "不支持该请求方式",
    413: "提交的内容过大",
    415: "不支持的内容类型",
    422: "提交的数据有误",
    429: "请求过于频繁，请稍后再试",
}

VALIDATION_MESSAGES = {
    "missing": "缺少必填项",
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "float_parsing": "应为数字",
    "bool_parsing": "应为是或否",
    "string_type": "应为文本",
    "string_too_long": "内容过长",
    "string_too_short": "内容过短",
    "greater_than_equal": "数值过小",
    "less_than_equal": "数值过大",
    "greater_than": "数值过小",
    "less_than": "数值过大",
    "json_invalid": "不是有效的 JSON",
    "model_attributes_type": "应为 JSON 对象",
    "dict_type": "应为 JSON 对象",
    "list_type": "应为列表",
    "literal_error": "不在可选范围内",
    "enum": "不在可选范围内",
    "date_from_datetime_parsing": "日期格式应为 YYYY-MM-DD",
    "date_parsing": "日期格式应为 YYYY-MM-DD",
    "extra_forbidden": "无法识别的字段",
}


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", "")


def error_body(code: str, message: str, fields: dict[str, str] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    return {"error": error}


def error_response(
    request: Request, status: int, code: str, message: str, fields: dict[str, str] | None = None
) -> Response:
    if wants_json(request):
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(error_body(code, message, fields), status_code=status, headers=headers)
    if status == 401:
        from kaifang.web.templating import redirect

        return redirect(f"/login?next={request.url.path}", request.app.state.kf.settings, message, "info")
    from kaifang.web.templating import render

    return render(
        request, "error.html", {"status": status, "message": message, "fields": fields or {}}, status=status
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> Response:
        response = error_response(request, exc.status, exc.code, exc.message, exc.fields)
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        fields = {}
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "form"))
            fields[loc or "请求"] = VALIDATION_MESSAGES.get(err.get("type", ""), "格式不正确")
        return error_response(
            request,
            422,
            "invalid",
            "提交的数据有误：" + "；".join(f"{k} {v}" for k, v in fields.items()),
            fields,
        )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) and not exc.detail.isascii() else None
        return error_response(
            request,
            exc.status_code,
            f"http_{exc.status_code}",
            message or HTTP_MESSAGES.get(exc.status_code, "请求无法处理"),
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(
            request, 500, "internal", "服务器内部错误，请稍后再试；如持续出现请联系平台运营单位"
        )


async def csrf_reject(scope: Scope, receive: Receive, send: Send, message: str) -> None:
    request = Request(scope, receive)
    if request.url.path.startswith("/api/"):
        response: Response = JSONResponse(error_body("csrf", message), status_code=403)
    else:
        from kaifang.web.templating import render

        response = render(
            request, "error.html", {"status": 403, "message": message, "fields": {}}, status=403
        )
    await response(scope, receive, send)
