"""A small published catalog written the way departments write catalogs, for the tests of search
that understands how people ask (test_search_language, test_search_vocabulary, test_related).

No title uses the everyday words people type (护照, 驾照, 社保, 玩): those must be found through
the search vocabulary. A 不予开放 entry and a draft carry such words and must never show.
"""

from __future__ import annotations

from typing import Any

from kaifang.accounts.models import Organisation, User
from kaifang.accounts.service import actor_for
from kaifang.catalog import service
from tests.conftest import Cast, Factory, complete_fields

# provider, title, fields
ENTRIES: list[tuple[str, str, dict[str, Any]]] = [
    (
        "whly",
        "图书馆借阅量统计",
        {"theme": "whxx", "keywords": ["借阅量", "读者"], "summary": "各馆年度借阅册次。"},
    ),
    (
        "whly",
        "公共图书馆名录",
        {"theme": "whxx", "keywords": ["图书馆", "借阅"], "summary": "市、区公共图书馆的地址和开放时间。"},
    ),
    (
        "whly",
        "城市公园名录",
        {
            "theme": "whxx",
            "keywords": ["公园", "开放时间"],
            "summary": "综合公园的地址、面积和儿童游乐设施。",
        },
    ),
    ("whly", "城市绿地统计", {"theme": "whxx", "keywords": ["绿地"], "summary": "各区公共绿地面积。"}),
    (
        "gaj",
        "出入境证件受理点信息",
        {"theme": "ggaq", "keywords": ["出入境", "证件受理"], "summary": "各受理点的地址和办公时间。"},
    ),
    (
        "gaj",
        "机动车驾驶人考试场地信息",
        {"theme": "jtys", "keywords": ["驾驶人考试", "考场"], "summary": "考试场地名称、地址和考试车型。"},
    ),
    (
        "rsj",
        "社会保险经办服务网点",
        {"theme": "sbjy", "keywords": ["社会保险", "参保登记"], "summary": "经办网点地址和办公时间。"},
    ),
    (
        "sthj",
        "空气质量实时监测",
        {"theme": "sthj", "keywords": ["空气质量"], "summary": "各监测站点PM10、PM2.5的小时浓度。"},
    ),
    (
        "wjw",
        "预防接种门诊名录",
        {"theme": "ylws", "keywords": ["预防接种", "疫苗"], "summary": "接种门诊的地址和接种时间。"},
    ),
    (
        "wjw",
        "医疗机构名录",
        {"theme": "ylws", "keywords": ["医疗机构", "医院"], "summary": "医疗机构的名称、等级和地址。"},
    ),
    ("jtw", "公共停车场泊位信息", {"keywords": ["停车场"], "summary": "停车场名称、地址和收费标准。"}),
    ("jtw", "停车设施分布", {"keywords": ["泊位", "停车"], "summary": "路内停车设施的位置。"}),
    ("jtw", "道路停车收费标准", {"keywords": ["收费标准"], "summary": "按区域和时段的路内泊位收费标准。"}),
    ("jtw", "河西区公共厕所分布", {"theme": "shfw", "keywords": ["公共厕所"], "summary": "公共厕所的位置。"}),
    ("jtw", "河东区公共厕所分布", {"theme": "shfw", "keywords": ["公共厕所"], "summary": "公共厕所的位置。"}),
    ("gaj", "护照签发明细", {"theme": "ggaq", "keywords": ["护照", "签发"], "open_type": "closed"}),
]
DRAFT = ("gaj", "护照办理草稿", {"theme": "ggaq", "keywords": ["护照"]})
PROVIDERS = {
    "whly": "海河市文化和旅游局",
    "gaj": "海河市公安局",
    "rsj": "海河市人力资源和社会保障局",
    "sthj": "海河市生态环境局",
}


class EverydayCatalog:
    """The entries above, published through the real workflow in one transaction."""

    def __init__(self, factory: Factory, cast: Cast) -> None:
        self.cast = cast
        publishers: dict[str, tuple[User, Organisation]] = {
            "jtw": (cast.users["publisher"], cast.org),
            "wjw": (cast.users["other_publisher"], cast.other_org),
        }
        for slug, name in PROVIDERS.items():
            org = factory.org(slug, name)
            publishers[slug] = (factory.user(f"{slug}-pub", org=org, roles=("publisher",)), org)
        self.ids: dict[str, int] = {}
        session = factory.platform.db.sessionmaker()
        try:
            regulator = actor_for(session, cast.users["regulator"])
            for provider, title, fields in ENTRIES:
                user, org = publishers[provider]
                actor = actor_for(session, user)
                entry_id = service.create_entry(
                    session, actor, org.id, complete_fields(title=title, **fields)
                ).id
                service.submit_entry(session, actor, entry_id)
                service.confirm_entry(session, regulator, entry_id)
                service.publish_entry(session, actor, entry_id)
                self.ids[title] = entry_id
            provider, title, fields = DRAFT
            user, org = publishers[provider]
            draft = service.create_entry(
                session, actor_for(session, user), org.id, complete_fields(title=title, **fields)
            )
            self.ids[title] = draft.id
            session.commit()
        finally:
            session.close()
