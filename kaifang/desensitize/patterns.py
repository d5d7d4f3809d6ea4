"""What sensitive values look like: value shapes, surnames, organisation words and column-name hints.

The anchored shapes are RE2 syntax: pyarrow.compute runs them over a column sample at once.
`SPAN_PATTERNS` are Python `re` patterns for single cells of free text (`find_spans`). Both
describe the *shape* only; check digits are verified separately (`checks`). Values are matched after NFKC
normalisation and trimming, and the number-like kinds after separators are removed (`COMPACT`).
"""

from __future__ import annotations

import re
import unicodedata

from kaifang.desensitize.kinds import Kind

# Resident ID numbers: the first two digits name a province-level division (GB/T 2260); 81–83 are
# the residence permits of Hong Kong, Macao and Taiwan residents, which share the format.
PROVINCE = r"(?:1[1-5]|2[1-3]|3[1-7]|4[1-6]|5[0-4]|6[1-5]|71|8[1-3])"
MONTH_DAY = r"(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
ID18 = rf"^{PROVINCE}[0-9]{{4}}(?:18|19|20)[0-9]{{2}}{MONTH_DAY}[0-9]{{3}}[0-9X]$"
ID15 = rf"^{PROVINCE}[0-9]{{4}}[0-9]{{2}}{MONTH_DAY}[0-9]{{3}}$"
MOBILE = r"^(?:\+?86|0086)?1[3-9][0-9]{9}$"
# Landlines with an area code are evidence on their own; bare 7–8 digit numbers only under a
# telephone-like column name (they could be any number). 400/800 hotlines are not personal.
LANDLINE_FULL = r"^\(?0[1-9][0-9]{1,2}\)?[2-9][0-9]{6,7}(?:(?:转|ext|#)?[0-9]{1,6})?$"
LANDLINE_BARE = r"^[2-9][0-9]{6,7}$"
# UnionPay (62, 16–19 digits), Visa (4), Mastercard (51–55) and JCB (35), 16 digits: the cards
# issued in China. Other digit runs pass Luhn one time in ten and would be noise.
BANK_CARD = r"^(?:62[0-9]{14,17}|4[0-9]{15}|5[1-5][0-9]{14}|35[0-9]{14})$"
EMAIL = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"
CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100: no I, O, S, V, Z
CREDIT_CODE = r"^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$"
PLATE_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
# 7 characters, or 8 for new-energy vehicles (D/F after the letter for small cars, at the end for
# large ones); the last character may be 挂 学 警 港 澳 领; embassy plates start 使.
PLATE = (
    rf"^(?:[{PLATE_PROVINCES}][A-HJ-NP-Z](?:[A-HJ-NP-Z0-9]{{5}}|[DF][A-HJ-NP-Z0-9][0-9]{{4}}|[0-9]{{5}}[DF])"
    rf"|[{PLATE_PROVINCES}][A-HJ-NP-Z][A-HJ-NP-Z0-9]{{4}}[挂学警港澳领]|使[0-9]{{6}})$"
)
# Chinese ordinary passports E + 8 digits or E + letter + 7 digits; G (older), D, S, P (official).
PASSPORT = r"^(?:E[A-HJ-NP-Z0-9][0-9]{7}|[EGDSP][0-9]{8})$"
# 往来港澳通行证 C/W, 往来台湾通行证 L/T, 港澳居民来往内地通行证 H/M (8 or 10 digits).
TRAVEL_PERMIT = r"^(?:C[A-HJ-NP-Z0-9][0-9]{7}|[CWLT][0-9]{8}|[HM][0-9]{8}(?:[0-9]{2})?)$"
OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4 = rf"^{OCTET}(?:\.{OCTET}){{3}}$"
IPV6 = r"^[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}$"  # shape; confirmed by ipaddress
# Precise: at least four decimals (about 10 m). A pair in one cell is evidence on its own; a
# single number only under a longitude/latitude column name.
COORD_PAIR = r"^-?[0-9]{1,3}\.[0-9]{4,}\s*[,;]\s*-?[0-9]{1,3}\.[0-9]{4,}$"
COORD_ONE = r"^-?[0-9]{1,3}\.[0-9]{4,}$"
BIRTH_DATE = (
    r"^(?:19|20)[0-9]{2}(?:[-/.年]\s*(?:0?[1-9]|1[0-2])\s*[-/.月]\s*(?:0?[1-9]|[12][0-9]|3[01])日?"
    r"|(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01]))(?:[ T][0-9:.]+)?$"
)
NAME_SHAPE = r"^(?:\p{Han}{2,4}|\p{Han}{1,6}[·•・]\p{Han}{1,10})$"
DOTTED_NAME = r"[·•・]"
# Words that make a short Chinese string an organisation or a place, not a person.
ORGANISATION = (
    r"(?:公司|中心|委员会|集团|协会|银行|医院|学校|超市|酒店|宾馆|饭店|有限|合作社|事务所|办事处"
    r"|[局厂店院所部处站馆社队室办村镇乡区县市省路街场楼])$|公司|委员会|集团|有限"
)
ADDRESS = (
    r"\p{Han}.*(?:(?:路|街|大道|巷|弄|胡同|村|社区|小区|大厦|花园|苑|里).*?[0-9]+\s*(?:号|栋|幢|单元|室|楼|弄|组)"
    r"|(?:省|自治区|市|州|盟)\p{Han}{1,8}?(?:区|县|旗|市).*(?:路|街|道|巷|弄|胡同|村|镇|乡|号))"
)

