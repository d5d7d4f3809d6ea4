"""How text becomes search terms, the same way for the indexed catalog and for what people type.

- `normalise`: full-width → half-width and compatibility forms (NFKC: ＰＭ１０ → PM10, ㎡ → m2),
  traditional → simplified characters (OpenCC ``t2s``: 圖書館 → 图书馆), case folding, and a code
  and its number written apart joined (PM 10 → pm10), so every spelling of a term is one term.
- `index_terms`: jieba's search-mode segmentation (words and their sub-words) of normalised text.
- `pinyin_terms`: full pinyin (tushuguan) and, for words of three or more characters, initials
  (tsg) of the Chinese words, indexed beside them for people typing without an input method.
- `FILLERS` are dropped from a query (question words, function words, "please find"); `WEAK` words
  (办, 申请, 数据, 明天 …) add to an entry's score when they match but never decide whether it matches.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from functools import lru_cache

import jieba
import opencc
from pypinyin import Style, lazy_pinyin

jieba.setLogLevel(logging.WARNING)

_WORD = re.compile(r"\w", re.UNICODE)
_HAN = re.compile(r"^[\u4e00-\u9fff]+$")
_LATIN = re.compile(r"^[a-z]+$")
# "pm 2.5", "so 2": a short code and the number that belongs to it, typed apart
_CODE_NUMBER = re.compile(r"(?<![a-z0-9])([a-z]{1,4}) +([0-9]+(?:\.[0-9]+)?)(?![0-9.])")


def _set(*lines: str) -> frozenset[str]:
    return frozenset(" ".join(lines).split())


FILLERS = _set(
    # function words
    "的 了 和 与 及 或 在 是 有 吗 呢 啊 吧 之 等 对 从 把 被 就 也 都 而 呀 哦 嘛 么 着 过 给 让 向 为",
    "于 并 还 又 很 最 更 会 能 可",
    # question words
    "什么 啥 哪 哪里 哪儿 哪些 哪个 哪家 哪边 在哪 在哪里 在哪儿 怎么 怎样 怎么样 怎么办 如何 为什么",
    "为何 多少 几 是否 有没有 有无 能否 能不能 可不可以 可以 是不是",
    # asking, looking, pointing
    "请问 请 查询 查 查找 查看 查一下 搜索 搜 找 找到 寻找 了解 知道 告诉 看看 一下 想 想要 要 需要",
    "应该 得 我 我们 你 您 他 她 咱 自己 相关 关于 有关 附近 周边 去 到 这 那 这个 那个 一个 一些",
)
WEAK = _set(
    # verbs of everyday errands: the object says what is wanted
    "办 办理 申请 交 缴 缴纳 考 带 打 开 做 用 买 卖 看 领 取 报 问 上 下 补 换 拿 住 吃",
    # words every catalog entry could carry, and nouns that say nothing by themselves
    "数据 信息 资料 情况 名单 名录 列表 清单 一览 大全 地址 电话 地点 位置 时间 服务",
    "工作 地方 东西 问题 事情 手续 材料 办法 方法 流程",
    # when
    "今天 明天 后天 昨天 周末 今年 明年 去年 最新 现在 目前 最近",
)

_converter = opencc.OpenCC("t2s")
_converter_lock = threading.Lock()


def normalise(text: str) -> str:
    """One spelling for every way of typing a term: NFKC, simplified characters, case folded."""
    text = unicodedata.normalize("NFKC", text)
    with _converter_lock:  # the native converter is not documented as thread-safe
        text = _converter.convert(text)
    return _CODE_NUMBER.sub(r"\1\2", text.casefold())


def is_word(token: str) -> bool:
    return bool(token) and bool(_WORD.search(token))


def words(text: str) -> list[str]:
    """Precise segmentation of normalised text, without punctuation (how a query is read)."""
    tokens = [t for t in (w.strip() for w in jieba.cut(normalise(text))) if is_word(t)]
    return [part for token in tokens for part in _unguess(token)]


def _unguess(token: str) -> list[str]:
    """A word jieba guessed (it is not in its dictionary) loses a filler or weak character at
    either end: 护照在哪办 is read 护照/在/哪办, and 哪办 is 哪 + 办."""
    if len(token) < 2 or not is_han(token) or jieba.get_FREQ(token) is not None:
        return [token]
    head = [token[0]] if token[0] in FILLERS or token[0] in WEAK else []
    rest = token[len(head) :]
    tail = [rest[-1]] if len(rest) > 1 and (rest[-1] in FILLERS or rest[-1] in WEAK) else []
    return [*head, *([rest[: len(rest) - len(tail)]] if rest else []), *tail]


def index_terms(text: str) -> list[str]:
    """Search-mode segmentation of normalised text: words and their sub-words."""
    return [t for t in (w.strip() for w in jieba.cut_for_search(normalise(text))) if is_word(t)]


def sub_words(word: str) -> list[str]:
    """The parts search mode finds inside a word (公交车辆 → 公交, 车辆), without the word itself."""
    return [t for t in jieba.cut_for_search(word) if t != word and is_word(t)]


def is_han(word: str) -> bool:
    return bool(_HAN.match(word))


def is_latin(word: str) -> bool:
    return bool(_LATIN.match(word))


@lru_cache(maxsize=65536)
def full_pinyin(word: str) -> str:
    """图书馆 → tushuguan (pypinyin picks the reading of known phrases: 重庆 → chongqing)."""
    return "".join(lazy_pinyin(word))


@lru_cache(maxsize=65536)
def initials(word: str) -> str:
    """图书馆 → tsg."""
    return "".join(lazy_pinyin(word, style=Style.FIRST_LETTER))


def pinyin_terms(terms: list[str]) -> list[str]:
    """Full pinyin of each Chinese word of two or more characters, and the initials of those of
    three or more (two-letter initials such as gj would match half the catalog)."""
    found: dict[str, None] = {}
    for term in terms:
        if len(term) >= 2 and is_han(term):
            found[full_pinyin(term)] = None
            if len(term) >= 3:
                found[initials(term)] = None
    return list(found)


def field_text(text: str, *, with_pinyin: bool = False) -> str:
    """The indexed form of one field: its terms, space-separated, and their pinyin if asked."""
    terms = index_terms(text)
    if with_pinyin:
        terms += pinyin_terms(terms)
    return " ".join(terms)
