"""Data resources of the demo city 海河市, generated and loaded through the real ingest pipeline.

Each file is written the way a provider's system really exports it — UTF-8 CSV, UTF-8 CSV with a
BOM (Excel's “CSV UTF-8”), a GBK CSV from an old registration system, an XLSX 统计表 with a title
row above the header, a GeoJSON file — then staged, read by the ingest job, and published by the
entry's own publisher. Values come from seeded generators, so every demo city is the same. The
hourly air quality (about a million rows) is generated in DuckDB: a Python loop per row would
take longer than reading it in.
"""

from __future__ import annotations

import csv
import json
import math
import random
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache, partial
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import xlsxwriter
from sqlalchemy import select
from sqlalchemy.orm import Session

from kaifang.accounts.models import User
from kaifang.accounts.service import CREDIT_CODE_CHARS, CREDIT_CODE_WEIGHTS, actor_for
from kaifang.catalog.models import Entry, EntryStatus
from kaifang.datastore import service
from kaifang.datastore.models import ResourceVersion, VersionStatus
from kaifang.demo.applications import seed_applications
from kaifang.desensitize import service as desensitize

if TYPE_CHECKING:
    from kaifang.app import Platform

SEED = 20261127


def _words(text: str) -> list[str]:
    return text.split()


Table = tuple[list[str], list[list[Any]]]
Point = tuple[float, float]

# --- geography: twelve districts tiling the city around (117.2, 39.1) -----------------------------

WEST, EAST, SOUTH, NORTH = 116.85, 117.55, 38.85, 39.35
DISTRICT_GRID = (  # south to north, west to east; (name, share of facilities: the centre is denser)
    (("南湖区", 1.2), ("临河区", 1.2), ("新城区", 1.0), ("长堤区", 0.7)),
    (("西岸区", 1.5), ("中河区", 3.0), ("海晏区", 2.5), ("滨海新区", 1.5)),
    (("西山区", 0.7), ("北塘区", 1.5), ("青云区", 1.2), ("东港区", 0.7)),
)
ROADS = _words(
    "解放路 建设路 人民路 海河大道 胜利街 友谊路 黄河道 长江道 迎宾大道 和平路 光明路 工农路 新华路 复兴路 "
    "团结路 文化街 学府路 卫国道 津塘路 红旗路 朝阳路 东风路 向阳路 平安街 兴华路 永安道 福安大街 长青路 "
    "丰收路 海滨大道 港城大道 临河路 湖滨路 青云路 北塘路 西山路 中山路 民主路 育才路 科技大道"
)
PLACES = _words(
    "人民公园 体育中心 市政府 开发区 第一中学 水厂 工业园 火车站 大学城 湿地公园 高新区 老城厢 文化中心 "
    "植物园 会展中心 万达广场 图书馆 客运站 滨河公园 科技园"
)
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文"  # noqa: E501
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国志红玉梅文斌宇浩鹏飞晨阳欣怡子涵雨轩博宁海波"
STREETS = _words(
    "新华 劳动 胜利 向阳 东风 红旗 朝阳 光明 和平 建设 团结 友谊 兴华 永安 福安 长青 万新 春华 金桥 丰年"
)


@dataclass(frozen=True)
class District:
    name: str
    code: str  # 行政区划代码 (fictitious: 1299xx)
    weight: float
    corners: tuple[Point, Point, Point, Point]  # south-west, south-east, north-east, north-west
    ring: tuple[Point, ...]  # the boundary, closed

    def point(self, rng: random.Random) -> Point:
        """A point well inside the district (bilinear inside its four corners)."""
        u, v = rng.uniform(0.12, 0.88), rng.uniform(0.12, 0.88)
        (x0, y0), (x1, y1), (x2, y2), (x3, y3) = self.corners
        lon = (1 - v) * ((1 - u) * x0 + u * x1) + v * ((1 - u) * x3 + u * x2)
        lat = (1 - v) * ((1 - u) * y0 + u * y1) + v * ((1 - u) * y3 + u * y2)
        return round(lon, 6), round(lat, 6)


def _rng(name: str) -> random.Random:
    return random.Random(f"{SEED}:{name}")


@cache
def districts() -> tuple[District, ...]:
    """The districts as a jittered grid: neighbours share their corners and edge middles exactly."""
    vertex = _grid_vertices()
    result: list[District] = []
    for i, row in enumerate(DISTRICT_GRID):
        for j, (name, weight) in enumerate(row):
            keys = ((i, j), (i, j + 1), (i + 1, j + 1), (i + 1, j))
            ring = [p for k, a in enumerate(keys) for p in (vertex[a], _edge_middle(vertex, a, keys[k - 3]))]
            ring = [(round(x, 6), round(y, 6)) for x, y in [*ring, ring[0]]]
            corners = (vertex[keys[0]], vertex[keys[1]], vertex[keys[2]], vertex[keys[3]])
            result.append(District(name, f"1299{len(result) + 1:02d}", weight, corners, tuple(ring)))
    return tuple(result)


