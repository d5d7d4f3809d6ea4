"""Receiving uploads: stream the multipart file into staging, then hand the version to a job."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

from fastapi import Request
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from kaifang.accounts.permissions import Actor
from kaifang.datastore import service
from kaifang.datastore.models import Resource, ResourceVersion
from kaifang.datastore.storage import CHUNK, TooLarge
from kaifang.errors import InvalidInput


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
    request.app.state.kf.jobs.process_version(version.id)


async def receive_resource(
    request: Request, db: Session, actor: Actor, entry_id: int
) -> tuple[Resource, ResourceVersion]:
    """A new resource from a multipart upload: checked before the body is read, staged, recorded,
    committed and handed to the reading job. A refused upload keeps nothing."""
    service.check_upload(db, actor, entry_id)
    upload, fields = await stage_upload(request)
    with _discard_on_error(request, upload):
        resource, version = service.add_resource(
            db,
            actor,
            entry_id,
            upload,
            name=fields.get("name", ""),
            description=fields.get("description", ""),
            sheet=fields.get("sheet"),
            change_note=fields.get("change_note", ""),
        )
        db.commit()  # the job reads the version in its own transaction
    schedule(request, version)
    return resource, version


async def receive_version(request: Request, db: Session, actor: Actor, resource_id: int) -> ResourceVersion:
    """A new version of a resource from a multipart upload, as `receive_resource`."""
    _resource, entry = service.get_resource(db, actor, resource_id)
    service.check_upload(db, actor, entry.id)
    upload, fields = await stage_upload(request)
    with _discard_on_error(request, upload):
        version = service.add_version(
            db,
            actor,
            resource_id,
            upload,
            sheet=fields.get("sheet"),
            change_note=fields.get("change_note", ""),
        )
        db.commit()
    schedule(request, version)
    return version


@contextmanager
def _discard_on_error(request: Request, upload: service.Upload) -> Iterator[None]:
    try:
        yield
    except BaseException:
        request.app.state.kf.store.delete(upload.staged_key)
        raise