# Python's re for single cells (find_spans): the same shapes without anchors, bounded so that a
# match never starts or ends inside a longer run of letters and digits.
_B0, _B1 = r"(?<![0-9A-Za-z])", r"(?![0-9A-Za-z])"
# As BANK_CARD, in groups of four optionally separated: UnionPay 16–19 digits, the others 16.
_UNIONPAY = r"62[0-9]{2}(?:[ -]?[0-9]{4}){3}(?:[ -]?[0-9]{1,3})?"
_CARD16 = r"(?:4[0-9]{3}|5[1-5][0-9]{2}|35[0-9]{2})(?:[ -]?[0-9]{4}){3}"
SPAN_PATTERNS: tuple[tuple[Kind, re.Pattern[str]], ...] = (
    (Kind.EMAIL, re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}", re.ASCII)),
    (Kind.ID_CARD, re.compile(_B0 + ID18[1:-1] + _B1, re.ASCII | re.IGNORECASE)),
    (Kind.ID_CARD, re.compile(_B0 + ID15[1:-1] + _B1, re.ASCII)),
    (Kind.BANK_CARD, re.compile(rf"(?<![0-9])(?:{_UNIONPAY}|{_CARD16})(?![0-9])")),
    (Kind.MOBILE, re.compile(r"(?<![0-9+])(?:\+?86[ -]?)?1[3-9][0-9](?:[ -]?[0-9]{4}){2}(?![0-9])")),
)
WORDED = r"[^0-9A-Za-z_./:-]"  # a character that codes and serial numbers do not have
# Cheap RE2 test for "this cell may hold a span", so that only such cells reach Python.
SPAN_CANDIDATE = r"[0-9０-９]{4}|[@＠]"

# The full-width ASCII block (U+FF01–FF5E) and the ideographic space folded one character for
# one, so that offsets found in the folded text are offsets in the original.
WIDTH_FOLD = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
COMPACT = r"[\s\-·•・]"  # separators people put inside numbers and plates


def fold_width(text: str) -> str:
    """Full-width letters, digits and signs as ASCII, keeping every character's position."""
    return text.translate(WIDTH_FOLD)


def canonical(value: str) -> str:
    """The form values are detected, masked and keyed in: NFKC (full-width → ASCII), trimmed."""
    return unicodedata.normalize("NFKC", value).strip()


# 百家姓: the common single surnames (covering well over 95% of the population) and the
# compound surnames, which are kept whole when a name is masked (欧阳** not 欧***).
SINGLE_SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
    "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫阎段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武"
    "戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯"
    "纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪"
    "简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎"
    "甄丛仲虞敖巩明佘池查麻苑迟邝官封谈匡鞠惠荆乐冀郁胥南班储原栗燕楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊仝"
    "区郜海阚花权强帅屠豆朴盖练廉禹井祖漆巴丰支卿国狄平计索宣晋相初门云容敬来扈晁芮都普阙浦戈伏鹿薄邸"
    "雍辜羊阿乌母裘亓修邰赫杭况那宿鲜印逯隆茹诸战慕危玉银亢嵇公哈湛宾戎勾茅利於呼居揭干但尉冶斯元束"
    "檀衣信展阴昝智幸奉植衡富尧闭由"
)
_COMPOUND = (
    "欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 夏侯 轩辕 令狐 钟离 闻人 澹台 公冶 宗政 "
    "濮阳 太叔 申屠 赫连 端木 西门 南宫 独孤 百里 呼延 万俟 司空 拓跋 第五 东郭 左丘 梁丘 谷梁 公羊"
)
COMPOUND_SURNAMES = frozenset(_COMPOUND.split())


