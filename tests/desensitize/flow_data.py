"""People for the flow tests: valid resident ID numbers (GB 11643 check digit) and mobiles."""

from __future__ import annotations

import random
from datetime import date, timedelta

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK = "10X98765432"
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛"]
DISTRICTS = ["河西区", "河东区", "南开区", "和平区"]


def id_number(rng: random.Random, birth: date, female: bool) -> str:
    body = f"120103{birth:%Y%m%d}{rng.randrange(100):02d}{rng.randrange(5) * 2 + (0 if female else 1)}"
    return body + CHECK[sum(int(c) * w for c, w in zip(body, WEIGHTS, strict=True)) % 11]


def people_csv(rows: int = 60, seed: int = 7, extra_email: bool = False) -> str:
    """姓名, 身份证号, 手机号, 性别, 出生日期, 所在区, 补贴金额 (and 电子邮箱) for `rows` people."""
    rng = random.Random(seed)
    header = ["姓名", "身份证号", "手机号", "性别", "出生日期", "所在区", "补贴金额"]
    lines = [",".join(header + (["电子邮箱"] if extra_email else []))]
    for i in range(rows):
        female = rng.random() < 0.5
        birth = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 50))
        cells = [
            rng.choice(SURNAMES) + rng.choice(GIVEN),
            id_number(rng, birth, female),
            f"13{rng.randrange(10)}{rng.randrange(10**8):08d}",
            "女" if female else "男",
            birth.isoformat(),
            rng.choice(DISTRICTS),
            str(100 + i),
        ]
        if extra_email:
            cells.append(f"user{i}@example.com")
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"
