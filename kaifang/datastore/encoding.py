"""Bytes to text: which encoding an uploaded text file is in, and strict decoding of it.

The rules, in order: a BOM decides (UTF-8 or UTF-16); a file with zero bytes in every other
position is UTF-16 without a BOM; a sample that decodes as strict UTF-8 is UTF-8; anything else
is GB18030 (a superset of GBK and GB2312, which is what Chinese government exports are). A file
that looked like UTF-8 in its sample but fails further on (mostly-ASCII GBK with Chinese far
down) raises `NotUtf8`, and the reader tries GB18030 for the whole file; Big5 and other legacy
encodings are never guessed. A file that decodes as nothing is refused, naming the first byte
that fails.
"""

from __future__ import annotations

import codecs
import tempfile
from collections.abc import Iterator
from pathlib import Path

from kaifang.errors import InvalidInput

SAMPLE_BYTES = 2 << 20  # enough for the header area, the delimiter and the encoding guess
CHUNK_BYTES = 8 << 20  # transcoding and verification stream in chunks of this size


class NotUtf8(Exception):
    """The file looked like UTF-8 in its sample but is not, further on."""


class _Undecodable(Exception):
    def __init__(self, offset: int) -> None:
        super().__init__(offset)
        self.offset = offset


def guess_encoding(head: bytes) -> str:
    """The encoding of a file from its first bytes: utf-8-sig, utf-16(-le/-be), utf-8 or gb18030.

    Raises InvalidInput for spreadsheets and archives uploaded under a text name, and for binary data.
    """
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if head.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise InvalidInput("这是 Excel 或压缩文件，不是文本表格。请以 .xlsx / .xls 扩展名上传")
    if b"\x00" in head:
        return _guess_utf16_without_bom(head)
    try:
        codecs.getincrementaldecoder("utf-8")("strict").decode(head, False)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


def _guess_utf16_without_bom(head: bytes) -> str:
    # ASCII text in UTF-16 has a zero in every other byte; binary files have zeros anywhere.
    odd, even = head[1::2].count(0), head[0::2].count(0)
    if odd > 0.3 * len(head) / 2 and even < odd / 10:
        return "utf-16-le"
    if even > 0.3 * len(head) / 2 and odd < even / 10:
        return "utf-16-be"
    raise InvalidInput(f"文件含有二进制内容（第 {head.index(0)} 字节），不是文本表格")


def is_utf8(encoding: str) -> bool:
    return encoding in ("utf-8", "utf-8-sig")


def decoding_failed(path: Path, encoding: str) -> Exception:
    """What a strict decoding failure of `path` as `encoding` means, to be raised by the caller.

    UTF-8: `NotUtf8` (the reader decides whether GB18030 is worth a try). Otherwise the file is
    refused with the offset of its first bad byte; for GB18030 the later of that and the first
    byte that is not UTF-8, since a UTF-8 file with one broken byte fails GB18030 much earlier.
    """
    if is_utf8(encoding):
        return NotUtf8()
    offset = first_bad_byte(path, encoding)
    if encoding == "gb18030":
        offset = max(offset, first_bad_byte(path, "utf-8"))
    return InvalidInput(undecodable_message(offset))


def undecodable_message(offset: int) -> str:
    return (
        f"无法识别文件编码：既不是 UTF-8，也不是 GBK/GB18030 或 UTF-16（第 {offset} 字节处无法解码）。"
        "请在 Excel 或 WPS 中另存为“CSV UTF-8”后重新上传"
    )


def first_bad_byte(path: Path, encoding: str) -> int:
    """The offset of the first byte of `path` that does not decode as `encoding` (0 if none)."""
    try:
        for _ in _decode_chunks(path, encoding):
            pass
    except _Undecodable as e:
        return e.offset
    return 0


def scratch_dir(path: Path) -> tempfile.TemporaryDirectory[str]:
    """Beside the upload (a disk sized for uploads), else the system's temporary directory."""
    try:
        return tempfile.TemporaryDirectory(dir=path.parent, prefix=".kaifang-read-")
    except OSError:
        return tempfile.TemporaryDirectory(prefix="kaifang-read-")


def transcode(path: Path, encoding: str, target: Path, cr_only: bool) -> None:
    """Write `path` to `target` as UTF-8, in chunks; `cr_only` turns lone CR line ends into LF.

    Raises `NotUtf8` or InvalidInput as `decoding_failed` says.
    """
    try:
        with target.open("wb") as out:
            for text in _decode_chunks(path, encoding):
                out.write((text.replace("\r", "\n") if cr_only else text).encode("utf-8"))
    except _Undecodable:
        raise decoding_failed(path, encoding) from None


def _decode_chunks(path: Path, encoding: str) -> Iterator[str]:
    """Decode a file strictly in chunks; raise _Undecodable with the offset of the first bad byte."""
    if encoding.startswith("utf-16"):
        yield from _decode_incrementally(path, encoding)
        return
    base, pending = 0, b""
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            buf = pending + chunk
            # A newline byte is never inside a UTF-8 or GB18030 character, so cutting there is safe.
            cut = buf.rfind(b"\n") + 1 if len(chunk) == CHUNK_BYTES else len(buf)
            yield _decode_at(buf[:cut], encoding, base)
            base, pending = base + cut, buf[cut:]
        if pending:
            yield _decode_at(pending, encoding, base)


def _decode_at(data: bytes, encoding: str, base: int) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        raise _Undecodable(base + e.start) from None


def _decode_incrementally(path: Path, encoding: str) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    base = 0
    with path.open("rb") as f:
        while True:
            chunk = f.read(CHUNK_BYTES)
            try:
                yield decoder.decode(chunk, not chunk)
            except UnicodeDecodeError as e:
                raise _Undecodable(base + e.start) from None
            if not chunk:
                return
            base += len(chunk)
