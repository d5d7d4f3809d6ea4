"""File storage behind one interface: the local filesystem by default (S3-compatible later).

Keys are relative paths such as ``data/12/3.parquet``. Writes go to a temporary name and are
renamed into place, so a crash never leaves a half-written file under a real key.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Protocol

CHUNK = 1 << 20


class TooLarge(Exception):
    """The stream passed the size limit; nothing was kept."""


class FileStore(Protocol):
    def path(self, key: str) -> Path: ...
    async def put_stream(self, key: str, chunks: AsyncIterator[bytes], max_bytes: int) -> tuple[int, str]: ...
    def put_file(self, key: str, source: Path) -> tuple[int, str]: ...
    def open_chunks(self, key: str) -> Iterator[bytes]: ...
    def delete(self, key: str) -> None: ...
    def exists(self, key: str) -> bool: ...


class LocalFileStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        target = (self.root / key).resolve()
        if self.root not in target.parents:
            raise ValueError(f"key outside the store: {key!r}")
        return target

    def _temp(self, key: str) -> Path:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target.with_name(f".{target.name}.{secrets.token_hex(6)}.part")

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes], max_bytes: int) -> tuple[int, str]:
        """Write a stream under `key`; returns (size, sha256). Past `max_bytes` it stops and keeps nothing."""
        temp, digest, size = self._temp(key), hashlib.sha256(), 0
        try:
            with temp.open("wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise TooLarge
                    digest.update(chunk)
                    out.write(chunk)
            os.replace(temp, self.path(key))
        finally:
            temp.unlink(missing_ok=True)
        return size, digest.hexdigest()

    def put_file(self, key: str, source: Path) -> tuple[int, str]:
        """Move a finished local file under `key` (atomically); returns (size, sha256)."""
        digest, size = hashlib.sha256(), 0
        with source.open("rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
        temp = self._temp(key)
        os.replace(source, temp)
        os.replace(temp, self.path(key))
        return size, digest.hexdigest()

    def open_chunks(self, key: str) -> Iterator[bytes]:
        with self.path(key).open("rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()
