"""Download receipts (Art. 28 traceability): every download gets an id that travels with the file
(the `X-Download-Receipt` header, and inside the file where the format has room for it: JSON,
XLSX document properties, Parquet key-value metadata) and is kept in the download's audit record,
so a file found elsewhere leads back to who downloaded it, when, and under which grant.

The id is random, not derived from the record: it says nothing by itself, and cannot be guessed
to find someone else's download.
"""

from __future__ import annotations

import base64
import re
import secrets
from datetime import datetime
from zoneinfo import ZoneInfo

CITY_ZONE = ZoneInfo("Asia/Shanghai")
HEADER = "X-Download-Receipt"
PATTERN = re.compile(r"^KF\d{8}-[A-Z2-7]{16}$")


def new_receipt(now: datetime | None = None) -> str:
    """`KF` + the download's date (Beijing) + 80 random bits in base32, e.g. KF20261127-7QKX…"""
    day = (now or datetime.now(CITY_ZONE)).astimezone(CITY_ZONE).strftime("%Y%m%d")
    return f"KF{day}-{base64.b32encode(secrets.token_bytes(10)).decode()}"


def is_receipt(text: str) -> bool:
    return bool(PATTERN.match(text))
