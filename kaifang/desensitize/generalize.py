"""Generalization of one value: a date to its month or year, an age to a band, an address to its
district, coordinates to a rounded precision, an IP address to its network.

A value that cannot be generalized (an unparseable date, an address without a district) becomes
None: a generalization never lets the original value through.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any

TARGETS = ("month", "year", "age_band", "district", "round", "subnet")
DEFAULTS = {"band": 10, "digits": 2, "prefix": 24}
IPV6_PREFIX = 48  # the last 80 bits hidden, as web analytics do; `prefix` is for IPv4

_DATE = re.compile(r"^(\d{4})(?:\s*[-/.年]\s*(\d{1,2})(?![0-9])|(\d{2})\d{2}(?![0-9])|(?![0-9]))")
_AGE = re.compile(r"(\d{1,3})(?:\.\d+)?\s*(?:周岁|岁)?")
_HAN = r"(?:(?![省市区县旗路街道巷号])[\u4e00-\u9fff])"
_DISTRICT = re.compile(
    rf"^(?:{_HAN}{{2,7}}?(?:省|自治区|特别行政区))?(?:{_HAN}{{1,7}}?(?:市|自治州|地区|盟))?(?:{_HAN}{{1,7}}?(?:区|县|旗|市))?"
)
_NUMBER = r"-?\d+(?:\.\d+)?"
_PAIR = re.compile(rf"({_NUMBER})\s*([,;])\s*({_NUMBER})")


def generalize(text: str, params: Mapping[str, Any]) -> str | None:
    """The generalized form of a non-empty, normalised value; None when it has none."""
    return _BY_TARGET[params["to"]](text, params)


def _month(text: str, params: Mapping[str, Any]) -> str | None:
    match = _DATE.match(text)
    month = match and (match.group(2) or match.group(3))
    if not match or not month or not 1 <= int(month) <= 12:
        return None
    return f"{match.group(1)}-{int(month):02d}"


def _year(text: str, params: Mapping[str, Any]) -> str | None:
    match = _DATE.match(text)
    return match.group(1) if match else None


def _age_band(text: str, params: Mapping[str, Any]) -> str | None:
    match = _AGE.fullmatch(text)
    if not match:
        return None
    band = int(params.get("band", DEFAULTS["band"]))
    low = int(match.group(1)) // band * band
    return f"{low}-{low + band - 1}"


def _district(text: str, params: Mapping[str, Any]) -> str | None:
    match = _DISTRICT.match(text)
    return match.group(0) if match and match.group(0) else None


def _round(text: str, params: Mapping[str, Any]) -> str | None:
    digits = int(params.get("digits", DEFAULTS["digits"]))
    pair = _PAIR.fullmatch(text)
    if pair:
        return f"{float(pair.group(1)):.{digits}f}{pair.group(2)}{float(pair.group(3)):.{digits}f}"
    if re.fullmatch(_NUMBER, text):
        return f"{float(text):.{digits}f}"
    return None


def _subnet(text: str, params: Mapping[str, Any]) -> str | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    prefix = int(params.get("prefix", DEFAULTS["prefix"])) if address.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


_BY_TARGET: dict[str, Callable[[str, Mapping[str, Any]], str | None]] = {
    "month": _month,
    "year": _year,
    "age_band": _age_band,
    "district": _district,
    "round": _round,
    "subnet": _subnet,
}
