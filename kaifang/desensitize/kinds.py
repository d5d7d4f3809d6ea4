"""The kinds of sensitive values the scanner knows, their Chinese names, and which are personal."""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    """A kind of sensitive value; the values are stable identifiers (saved in rules and reports)."""

    ID_CARD = "id_card"
    MOBILE = "mobile"
    LANDLINE = "landline"
    BANK_CARD = "bank_card"
    EMAIL = "email"
    PERSON_NAME = "person_name"
    ADDRESS = "address"
    PLATE = "plate"
    PASSPORT = "passport"
    TRAVEL_PERMIT = "travel_permit"
    IP = "ip"
    COORDINATES = "coordinates"
    BIRTH_DATE = "birth_date"
    CREDIT_CODE = "credit_code"


LABELS: dict[Kind, str] = {
    Kind.ID_CARD: "居民身份证号码",
    Kind.MOBILE: "手机号码",
    Kind.LANDLINE: "固定电话",
    Kind.BANK_CARD: "银行卡号",
    Kind.EMAIL: "电子邮箱",
    Kind.PERSON_NAME: "姓名",
    Kind.ADDRESS: "地址",
    Kind.PLATE: "车牌号码",
    Kind.PASSPORT: "护照号码",
    Kind.TRAVEL_PERMIT: "港澳台通行证",
    Kind.IP: "IP地址",
    Kind.COORDINATES: "精确坐标",
    Kind.BIRTH_DATE: "出生日期",
    Kind.CREDIT_CODE: "统一社会信用代码",
}

# Values that single out a person by themselves: left unmasked they block publication.
# Quasi-identifiers identify only in combination (the risk report's k-anonymity covers them):
# a birth date, and the address and precise position, whose treatment is generalization (to the
# district, to rounded coordinates) and which in open data mostly locate facilities, not people.
# 统一社会信用代码 identifies an organisation, which is not personal information.
DIRECT_IDENTIFIERS: frozenset[Kind] = frozenset(
    {
        Kind.ID_CARD,
        Kind.MOBILE,
        Kind.LANDLINE,
        Kind.BANK_CARD,
        Kind.EMAIL,
        Kind.PERSON_NAME,
        Kind.PLATE,
        Kind.PASSPORT,
        Kind.TRAVEL_PERMIT,
        Kind.IP,
    }
)
QUASI_IDENTIFIERS: frozenset[Kind] = frozenset({Kind.BIRTH_DATE, Kind.ADDRESS, Kind.COORDINATES})
