"""Generated personal data with known answers, for the detection tests.

Check digits are computed here from the standards' formulas, independently of kaifang's checks.
`labelled_columns` gives columns of every kind (under Chinese, English and neutral headers, with
nulls and junk mixed in) and the decoys of issue 5, each with the kind it truly is (None for
decoys); `labelled_text` gives free text with known spans.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from kaifang.desensitize.detect import Kind

AREAS = ["110101", "110105", "310104", "440305", "330106", "510107", "420106", "610113", "320102", "370202"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏"
COMPOUND = ["欧阳", "司马", "上官", "诸葛", "慕容", "司徒"]
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰建国志红文辉海燕鹏飞宇浩然子轩雨欣思博"
COMPANIES = [
    "科技有限公司",
    "贸易有限公司",
    "市场监督管理局",
    "社区卫生服务中心",
    "街道办事处",
    "建筑工程公司",
]
PLACES = ["北京市东城区", "上海市浦东新区", "广东省深圳市南山区", "浙江省杭州市西湖区", "四川省成都市武侯区"]
ROADS = ["人民路", "解放大道", "中山北路", "建设街", "和平里", "滨江路"]
PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
JUNK = ["无", "不详", "-", "  "]


def id_check(first17: str) -> str:
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights, strict=True)) % 11]


def luhn_digit(body: str) -> str:
    total = 0
    for i, d in enumerate(reversed(body)):
        n = int(d) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return str((10 - total % 10) % 10)


def credit_check(first17: str) -> str:
    weights = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
    total = sum(CREDIT_ALPHABET.index(c) * w for c, w in zip(first17, weights, strict=True))
    return CREDIT_ALPHABET[(31 - total % 31) % 31]


def digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def birth(rng: random.Random) -> str:
    return f"{rng.randint(1940, 2010)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"


def id_card(rng: random.Random) -> str:
    if rng.random() < 0.05:  # legacy 15-digit numbers
        return rng.choice(AREAS) + birth(rng)[2:] + digits(rng, 3)
    first17 = rng.choice(AREAS) + birth(rng) + digits(rng, 3)
    return first17 + id_check(first17)


def id_wrong_check(rng: random.Random) -> str:
    """18 digits shaped like an ID whose check digit is wrong (a decoy)."""
    first17 = rng.choice(AREAS) + birth(rng) + digits(rng, 3)
    right = id_check(first17)
    return first17 + rng.choice([c for c in "0123456789" if c != right])


def mobile(rng: random.Random) -> str:
    number = "1" + rng.choice("35789") + digits(rng, 9)
    return rng.choice(
        [number, number, f"{number[:3]}-{number[3:7]}-{number[7:]}", f"+86 {number}", fullwidth(number)]
    )


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def landline(rng: random.Random) -> str:
    return f"0{rng.choice(['10', '21', '755', '571', '28'])}-{rng.randint(2, 9)}{digits(rng, 7)}"


def bank_card(rng: random.Random) -> str:
    """UnionPay cards of 16 or 19 digits, Visa and Mastercard of 16."""
    prefix = rng.choice(["622202", "621700", "622848", "436742", "552599"])
    length = rng.choice([16, 19]) if prefix.startswith("62") else 16
    body = prefix + digits(rng, length - 7)
    return body + luhn_digit(body)


def email(rng: random.Random) -> str:
    user = rng.choice(["zhang", "li.na", "wangwei", "chen_j", "liu88"]) + digits(rng, 2)
    return f"{user}@{rng.choice(['example.com', '163.com', 'qq.com', 'city.gov.cn'])}"


def person_name(rng: random.Random) -> str:
    surname = rng.choice(COMPOUND) if rng.random() < 0.05 else rng.choice(SURNAMES)
    return surname + "".join(rng.choice(GIVEN) for _ in range(rng.choice([1, 2, 2])))


def address(rng: random.Random) -> str:
    building = f"{rng.randint(1, 30)}栋{rng.randint(101, 2800)}室"
    return f"{rng.choice(PLACES)}{rng.choice(ROADS)}{rng.randint(1, 999)}号{building}"


def plate(rng: random.Random) -> str:
    head = rng.choice(PROVINCES) + rng.choice(PLATE_LETTERS)
    if rng.random() < 0.3:  # new-energy: 8 characters
        return head + rng.choice("DF") + rng.choice(PLATE_LETTERS + "0123456789") + digits(rng, 4)
    return head + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(5))


def passport(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return "E" + rng.choice("ABCDEFGHJK") + digits(rng, 7)
    return rng.choice("EG") + digits(rng, 8)


def travel_permit(rng: random.Random) -> str:
    return rng.choice(
        ["C" + digits(rng, 8), "H" + digits(rng, 10), "M" + digits(rng, 8), "L" + digits(rng, 8)]
    )


def ip(rng: random.Random) -> str:
    if rng.random() < 0.1:
        return f"2001:db8:{rng.randint(0, 65535):x}::{rng.randint(1, 65535):x}"
    return ".".join(str(rng.randint(1, 254)) for _ in range(4))


def coordinate_pair(rng: random.Random) -> str:
    return f"{rng.uniform(73, 135):.6f},{rng.uniform(18, 53):.6f}"


def longitude(rng: random.Random) -> str:
    return f"{rng.uniform(73, 135):.6f}"


def birth_date(rng: random.Random) -> str:
    y, m, d = rng.randint(1940, 2010), rng.randint(1, 12), rng.randint(1, 28)
    return rng.choice([f"{y}-{m:02d}-{d:02d}", f"{y}/{m}/{d}", f"{y}年{m}月{d}日", f"{y}{m:02d}{d:02d}"])


def credit_code(rng: random.Random) -> str:
    first17 = (
        rng.choice(["91", "12", "52", "93"])
        + rng.choice(AREAS)
        + "".join(rng.choice(CREDIT_ALPHABET) for _ in range(9))
    )
    return first17 + credit_check(first17)


def company(rng: random.Random) -> str:
    return rng.choice(["华信", "东方", "李记", "宏达", "王府", "张江"]) + rng.choice(COMPANIES)


def order_number(rng: random.Random) -> str:
    return rng.choice(["DD", "NO", ""]) + "2024" + digits(rng, 14)


def free_text(rng: random.Random) -> str:
    return rng.choice(
        ["已办结", "材料齐全，予以受理", "请于三个工作日内补正材料", "现场核查无异常", "群众满意"]
    )


GENERATORS: dict[Kind, Callable[[random.Random], str]] = {
    Kind.ID_CARD: id_card,
    Kind.MOBILE: mobile,
    Kind.LANDLINE: landline,
    Kind.BANK_CARD: bank_card,
    Kind.EMAIL: email,
    Kind.PERSON_NAME: person_name,
    Kind.ADDRESS: address,
    Kind.PLATE: plate,
    Kind.PASSPORT: passport,
    Kind.TRAVEL_PERMIT: travel_permit,
    Kind.IP: ip,
    Kind.COORDINATES: coordinate_pair,
    Kind.BIRTH_DATE: birth_date,
    Kind.CREDIT_CODE: credit_code,
}
# Per kind: a Chinese header, an English one, and (for self-evident kinds) a neutral one.
HEADERS: dict[Kind, list[str]] = {
    Kind.ID_CARD: ["公民身份号码", "id_card_no", "字段3"],
    Kind.MOBILE: ["手机号", "mobile", "字段4"],
    Kind.LANDLINE: ["固定电话", "telephone", "办公电话"],
    Kind.BANK_CARD: ["银行卡号", "bank_card", "字段5"],
    Kind.EMAIL: ["电子邮箱", "email", "字段6"],
    Kind.PERSON_NAME: ["姓名", "联系人", "name"],
    Kind.ADDRESS: ["家庭住址", "address", "字段7"],
    Kind.PLATE: ["车牌号码", "plate_no", "字段8"],
    Kind.PASSPORT: ["护照号码", "passport", "证件号码"],
    Kind.TRAVEL_PERMIT: ["港澳通行证号码", "permit_no", "通行证"],
    Kind.IP: ["登录IP", "client_ip", "字段9"],
    Kind.COORDINATES: ["经纬度", "gps", "字段10"],
    Kind.BIRTH_DATE: ["出生日期", "birthday", "csrq"],
    Kind.CREDIT_CODE: ["统一社会信用代码", "uscc", "字段11"],
}


def _column(rng: random.Random, make: Callable[[random.Random], str], rows: int) -> list[str | None]:
    """Values with about 5% empty cells and 3% junk, as real exports have."""
    out: list[str | None] = []
    for _ in range(rows):
        roll = rng.random()
        out.append(None if roll < 0.05 else rng.choice(JUNK) if roll < 0.08 else make(rng))
    return out


def decoys(rng: random.Random, rows: int) -> dict[str, list[str | None]]:
    """The decoys of issue 5 and other look-alikes common in open data; none is personal."""
    stray = [free_text(rng) for _ in range(rows)]
    stray[rows // 2] = "请联系13800138000"
    return {
        "编号": [id_wrong_check(rng) for _ in range(rows)],  # 18 digits failing the ID check
        "身份证号": [id_wrong_check(rng) for _ in range(rows)],  # … even under an ID header
        "订单号": [order_number(rng) for _ in range(rows)],
        "流水号": [digits(rng, 18) for _ in range(rows)],
        "负责人": [company(rng) for _ in range(rows)],  # company names in a name-like column
        "姓名 ": [company(rng) for _ in range(rows)],
        "办理意见": stray,  # one stray phone number in a thousand rows
        "品名": [
            rng.choice(["黄瓜", "白菜", "牛肉", "马铃薯", "胡萝卜", "韭菜", "高粱"]) for _ in range(rows)
        ],
        "区县": [rng.choice(["东城区", "西城区", "朝阳区", "海淀区"]) for _ in range(rows)],
        "金额": [str(rng.randint(1_000_000, 99_999_999)) for _ in range(rows)],
        "单价": [f"{rng.uniform(1, 100):.4f}" for _ in range(rows)],
        "办理日期": [birth_date(rng) for _ in range(rows)],
        "邮政编码": [digits(rng, 6) for _ in range(rows)],
        "单位名称": [company(rng) for _ in range(rows)],
    }


def labelled_columns(
    seed: int = 5, rows: int = 1000
) -> tuple[dict[str, list[str | None]], dict[str, Kind | None]]:
    """Columns and the truth for each: every kind under three headers, then the decoys."""
    rng = random.Random(seed)
    data: dict[str, list[str | None]] = {}
    truth: dict[str, Kind | None] = {}
    for kind, make in GENERATORS.items():
        for header in HEADERS[kind]:
            data[header] = _column(rng, make, rows)
            truth[header] = kind
    data["经度"] = _column(rng, longitude, rows)
    truth["经度"] = Kind.COORDINATES
    for header, values in decoys(rng, rows).items():
        data[header] = values
        truth[header] = None
    return data, truth


SPAN_KINDS = (Kind.ID_CARD, Kind.MOBILE, Kind.EMAIL, Kind.BANK_CARD)
FILLER = [
    "申请人",
    "联系电话",
    "反映：",
    "，已回访。",
    "订单号",
    "金额12345元",
    "于2024年3月5日",
    "地址见附件",
]


def labelled_text(seed: int = 7, cells: int = 2000) -> list[tuple[str, list[tuple[int, int, Kind]]]]:
    """Free-text cells with 0–2 embedded identifiers each (and number-shaped decoys between)."""
    rng = random.Random(seed)
    out = []
    for _ in range(cells):
        text, spans = rng.choice(FILLER), []
        for _ in range(rng.choice([0, 1, 1, 2])):
            kind = rng.choice(SPAN_KINDS)
            value = GENERATORS[kind](rng)
            if kind is Kind.MOBILE:
                value = value.removeprefix("+86 ")
            spans.append((len(text), len(text) + len(value), kind))
            text += value + rng.choice(FILLER)
        if rng.random() < 0.3:
            text += rng.choice([id_wrong_check(rng), order_number(rng), digits(rng, 8)]) + "。"
        out.append((text, spans))
    return out
