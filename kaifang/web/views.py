"""Site-wide pages: home, help, health."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
def healthz(request: Request) -> Response:
    """200 when the database and the file store answer."""
    kf = request.app.state.kf
    try:
        with kf.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        home = kf.settings.home
        writable = home.is_dir()
    except Exception:  # noqa: BLE001 - any failure means "not healthy"
        return JSONResponse({"status": "error", "message": "数据库不可用"}, status_code=503)
    if not writable:
        return JSONResponse({"status": "error", "message": "文件存储不可用"}, status_code=503)
    return JSONResponse({"status": "ok"})