def surname_length(name: str) -> int:
    """Characters of the surname: 2 for a compound surname, else 1."""
    return 2 if name[:2] in COMPOUND_SURNAMES else 1


# Column-name hints. Chinese words are looked for inside the header; English words and pinyin
# initials (sfzh 身份证号, sjh 手机号, xm 姓名 …, common in exported system tables) must be the
# whole header or one of its words. "name" alone is a person only as the whole header: product
# and station names are far more common.
_PERSON_WORDS = "姓名 名字 联系人 负责人 法定代表人 法人代表 户主 申请人 经办人 监护人 收件人 患者 当事人"
HINTS_ZH: dict[Kind, tuple[str, ...]] = {
    Kind.ID_CARD: ("身份证", "证件号", "身份号码", "公民身份"),
    Kind.MOBILE: ("手机", "移动电话", "电话", "联系方式"),
    Kind.LANDLINE: ("电话", "座机", "固话", "联系方式", "传真"),
    Kind.BANK_CARD: ("银行卡", "卡号", "账号", "帐号", "银行账户"),
    Kind.EMAIL: ("邮箱", "电子邮件", "电邮", "邮件"),
    Kind.PERSON_NAME: tuple(_PERSON_WORDS.split()),
    Kind.ADDRESS: ("地址", "住址", "住所", "居住地", "户籍地", "现住", "所在地"),
    Kind.PLATE: ("车牌", "号牌", "车辆号码"),
    Kind.PASSPORT: ("护照", "证件号"),
    Kind.TRAVEL_PERMIT: ("通行证", "回乡证", "台胞证", "证件号"),
    Kind.IP: ("ip地址",),
    Kind.COORDINATES: ("经度", "纬度", "坐标", "经纬度", "定位"),
    Kind.BIRTH_DATE: ("出生", "生日"),
    Kind.CREDIT_CODE: ("信用代码", "统一代码", "社会信用"),
}
HINTS_WORD: dict[Kind, frozenset[str]] = {
    Kind.ID_CARD: frozenset({"idcard", "idno", "idnumber", "identity", "citizenid", "sfz", "sfzh", "sfzhm"}),
    Kind.MOBILE: frozenset({"mobile", "cellphone", "cell", "phone", "tel", "telephone", "sjh", "lxdh"}),
    Kind.LANDLINE: frozenset({"landline", "phone", "tel", "telephone", "fax", "lxdh", "gddh"}),
    Kind.BANK_CARD: frozenset({"bankcard", "cardno", "cardnumber", "account", "accountno", "iban", "yhkh"}),
    Kind.EMAIL: frozenset({"email", "mail", "yx", "dzyx"}),
    Kind.PERSON_NAME: frozenset({"fullname", "realname", "personname", "contactname", "xm", "lxr", "fzr"}),
    Kind.ADDRESS: frozenset({"address", "addr", "dz", "jzdz", "zz"}),
    Kind.PLATE: frozenset({"plate", "plateno", "licenseplate", "cph", "hphm"}),
    Kind.PASSPORT: frozenset({"passport", "passportno", "hzh", "hzhm"}),
    Kind.TRAVEL_PERMIT: frozenset({"permit", "txz", "txzh"}),
    Kind.IP: frozenset({"ip", "ipaddress", "ipaddr", "clientip"}),
    Kind.COORDINATES: frozenset({"lng", "lon", "longitude", "lat", "latitude", "coord", "gps"}),
    Kind.BIRTH_DATE: frozenset({"birth", "birthday", "birthdate", "dob", "csrq"}),
    Kind.CREDIT_CODE: frozenset({"uscc", "creditcode", "tyshxydm", "xydm"}),
}
WHOLE_HEADER: dict[Kind, frozenset[str]] = {Kind.PERSON_NAME: frozenset({"name", "姓名", "名字"})}
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")


def header_hints(header: str) -> frozenset[Kind]:
    """The kinds a column name suggests (empty when it suggests none)."""
    text = unicodedata.normalize("NFKC", header).strip()
    squeezed = re.sub(r"[\s_\-·.]+", "", text).lower()
    words = {w.lower() for w in _WORD.findall(text)}
    words.add(squeezed)
    found = {kind for kind, zh in HINTS_ZH.items() if any(w in squeezed for w in zh)}
    found |= {kind for kind, en in HINTS_WORD.items() if words & en}
    found |= {kind for kind, whole in WHOLE_HEADER.items() if squeezed in whole}
    return frozenset(found)
