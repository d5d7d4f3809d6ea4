"""Receiving uploads: stream the multipart file into staging, then hand the version to a job."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

from fastapi import Request
from starlette.datastructures import UploadFile

from kaifang.datastore import service
from kaifang.datastore.models import ResourceVersion
from kaifang.datastore.storage import TooLarge
from kaifang.errors import InvalidInput

CHUNK = 1 << 20


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(CHUNK):
        yield chunk


async def stage_upload(request: Request) -> tuple[service.Upload, dict[str, str]]:
    """Stream the multipart `file` into the staging area, with the upload size limit."""
    kf = request.app.state.kf
    limit = kf.settings.upload_max_mb * 1024 * 1024
    form = await request.form(max_files=1, max_fields=20)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise InvalidInput("请用表单字段 file 上传一个文件", fields={"file": "缺少文件"})
    key = f"staging/{secrets.token_hex(16)}"
    try:
        size, digest = await kf.store.put_stream(key, _chunks(upload), limit)
    except TooLarge as exc:
        raise InvalidInput(
            f"文件超过上传大小上限 {kf.settings.upload_max_mb} MB，请拆分后上传", fields={"file": "文件过大"}
        ) from exc
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    return service.Upload(filename=upload.filename, staged_key=key, size=size, sha256=digest), fields


def schedule(request: Request, version: ResourceVersion) -> None:
    kf = request.app.state.kf
    kf.jobs.submit(service.process_version, kf.db, kf.store, version.id)