def _grid_vertices() -> dict[tuple[int, int], Point]:
    rows, cols = len(DISTRICT_GRID), len(DISTRICT_GRID[0])
    rng = _rng("grid")
    vertex = {}
    for i in range(rows + 1):
        for j in range(cols + 1):
            inner = 0 < i < rows and 0 < j < cols  # the city's outline stays a rectangle
            dx, dy = (rng.uniform(-0.03, 0.03), rng.uniform(-0.025, 0.025)) if inner else (0.0, 0.0)
            vertex[i, j] = (WEST + j * (EAST - WEST) / cols + dx, SOUTH + i * (NORTH - SOUTH) / rows + dy)
    return vertex


def _edge_middle(vertex: dict[tuple[int, int], Point], a: tuple[int, int], b: tuple[int, int]) -> Point:
    """The middle of an edge, nudged the same way for both districts that share it."""
    rows, cols = len(DISTRICT_GRID), len(DISTRICT_GRID[0])
    (x0, y0), (x1, y1) = vertex[a], vertex[b]
    border = (a[0] == b[0] in (0, rows)) or (a[1] == b[1] in (0, cols))
    jitter = 0.0 if border else 0.012
    rng = _rng(f"edge:{min(a, b)}:{max(a, b)}")
    return (x0 + x1) / 2 + rng.uniform(-jitter, jitter), (y0 + y1) / 2 + rng.uniform(-jitter, jitter)


def district_at(lon: float, lat: float) -> District:
    """The district containing a point (ray casting); the nearest one for a point outside the city."""
    for d in districts():
        inside = False
        for (x0, y0), (x1, y1) in zip(d.ring, d.ring[1:], strict=False):
            if (y0 > lat) != (y1 > lat) and lon < x0 + (lat - y0) * (x1 - x0) / (y1 - y0):
                inside = not inside
        if inside:
            return d
    return min(districts(), key=lambda d: math.dist(_centre(d), (lon, lat)))


def _centre(d: District) -> Point:
    return sum(x for x, _ in d.corners) / 4, sum(y for _, y in d.corners) / 4


def _pick_district(rng: random.Random) -> District:
    return rng.choices(districts(), weights=[d.weight for d in districts()])[0]


def _person(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2, 2))))


def _address(rng: random.Random, d: District) -> str:
    return f"海河市{d.name}{rng.choice(ROADS)}{rng.randint(1, 420)}号"


def _phone(rng: random.Random) -> str:
    return f"022-{rng.randint(23, 88)}{rng.randint(0, 999999):06d}"


def _unique(rng: random.Random, make: Callable[[random.Random], str], taken: set[str]) -> str:
    for _ in range(50):
        name = make(rng)
        if name not in taken:
            taken.add(name)
            return name
    raise RuntimeError("name pool exhausted")


def _km(points: list[Point]) -> float:
    return sum(
        math.hypot((x1 - x0) * 86.5, (y1 - y0) * 111.2)  # km per degree at latitude 39°
        for (x0, y0), (x1, y1) in pairwise(points)
    )


# --- writers ----------------------------------------------------------------------------------------


