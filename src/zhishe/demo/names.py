"""Made-up but plausible Chinese personal names and masked mobile numbers."""

from __future__ import annotations

import random
from typing import Literal

__all__ = ["SURNAMES", "masked_phone", "person_name"]

#: Common surnames with rough relative frequencies (per mille of the population).
# fmt: off
SURNAMES: tuple[tuple[str, float], ...] = (
    ("王", 72), ("李", 72), ("张", 68), ("刘", 54), ("陈", 45), ("杨", 31), ("黄", 23), ("赵", 22),
    ("吴", 20), ("周", 19), ("徐", 15), ("孙", 15), ("马", 13), ("朱", 12), ("胡", 11), ("郭", 11),
    ("何", 10), ("高", 10), ("林", 10), ("罗", 9), ("郑", 9), ("梁", 8), ("谢", 7), ("宋", 6),
    ("唐", 6), ("许", 6), ("韩", 6), ("冯", 5), ("邓", 5), ("曹", 5), ("彭", 5), ("曾", 5),
    ("肖", 5), ("田", 4), ("董", 4), ("袁", 4), ("潘", 4), ("于", 4), ("蒋", 4), ("蔡", 4),
    ("余", 4), ("杜", 4), ("叶", 4), ("程", 4), ("苏", 3), ("魏", 3), ("吕", 3), ("丁", 3),
    ("任", 3), ("沈", 3), ("姚", 3), ("卢", 3), ("姜", 3), ("崔", 3), ("钟", 3), ("谭", 3),
    ("陆", 2), ("汪", 2), ("范", 2), ("金", 2), ("石", 2), ("廖", 2), ("贾", 2), ("夏", 2),
)
# fmt: on

# Given names by generation: fashions changed a great deal between the 1940s and the 2010s.
_GIVEN: dict[str, dict[str, tuple[str, ...]]] = {
    "old": {
        "M": ("建国", "国强", "志强", "建华", "德明", "振华", "国庆", "文斌", "永福", "宝山", "树林", "凤山"),
        "F": ("秀英", "桂兰", "淑珍", "玉兰", "秀兰", "凤英", "桂英", "淑华", "玉珍", "丽华", "素芳", "春梅"),
    },
    "mid": {
        "M": ("伟", "强", "磊", "军", "勇", "涛", "斌", "刚", "海涛", "建军", "晓东", "明"),
        "F": ("敏", "静", "丽", "艳", "娟", "霞", "燕", "红梅", "晓燕", "秀梅", "丽娟", "慧"),
    },
    "young": {
        "M": ("浩然", "子轩", "宇航", "俊杰", "梓豪", "一鸣", "博文", "天宇", "思远", "子墨", "昊", "晨阳"),
        "F": ("欣怡", "子涵", "梓萱", "雨桐", "诗涵", "思彤", "佳琪", "若曦", "一诺", "可馨", "晓彤", "雪"),
    },
}

# fmt: off
_MOBILE_PREFIXES = (
    "130", "131", "132", "135", "136", "137", "138", "139", "150", "151", "152", "155",
    "156", "158", "159", "176", "177", "180", "182", "185", "186", "187", "188", "189", "199",
)
# fmt: on


def person_name(
    rng: random.Random, birth_year: int, gender: Literal["M", "F"], surname: str | None = None
) -> str:
    """A full name (surname first) in the fashion of ``birth_year``."""
    if surname is None:
        surname = rng.choices([s for s, _ in SURNAMES], weights=[w for _, w in SURNAMES])[0]
    generation = "old" if birth_year < 1960 else "mid" if birth_year < 1990 else "young"
    return surname + rng.choice(_GIVEN[generation][gender])


def masked_phone(rng: random.Random) -> str:
    """A mainland mobile number with the middle four digits masked, e.g. ``138****1234``."""
    return f"{rng.choice(_MOBILE_PREFIXES)}****{rng.randrange(10000):04d}"