def write_csv(path: Path, table: Table, encoding: str = "utf-8") -> int:
    """Write a table as CSV in `encoding` (gbk, utf-8-sig …); returns the number of data rows."""
    header, rows = table
    with path.open("w", encoding=encoding, newline="") as f:
        writer = csv.writer(f, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(rows)
    return len(rows)


def write_titled_xlsx(path: Path, title: str, table: Table, note: str) -> int:
    """An XLSX 统计表 as offices make them: a merged title row, the header, the data, a source note."""
    header, rows = table
    with xlsxwriter.Workbook(str(path)) as book:
        sheet = book.add_worksheet("统计表")
        bold = book.add_format({"bold": True, "align": "center", "border": 1, "bg_color": "#DDEBF7"})
        sheet.merge_range(0, 0, 0, len(header) - 1, title, book.add_format({"bold": True, "font_size": 14}))
        sheet.write_row(1, 0, header, bold)
        for r, row in enumerate(rows, start=2):
            sheet.write_row(r, 0, row)
        sheet.write(len(rows) + 2, 0, note)
        sheet.set_column(0, len(header) - 1, 14)
    return len(rows)


# --- transport: bus lines and stops, rail ridership, parking ------------------------------------------


@cache
def bus_network() -> tuple[Table, Table]:
    """(lines, stops): 80 lines whose stops follow a wandering route through the city."""
    rng = _rng("bus")
    lines: list[list[Any]] = []
    stops: list[list[Any]] = []
    numbers = [
        *map(str, sorted(rng.sample(range(1, 900), 72))),
        "K1",
        "K2",
        "K3",
        "K5",
        "K8",
        "夜1",
        "夜2",
        "夜3",
    ]
    for number in numbers:
        route = _route(rng, rng.randint(12, 32))
        names = [_stop_name(rng) for _ in route]
        lines.append([f"{number}路", *_line_facts(rng, number, route), names[0], names[-1]])
        for direction, order in (("上行", range(len(route))), ("下行", range(len(route) - 1, -1, -1))):
            for seq, k in enumerate(order, start=1):
                lon, lat = round(route[k][0] + (0.0002 if direction == "下行" else 0), 6), route[k][1]
                code = f"HH{len(stops) + 1:06d}"
                stops.append(
                    [f"{number}路", direction, seq, names[k], code, lon, lat, district_at(lon, lat).name]
                )
    line_header = _words(
        "线路名称 线路类型 首班时间 末班时间 票价（元） 站点数 线路长度（公里） 运营单位 起点站 终点站"
    )
    stop_header = _words("线路名称 方向 站序 站点名称 站点编号 经度 纬度 区")
    return (line_header, lines), (stop_header, stops)


def _line_facts(rng: random.Random, number: str, route: list[Point]) -> list[Any]:
    kind = "快速公交" if number.startswith("K") else "夜班线路" if number.startswith("夜") else "常规公交"
    first = "22:00" if kind == "夜班线路" else f"0{rng.randint(5, 6)}:{rng.choice('03')}0"
    last = "05:00" if kind == "夜班线路" else f"2{rng.randint(0, 2)}:{rng.choice('03')}0"
    km = round(_km(route), 1)
    company = f"海河市公交集团第{rng.choice('一二三四五')}客运分公司"
    return [kind, first, last, 1 if km < 12 else 2, len(route), km, company]


def _route(rng: random.Random, n: int) -> list[Point]:
    points = [_pick_district(rng).point(rng)]
    heading = rng.uniform(0, 2 * math.pi)
    while len(points) < n:
        heading += rng.gauss(0, 0.35)
        step = rng.uniform(0.005, 0.01)
        lon, lat = points[-1][0] + step * math.cos(heading) * 1.29, points[-1][1] + step * math.sin(heading)
        if WEST + 0.02 < lon < EAST - 0.02 and SOUTH + 0.02 < lat < NORTH - 0.02:
            points.append((round(lon, 6), round(lat, 6)))
        else:
            heading += math.pi / 2  # turn away from the city's edge
    return points


def _stop_name(rng: random.Random) -> str:
    a, b = rng.sample(ROADS, 2)
    roll = rng.random()
    if roll < 0.55:
        return f"{a.removesuffix('路').removesuffix('街')}{b}"
    return rng.choice(PLACES) if roll < 0.8 else f"{a}{rng.choice('东西南北')}口"


def rail_ridership(days: int = 92) -> Table:
    """Daily entries and exits per station of five metro lines; weekdays busier than weekends."""
    rng = _rng("rail")
    stations = [
        (f"{n}号线", name, rng.uniform(0.4, 3.0))
        for n in range(1, 6)
        for name in rng.sample([*ROADS, *PLACES], rng.randint(12, 20))
    ]
    rows = []
    for day in range(days):
        when = date(2025, 7, 1) + timedelta(days=day)
        busy = 1.0 if when.weekday() < 5 else 0.72
        for line, name, size in stations:
            base = 9000 * size * busy * rng.uniform(0.9, 1.1)
            rows.append([when.isoformat(), line, name, round(base), round(base * rng.uniform(0.92, 1.08))])
    return _words("日期 线路 车站 进站量（人次） 出站量（人次）"), rows


def parking_lots(n: int = 520) -> Table:
    """Public car parks, kerbside bays and building car parks, with bays, charges and places."""
    rng = _rng("parking")
    kinds, weights = ("公共停车场", "路内停车泊位", "配建停车场", "立体停车库"), (4, 3, 3, 1)
    taken: set[str] = set()
    rows = []
    for _ in range(n):
        d = _pick_district(rng)
        kind = rng.choices(kinds, weights)[0]
        name = _unique(rng, partial(_parking_name, d=d, kind=kind), taken)
        bays = rng.randint(12, 80) if kind == "路内停车泊位" else rng.randint(40, 1200)
        charge = "首小时5元，之后每小时2元" if d.weight >= 2 else "首小时3元，之后每小时1元"
        charge = charge if rng.random() > 0.1 else "免费"
        hours = rng.choice(("00:00-24:00", "07:00-22:00"))
        row = [
            name,
            kind,
            d.name,
            _address(rng, d),
            bays,
            round(bays * rng.uniform(0, 0.25)),
            max(1, bays // 50),
        ]
        rows.append([*row, charge, hours, f"海河市{d.name}停车管理有限公司", _phone(rng), *d.point(rng)])
    header = _words("停车场名称 类型 区 地址 总泊位数 充电泊位数 无障碍泊位数 收费标准 开放时间 管理单位")
    return [*header, "联系电话", "经度", "纬度"], rows


def _parking_name(rng: random.Random, d: District, kind: str) -> str:
    if kind == "路内停车泊位":
        road, a, b = rng.sample(ROADS, 3)
        return f"{road}路内停车泊位（{a}至{b}段）"
    place = rng.choice((*PLACES, *ROADS, f"{rng.choice(STREETS)}{rng.choice(('家园', '广场', '花园'))}"))
    return f"{d.name.removesuffix('区')}{place}{'立体停车库' if kind == '立体停车库' else '停车场'}"


# --- health: the directory of medical institutions and the district statistics ------------------------

CITY_HOSPITALS = _words(
    "海河市第一人民医院 海河市第二人民医院 海河市第三人民医院 海河市中医医院 海河市妇女儿童医院 "
    "海河市胸科医院 海河市口腔医院 海河市眼科医院 海河市肿瘤医院 海河市传染病医院 海河医科大学总医院 "
    "海河医科大学第二医院"
)
BRANDS = _words("仁爱 博爱 康华 安康 同济 济民 华康 德仁 爱尔 瑞康 和睦 益民 永康 恒康 美年 惠民")
SPECIALTIES = _words("口腔 中医 内科 眼科 皮肤科 儿科 妇科 康复")


@cache
def medical_institutions() -> Table:
    """Hospitals, community health centres, township health centres, outpatient departments, clinics."""
    rng = _rng("health")
    rows: list[list[Any]] = []
    central = [d for d in districts() if d.weight >= 2]
    for name in CITY_HOSPITALS:
        _institution(
            rows, rng, rng.choice(central), name, ("医院", "三级甲等", "公立", rng.randint(600, 2600))
        )
    for d in districts():
        _district_institutions(rows, rng, d)
    taken = {r[0] for r in rows}
    for _ in range(520):
        d = _pick_district(rng)
        kind = "门诊部" if rng.random() < 0.25 else "诊所"
        name = _unique(rng, partial(_clinic_name, d=d, kind=kind), taken)
        _institution(rows, rng, d, name, (kind, "未定级", "民营", 0))
    return _words("机构名称 机构类别 医院等级 经营性质 区 地址 联系电话 床位数 是否医保定点 经度 纬度"), rows


def _district_institutions(rows: list[list[Any]], rng: random.Random, d: District) -> None:
    grade = "三级乙等" if d.weight >= 1.5 else "二级甲等"
    _institution(rows, rng, d, f"{d.name}人民医院", ("医院", grade, "公立", rng.randint(300, 900)))
    _institution(rows, rng, d, f"{d.name}中医医院", ("医院", "二级甲等", "公立", rng.randint(120, 400)))
    _institution(
        rows, rng, d, f"{d.name}妇幼保健院", ("妇幼保健院", "二级甲等", "公立", rng.randint(40, 150))
    )
    _institution(rows, rng, d, f"{d.name}疾病预防控制中心", ("疾病预防控制中心", "未定级", "公立", 0))
    for brand in rng.sample(BRANDS, round(d.weight * 2)):
        _institution(rows, rng, d, f"海河{brand}医院", ("医院", "一级", "民营", rng.randint(20, 150)))
    for street in rng.sample(STREETS, round(d.weight * 4)):
        _institution(
            rows, rng, d, f"{d.name}{street}街社区卫生服务中心", ("社区卫生服务中心", "未定级", "公立", 20)
        )
    if d.weight < 1.5:  # the outer districts still have townships
        for street in rng.sample(STREETS, 3):
            _institution(
                rows, rng, d, f"{d.name}{street}镇卫生院", ("乡镇卫生院", "一级", "公立", rng.randint(10, 60))
            )


def _institution(
    rows: list[list[Any]], rng: random.Random, d: District, name: str, facts: tuple[str, str, str, int]
) -> None:
    """Add one institution; facts are (机构类别, 医院等级, 经营性质, 床位数)."""
    if any(r[0] == name for r in rows):
        return  # two districts drew the same private hospital brand
    insured = "是" if facts[2] == "公立" or rng.random() < 0.6 else "否"
    rows.append([name, *facts[:3], d.name, _address(rng, d), _phone(rng), facts[3], insured, *d.point(rng)])


def _clinic_name(rng: random.Random, d: District, kind: str) -> str:
    if kind == "门诊部":
        return f"海河{d.name[:2]}{rng.choice(BRANDS)}{rng.choice(SPECIALTIES)}门诊部"
    return f"{d.name}{_person(rng)}{rng.choice(SPECIALTIES)}诊所"


def health_statistics() -> Table:
    """Institutions, beds and staff by district and kind — consistent with the directory."""
    rng = _rng("health-stats")
    count: Counter[tuple[str, str]] = Counter()
    beds: Counter[tuple[str, str]] = Counter()
    for row in medical_institutions()[1]:
        count[row[4], row[1]] += 1
        beds[row[4], row[1]] += row[7]
    rows = []
    order = {d.name: i for i, d in enumerate(districts())}
    for key in sorted(count, key=lambda k: (order[k[0]], k[1])):
        staff = round(beds[key] * rng.uniform(1.3, 1.7) + count[key] * rng.randint(3, 8))
        doctors, nurses = round(staff * rng.uniform(0.3, 0.4)), round(staff * rng.uniform(0.38, 0.48))
        rows.append(
            [*key, count[key], beds[key], staff, doctors, nurses, round(staff * rng.uniform(0.09, 0.14), 2)]
        )
    header = _words("区 机构类别 机构数（个） 床位数（张） 卫生技术人员（人） 执业（助理）医师（人）")
    return [*header, "注册护士（人）", "诊疗人次（万人次）"], rows


# --- education ---------------------------------------------------------------------------------------

SCHOOL_PLAN = (("小学", 14), ("初级中学", 5), ("九年一贯制学校", 2), ("完全中学", 2), ("高级中学", 1))


def schools() -> Table:
    """Primary and secondary schools by district, with a 10-digit school code (学校代码)."""
    rng = _rng("schools")
    taken: set[str] = set()
    rows = []
    numbered = iter(range(1, 200))  # 海河市第N中学, numbered across the city
    for d in districts():
        for stage, per_unit in SCHOOL_PLAN:
            for _ in range(round(per_unit * d.weight) or 1):
                name = _unique(rng, partial(_school_name, d=d, stage=stage, numbered=numbered), taken)
                code = f"21{d.code[-2:]}{rng.randint(0, 999999):06d}"
                classes = rng.randint(12, 36 if stage == "小学" else 48)
                pupils = classes * rng.randint(36, 45)
                owner = "民办" if rng.random() < 0.12 else "公办"
                row = [name, code, stage, owner, d.name, _address(rng, d), _phone(rng), classes, pupils]
                rows.append([*row, round(pupils / rng.uniform(11, 15)), *d.point(rng)])
    return _words(
        "学校名称 学校代码 学校类型 办学性质 区 地址 联系电话 班级数 在校学生数 专任教师数 经度 纬度"
    ), rows


def _school_name(rng: random.Random, d: District, stage: str, numbered: Iterator[int]) -> str:
    if stage == "小学":
        place = rng.choice((*ROADS, *STREETS, "实验", "第一", "第二"))
        return f"{d.name}{place}小学"
    if stage in ("完全中学", "高级中学") and rng.random() < 0.7:
        return f"海河市第{_chinese_number(next(numbered))}中学"
    if stage == "九年一贯制学校":
        return f"{d.name}{rng.choice(STREETS)}学校"
    return f"{d.name}{rng.choice((*STREETS, *ROADS))}中学"


def _chinese_number(n: int) -> str:
    digits = "零一二三四五六七八九"
    tens, ones = divmod(n, 10)
    if tens == 0:
        return digits[ones]
    return f"{'' if tens == 1 else digits[tens]}十{digits[ones] if ones else ''}"


# --- market regulation: enterprise registrations (a GBK export) ------------------------------------------

TRADE_NAME_CHARS = "华恒宏鑫瑞金博润天永中海新同嘉泰盛远汇隆兴达源丰昌安康信诚德鼎顺通利盈凯晟锦辉"
BUSINESSES = {  # name word → 国民经济行业门类
    "科技": "科学研究和技术服务业",
    "信息技术": "信息传输、软件和信息技术服务业",
    "软件": "信息传输、软件和信息技术服务业",
    "商贸": "批发和零售业",
    "汽车销售": "批发和零售业",
    "物流": "交通运输、仓储和邮政业",
    "建筑工程": "建筑业",
    "装饰工程": "建筑业",
    "餐饮管理": "住宿和餐饮业",
    "机械制造": "制造业",
    "电子": "制造业",
    "新材料": "制造业",
    "食品": "制造业",
    "文化传媒": "文化、体育和娱乐业",
    "房地产开发": "房地产业",
    "物业管理": "房地产业",
    "企业管理咨询": "租赁和商务服务业",
    "教育咨询": "教育",
    "环保科技": "水利、环境和公共设施管理业",
    "农业发展": "农、林、牧、渔业",
}
ENTERPRISE_TYPES = {  # 企业类型 → (name suffix, weight)
    "有限责任公司（自然人投资或控股）": ("有限公司", 60),
    "有限责任公司（自然人独资）": ("有限公司", 15),
    "股份有限公司（非上市、自然人投资或控股）": ("股份有限公司", 4),
    "有限责任公司（国有独资）": ("有限公司", 2),
    "个人独资企业": ("经营部", 8),
    "有限合伙企业": ("企业（有限合伙）", 6),
    "有限责任公司（外国法人独资）": ("有限公司", 3),
}
ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
FOUNDING = (date(1992, 1, 1), date(2025, 10, 31))


def credit_code(rng: random.Random, division: str) -> str:
    """A 统一社会信用代码 (GB 32100-2015): 9 = 工商, 1 = 企业, the division, an organisation code
    with its own GB 11714 check character, then the check character of the whole code."""
    body = "".join(rng.choices("0123456789", k=2)) + "".join(rng.choices(CREDIT_CODE_CHARS, k=6))
    check = 11 - sum(int(c, 36) * w for c, w in zip(body, ORG_CODE_WEIGHTS, strict=True)) % 11
    head = f"91{division}{body}{'X' if check == 10 else '0' if check == 11 else check}"
    total = sum(CREDIT_CODE_CHARS.index(c) * w for c, w in zip(head, CREDIT_CODE_WEIGHTS, strict=True))
    return head + CREDIT_CODE_CHARS[(31 - total % 31) % 31]


def enterprises(n: int = 20_000) -> Table:
    """Enterprise registrations; more of them founded in recent years, as in every city."""
    rng = _rng("enterprises")
    taken: set[str] = set()
    kinds, weights = list(ENTERPRISE_TYPES), [w for _, w in ENTERPRISE_TYPES.values()]
    span = (FOUNDING[1] - FOUNDING[0]).days
    rows = []
    for _ in range(n):
        d = _pick_district(rng)
        kind = rng.choices(kinds, weights)[0]
        word = rng.choice(list(BUSINESSES))
        name = _unique(rng, partial(_enterprise_name, word=word, suffix=ENTERPRISE_TYPES[kind][0]), taken)
        founded = FOUNDING[0] + timedelta(days=round(span * math.sqrt(rng.random())))
        status = rng.choices(("存续（在营、开业、在册）", "注销", "吊销"), (90, 7, 3))[0]
        row = [credit_code(rng, d.code), name, kind, _person(rng), founded.isoformat(), _capital(rng)]
        rows.append(
            [*row, BUSINESSES[word], d.name, _address(rng, d), status, f"海河市{d.name}市场监督管理局"]
        )
    header = _words("统一社会信用代码 企业名称 企业类型 法定代表人 成立日期 注册资本（万元） 行业 区 住所")
    return [*header, "登记状态", "登记机关"], rows


def _enterprise_name(rng: random.Random, word: str, suffix: str) -> str:
    return f"海河{rng.choice(('', '市'))}{''.join(rng.sample(TRADE_NAME_CHARS, 2))}{word}{suffix}"


def _capital(rng: random.Random) -> str:
    if rng.random() < 0.7:
        return str(rng.choice((3, 10, 30, 50, 100, 200, 300, 500, 1000, 2000, 3000, 5000, 10000)))
    return f"{10 ** rng.uniform(0.5, 4.7):.2f}"


# --- environment: hourly air quality by station (the large resource) --------------------------------------

AIR_START = date(2024, 1, 1)
AIR_DAYS = 731  # 2024 and 2025: 60 stations × 17,544 hours = 1,052,640 rows
STATION_PLACES = ("监测站", "人民公园", "体育中心", "开发区", "第一中学", "水厂", "湿地公园", "文化中心")
# HJ 633-2012: concentration breakpoints for IAQI 0, 50, 100, 150, 200, 300, 400, 500
IAQI_LEVELS = (0, 50, 100, 150, 200, 300, 400, 500)
BREAKPOINTS = {
    "PM2.5": (0, 35, 75, 115, 150, 250, 350, 500),
    "PM10": (0, 50, 150, 250, 350, 420, 500, 600),
    "SO2": (0, 150, 500, 650, 800),  # 1-hour values; above 800 the 24-hour value counts
    "NO2": (0, 100, 200, 700, 1200, 2340, 3090, 3840),
    "CO": (0, 5, 10, 35, 60, 90, 120, 150),
    "O3": (0, 160, 200, 300, 400, 800, 1000, 1200),
}
AIR_SQL = """
CREATE MACRO u(a, b, c) AS (hash({seed}, a, b, c) % 1000003) / 1000003.0;
-- about normal (mean 0, sd 1): four uniforms
CREATE MACRO z(a, b, c) AS (u(a, b, c) + u(a, b, c + 1) + u(a, b, c + 2) + u(a, b, c + 3) - 2.0) * 1.732;
CREATE MACRO lerp(a, b, f) AS a + (b - a) * f;
CREATE TABLE hours AS
SELECT h, TIMESTAMP '{start}' + to_hours(h) AS t, h // 24 AS d, (h % 24) / 24.0 AS f,
       h // 72 AS d3, (h % 72) / 72.0 AS f3
FROM range({hours}) r(h);
CREATE TABLE raw AS
WITH weather AS (  -- city-wide: multi-day episodes and daily swings, eased from one to the next
    SELECT *, dayofyear(t) AS doy, hour(t) AS hh, month(t) AS mm,
           exp(0.45 * lerp(z(0, d3, 20), z(0, d3 + 1, 20), f3) + 0.3 * lerp(z(0, d, 10), z(0, d + 1, 10), f))
               AS episode,
           u(0, d, 30) > 0.93 AND month(t) BETWEEN 3 AND 5 AS dust
    FROM hours
), conc AS (
    SELECT s.name, s.district, w.t, s.sid, w.h, w.hh,
           greatest(3, s.base * (1 + 0.55 * cos(2 * pi() * (w.doy - 20) / 365.25))
                    * (1 + 0.18 * cos(2 * pi() * (w.hh - 23) / 24)) * w.episode
                    * (0.85 + 0.3 * u(s.sid, w.h, 1))) AS pm25,
           (CASE WHEN w.dust THEN 2.5 + 4 * u(0, w.d, 31) ELSE 1.35 + 0.4 * u(s.sid, w.h, 2) END) AS coarse,
           (CASE WHEN w.mm IN (11, 12, 1, 2, 3) THEN 14 ELSE 5 END) * (0.6 + 0.8 * u(s.sid, w.h, 3)) AS so2,
           (16 + 24 * s.traffic) * (1 + 0.35 * cos(2 * pi() * (w.hh - 8) / 12)) * sqrt(w.episode)
               * (0.8 + 0.4 * u(s.sid, w.h, 4)) AS no2,
           (20 + 200 * (0.5 + 0.5 * cos(2 * pi() * (w.doy - 180) / 365.25))
               * greatest(0, cos(2 * pi() * (w.hh - 15) / 24))) * (0.75 + 0.5 * u(s.sid, w.h, 5)) AS o3,
           u(s.sid, w.h, 9) < 0.003 AS offline  -- maintenance and instrument faults
    FROM stations s CROSS JOIN weather w
)
SELECT name, district, t, sid, offline,
       round(pm25) AS pm25, round(pm25 * coarse + 8 * u(sid, h, 6)) AS pm10, round(so2) AS so2,
       round(no2) AS no2, round(0.25 + pm25 * 0.011 + 0.2 * u(sid, h, 7), 1) AS co,
       round(o3 * (1 - 0.3 * least(1, pm25 / 150))) AS o3
FROM conc;
COPY (
    WITH scored AS (
        SELECT *, {iaqi} AS iaqi FROM raw
    ), aqi AS (
        SELECT *, CAST(ceil(list_max(iaqi)) AS INTEGER) AS aqi FROM scored
    )
    SELECT name AS "站点名称", district AS "区", strftime(t, '%Y-%m-%d %H:%M:%S') AS "监测时间",
           CASE WHEN NOT offline THEN aqi END AS "AQI",
           CASE WHEN NOT offline THEN CAST(pm25 AS INTEGER) END AS "PM2.5",
           CASE WHEN NOT offline THEN CAST(pm10 AS INTEGER) END AS "PM10",
           CASE WHEN NOT offline THEN CAST(so2 AS INTEGER) END AS "SO2",
           CASE WHEN NOT offline THEN CAST(no2 AS INTEGER) END AS "NO2",
           CASE WHEN NOT offline THEN CAST(co AS DECIMAL(4, 1)) END AS "CO",
           CASE WHEN NOT offline THEN CAST(o3 AS INTEGER) END AS "O3",
           CASE WHEN NOT offline AND aqi > 50
                THEN {names}[list_position(iaqi, list_max(iaqi))] END AS "首要污染物"
    FROM aqi ORDER BY t, sid
) TO '{path}' (FORMAT csv, HEADER);
"""


def stations() -> pa.Table:
    """Sixty monitoring stations, five per district; busy districts carry more traffic."""
    rng = _rng("stations")
    columns: dict[str, list[Any]] = {"sid": [], "name": [], "district": [], "base": [], "traffic": []}
    for d in districts():
        for place in rng.sample(STATION_PLACES, 5):
            traffic = min(1.0, d.weight / 3 + rng.uniform(0, 0.4))
            values = (len(columns["sid"]), f"{d.name}{place}", d.name, rng.uniform(30, 40), traffic)
            for key, value in zip(columns, values, strict=True):
                columns[key].append(value)
    return pa.table(columns)


def _iaqi_sql(column: str, points: tuple[int, ...]) -> str:
    """Linear interpolation between breakpoints, as a CASE; 500 beyond the last."""
    cases = " ".join(
        f"WHEN {column} <= {hi} THEN {ilo} + {ihi - ilo} * ({column} - {lo}) / {hi - lo}"
        for lo, hi, ilo, ihi in zip(points, points[1:], IAQI_LEVELS, IAQI_LEVELS[1:], strict=False)
    )
    return f"CASE {cases} ELSE 500 END"


def write_air_quality(path: Path, days: int = AIR_DAYS) -> int:
    """Write the hourly air quality CSV (60 stations × 24 × `days` rows); returns the row count."""
    columns = {"PM2.5": "pm25", "PM10": "pm10", "SO2": "so2", "NO2": "no2", "CO": "co", "O3": "o3"}
    iaqi = "[" + ", ".join(_iaqi_sql(columns[k], BREAKPOINTS[k]) for k in columns) + "]"
    sql = AIR_SQL.format(
        seed=SEED,
        start=AIR_START.isoformat(),
        hours=days * 24,
        iaqi=iaqi,
        names="[" + ", ".join(f"'{k}'" for k in columns) + "]",
        path=str(path).replace("'", "''"),
    )
    with duckdb.connect() as con:
        con.register("stations", stations())
        con.execute(sql)
        return int(con.execute("SELECT count(*) FROM raw").fetchone()[0])  # type: ignore[index]


def write_district_boundaries(path: Path) -> int:
    """The districts as a GeoJSON FeatureCollection (a file resource); returns the feature count."""
    features = [
        {
            "type": "Feature",
            "properties": {"name": d.name, "code": d.code, "city": "海河市"},
            "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in d.ring]]},
        }
        for d in districts()
    ]
    collection = {"type": "FeatureCollection", "name": "海河市行政区划边界", "features": features}
    path.write_text(json.dumps(collection, ensure_ascii=False, indent=1), encoding="utf-8")
    return len(features)


# --- the resources and their seeding ---------------------------------------------------------------------


@dataclass(frozen=True)
class DemoResource:
    """One file a provider uploads to one published entry (found by a part of its title)."""

    entry: str
    filename: str
    name: str
    description: str
    write: Callable[[Path], int]  # writes the file; returns the rows (features) written
    large: bool = False


RESOURCES = (
    DemoResource(
        "公交线路及站点",
        "公交线路.csv",
        "公交线路",
        "全市公交线路的起终点、首末班时间、票价和线路长度。",
        lambda p: write_csv(p, bus_network()[0]),
    ),
    DemoResource(
        "公交线路及站点",
        "公交站点.csv",
        "公交站点",
        "各线路上下行站点的站序、名称、编号和坐标（WGS-84）。",
        lambda p: write_csv(p, bus_network()[1]),
    ),
    DemoResource(
        "轨道交通客流统计数据",
        "轨道交通车站日客流_2025年第三季度.csv",
        "车站日客流",
        "2025年第三季度各线路车站每日进站量、出站量。",
        lambda p: write_csv(p, rail_ridership(), "utf-8-sig"),
    ),
    DemoResource(
        "停车场泊位信息",
        "停车场泊位信息.csv",
        "停车场泊位",
        "公共停车场、路内泊位和配建停车场的泊位数、收费标准和位置。",
        lambda p: write_csv(p, parking_lots()),
    ),
    DemoResource(
        "医疗机构名录",
        "海河市医疗机构名录.csv",
        "医疗机构名录",
        "全市医院、社区卫生服务中心、卫生院、门诊部和诊所的名称、类别、等级、地址和电话。",
        lambda p: write_csv(p, medical_institutions()),
    ),
    DemoResource(
        "医疗卫生机构床位及人员统计",
        "海河市2025年医疗卫生机构床位及人员统计表.xlsx",
        "2025年床位及人员统计",
        "按区和机构类别汇总的机构数、床位数、卫生技术人员和诊疗人次。",
        lambda p: write_titled_xlsx(
            p,
            "海河市2025年医疗卫生机构床位及人员统计表",
            health_statistics(),
            "数据来源：海河市卫生健康委员会",
        ),
    ),
    DemoResource(
        "中小学校基本信息",
        "中小学校名录.csv",
        "中小学校名录",
        "全市中小学校的学校代码、类型、办学性质、地址、班级数、学生数和教师数。",
        lambda p: write_csv(p, schools(), "utf-8-sig"),
    ),
    DemoResource(
        "企业登记注册信息",
        "企业登记注册信息.csv",
        "企业登记信息",
        "企业的统一社会信用代码、名称、类型、成立日期、注册资本、行业和登记状态（登记系统导出，GBK 编码）。",
        lambda p: write_csv(p, enterprises(), "gbk"),
    ),
    DemoResource(
        "空气质量实时监测数据",
        "空气质量小时数据_2024-2025.csv",
        "空气质量小时数据（2024—2025年）",
        "60 个国控、市控站点逐小时 AQI 及六项污染物浓度（μg/m³，CO 为 mg/m³）。",
        write_air_quality,
        large=True,
    ),
    DemoResource(
        "海河市行政区划边界",
        "海河市行政区划边界.geojson",
        "区级行政区划边界",
        "各区边界面要素，GeoJSON，WGS-84 坐标。",
        write_district_boundaries,
    ),
)


@dataclass
class Seeded:
    """What seeding one resource produced."""

    entry: str
    name: str
    resource_id: int
    rows: int
    seconds: float


def seed_resources(
    platform: Platform, *, small: bool = False, report: Callable[[str], None] = print
) -> list[Seeded]:
    """Upload, read and publish every demo resource (without the large one when `small`).

    The demo entries must already be committed: the ingest job reads them in its own sessions.
    A file that the pipeline fails or blocks is a bug in its generator, and stops the seeding.
    """
    done: list[Seeded] = []
    started = time.perf_counter()
    # The store moves files into place by renaming: the temporary files must live on its disk.
    with tempfile.TemporaryDirectory(dir=platform.store.path("tmp").parent, prefix=".demo-") as tmp:
        for spec in RESOURCES:
            if small and spec.large:
                continue
            seeded = _seed_one(platform, spec, Path(tmp))
            done.append(seeded)
            rows = f"{seeded.rows:,} 行" if seeded.rows else "文件"
            report(f"  {seeded.entry} · {seeded.name}：{rows}（{seeded.seconds:.1f} 秒）")
    total = sum(s.rows for s in done)
    report(f"已载入 {len(done)} 个数据资源，共 {total:,} 行（{time.perf_counter() - started:.1f} 秒）")
    seed_applications(platform.db, report)  # they name the published 有条件开放 table
    return done


# The demo provider's review of its own data: institutions' published switchboard numbers are
# not personal information and open as they are; everything else keeps the proposed masking.
DEMO_REVIEW = desensitize.Vouched(
    notes="演示数据，经保密审查和安全风险评估，可以开放",
    keep=("联系电话",),
    justification="联系电话为医院、学校、停车场等机构对外公布的办公电话，不属于个人信息，原样开放",
)


def _seed_one(platform: Platform, spec: DemoResource, tmp: Path) -> Seeded:
    started = time.perf_counter()
    path = tmp / spec.filename
    spec.write(path)
    key = f"staging/{secrets.token_hex(16)}"
    size, digest = platform.store.put_file(key, path)
    with platform.db.session() as db:
        entry = _published_entry(db, spec.entry)
        actor = actor_for(db, db.get_one(User, entry.created_by))
        upload = service.Upload(filename=spec.filename, staged_key=key, size=size, sha256=digest)
        resource, version = service.add_resource(
            db, actor, entry.id, upload, name=spec.name, description=spec.description, change_note="首次发布"
        )
        entry_title, resource_id, version_id = entry.title, resource.id, version.id
    service.process_version(platform.db, platform.store, version_id)
    with platform.db.session() as db:
        version = db.get_one(ResourceVersion, version_id)
        if version.status != VersionStatus.review or version.report.get("fatal"):
            raise RuntimeError(f"演示数据 {spec.filename} 未能读取：{version.report}")
        store, settings = platform.store, platform.settings
        desensitize.pass_review(db, actor, store, settings, resource_id, version.number, DEMO_REVIEW)
        service.publish_version(
            db, actor, resource_id, version.number, comment="演示数据", store=store, settings=settings
        )
        rows = version.row_count
    return Seeded(entry_title, spec.name, resource_id, rows, time.perf_counter() - started)


def _published_entry(db: Session, title_part: str) -> Entry:
    matches = list(
        db.scalars(
            select(Entry).where(Entry.title.contains(title_part), Entry.status == EntryStatus.published)
        )
    )
    if len(matches) != 1:
        raise RuntimeError(f"演示目录中应恰有一条已发布的“{title_part}”，实际 {len(matches)} 条")
    return matches[0]
