"""The demo community's participation, made through the platform's own services with the clock set
back: report categories with their questions and SLAs, teams and routing rules, where the demo
residents live, six weeks of reports worked by the departments (fixed in time or late, waiting for
parts, reopened, duplicates, confirmed with a rating), suggestions with supports and a response,
an active incident with its roles, tasks and public notice, an Open311 key for the operator's app,
and the measures published as the data bureau's datasets."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from zhishe.core import clock
from zhishe.core.accounts.models import Organisation, User
from zhishe.core.accounts.service import actor_for_user
from zhishe.core.areas.models import Area
from zhishe.core.auth import Actor, system_actor
from zhishe.core.errors import Conflict
from zhishe.demo._util import rng_for
from zhishe.demo.model import Community
from zhishe.participation import admin, apikeys, incidents, measures, service, suggestions, worker
from zhishe.participation.models import Request, Residence

__all__ = ["CATEGORIES", "seed_participation"]

_LIGHT_STATES = [
    {"key": "out", "name": "不亮"},
    {"key": "flicker", "name": "闪烁"},
    {"key": "day", "name": "白天常亮"},
]
_BINS = [
    {"key": "kitchen", "name": "厨余垃圾"},
    {"key": "recyclable", "name": "可回收物"},
    {"key": "other", "name": "其他垃圾"},
]

#: The categories residents report, Open311-shaped, with their SLAs and who works them.
CATEGORIES: list[dict[str, Any]] = [
    {
        "service_code": "streetlight",
        "service_name": "路灯故障",
        "name_en": "Street light out",
        "description": "路灯不亮、闪烁或白天常亮",
        "description_en": "A street light that is out, flickers or stays on by day",
        "group": "市政设施",
        "keywords": "路灯,照明,lighting",
        "sla_amount": 3,
        "sla_unit": "days",
        "attributes": [
            {
                "code": "pole_number",
                "datatype": "string",
                "required": False,
                "order": 1,
                "description": "灯杆编号（杆身铭牌）",
            },
            {
                "code": "light_state",
                "datatype": "singlevaluelist",
                "required": True,
                "order": 2,
                "description": "灯的情况",
                "values": _LIGHT_STATES,
            },
            {
                "code": "safety",
                "datatype": "string",
                "variable": False,
                "order": 3,
                "description": "如有电线掉落，请远离并拨打 95598",
            },
        ],
    },
    {
        "service_code": "garbage",
        "service_name": "垃圾满溢",
        "name_en": "Overflowing garbage",
        "group": "市容环境",
        "keywords": "垃圾,分类",
        "sla_amount": 8,
        "sla_unit": "hours",
        "attributes": [
            {
                "code": "bin_type",
                "datatype": "multivaluelist",
                "required": True,
                "order": 1,
                "description": "哪类垃圾桶",
                "values": _BINS,
            },
        ],
    },
    {
        "service_code": "leak",
        "service_name": "漏水",
        "name_en": "Water leak",
        "group": "供水排水",
        "keywords": "漏水,水管",
        "sla_amount": 4,
        "sla_unit": "hours",
        "attributes": [
            {
                "code": "flow",
                "datatype": "number",
                "required": False,
                "order": 1,
                "description": "大约每分钟几升",
                "datatype_description": "升/分钟",
            },
        ],
    },
    {
        "service_code": "noise",
        "service_name": "噪音扰民",
        "name_en": "Noise",
        "group": "市容环境",
        "type": "batch",
        "sla_amount": 5,
        "sla_unit": "days",
        "attributes": [
            {
                "code": "noticed_at",
                "datatype": "datetime",
                "required": True,
                "order": 1,
                "description": "什么时候开始的",
            },
            {"code": "details", "datatype": "text", "required": False, "order": 2, "description": "补充说明"},
        ],
    },
    {
        "service_code": "road",
        "service_name": "道路破损",
        "name_en": "Damaged road or pavement",
        "group": "市政设施",
        "sla_amount": 5,
        "sla_unit": "days",
        "attributes": [],
    },
    {
        "service_code": "manhole",
        "service_name": "井盖缺失或破损",
        "name_en": "Missing or broken manhole cover",
        "group": "市政设施",
        "sla_amount": 4,
        "sla_unit": "hours",
        "attributes": [],
    },
    {
        "service_code": "parking",
        "service_name": "违章停车",
        "name_en": "Illegal parking",
        "group": "交通",
        "sla_amount": 2,
        "sla_unit": "days",
        "attributes": [
            {"code": "plate", "datatype": "string", "required": False, "order": 1, "description": "车牌号"},
        ],
    },
    {
        "service_code": "elevator",
        "service_name": "电梯故障",
        "name_en": "Lift out of order",
        "group": "物业",
        "sla_amount": 8,
        "sla_unit": "hours",
        "attributes": [
            {
                "code": "trapped",
                "datatype": "singlevaluelist",
                "required": True,
                "order": 1,
                "description": "有人被困吗",
                "values": [{"key": "yes", "name": "有人被困"}, {"key": "no", "name": "无人被困"}],
            },
        ],
    },
]

#: category -> (organisation code, team name or None, grid worker username or None)
_ROUTES = {
    "streetlight": ("dept-city", "路灯养护班", None),
    "garbage": ("operator", None, "operator.analyst"),
    "leak": ("dept-water", "管网抢修班", None),
    "noise": ("dept-police", None, None),
    "road": ("dept-transport", None, None),
    "manhole": ("dept-city", "路灯养护班", None),
    "parking": ("dept-police", None, None),
    "elevator": ("operator", None, "operator.analyst"),
}
_TEXTS = {
    "streetlight": ["小区东门路灯不亮", "3号楼前路灯一直闪", "路灯白天也亮着"],
    "garbage": ["垃圾桶满了没人清", "分类垃圾桶溢出，味道很大"],
    "leak": ["楼前地面冒水", "地下室有水渗出"],
    "noise": ["夜里装修噪音", "广场舞音响太大"],
    "road": ["人行道地砖松动", "路面有坑"],
    "manhole": ["井盖松动，踩上去会响", "井盖不见了，很危险"],
    "parking": ["消防通道被车堵住", "车停在盲道上"],
    "elevator": ["电梯停在5楼不动", "电梯门关不上"],
}


def _answers(code: str, rng: random.Random, at: datetime) -> dict[str, Any]:
    if code == "streetlight":
        return {
            "pole_number": f"LD-{rng.randint(1, 120):03d}",
            "light_state": rng.choice(["out", "flicker", "day"]),
        }
    if code == "garbage":
        return {"bin_type": rng.sample(["kitchen", "recyclable", "other"], rng.randint(1, 2))}
    if code == "leak":
        return {"flow": rng.choice([1, 2, 5, 10])}
    if code == "noise":
        return {"noticed_at": (at - timedelta(hours=rng.randint(1, 20))).isoformat()}
    if code == "parking":
        return {"plate": ""}
    if code == "elevator":
        return {"trapped": "no"}
    return {}


def _user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise Conflict(f"the demo has no user {username!r}")
    return user


def _org(session: Session, code: str) -> Organisation:
    org = session.scalar(select(Organisation).where(Organisation.code == code))
    if org is None:
        raise Conflict(f"the demo has no organisation {code!r}")
    return org


def _setup(session: Session, community: Community, system: Actor) -> None:
    admin.load_categories(session=session, actor=system, specs=CATEGORIES)
    teams: dict[str, int] = {}
    for code, (org_code, team, grid) in _ROUTES.items():
        org = _org(session, org_code)
        if team and team not in teams:
            lead = _user(session, org_code.replace("dept-", "") + ".dispatcher")
            member = _user(session, org_code.replace("dept-", "") + ".analyst")
            teams[team] = admin.create_team(
                session=session,
                actor=system,
                org_id=org.id,
                name=team,
                lead_user_id=lead.id,
                member_ids=[member.id],
            ).id
        admin.add_routing_rule(
            session=session,
            actor=system,
            category_code=code,
            area_code=None,
            org_id=org.id,
            team_id=teams.get(team) if team else None,
            assignee_user_id=_user(session, grid).id if grid else None,
        )
    admin.add_routing_rule(
        session=session,
        actor=system,
        category_code=None,
        area_code=None,
        org_id=_org(session, "dept-city").id,
        priority=1000,
    )
    homes = {h.id: h for h in community.households}
    for user in community.users:
        if user.household_id and user.household_id in homes:
            area = session.scalar(select(Area).where(Area.code == homes[user.household_id].building_id))
            if area is not None:
                session.add(Residence(user_id=_user(session, user.username).id, area_id=area.id))
    for org_code, title, text in (
        ("dept-city", "已派单", "已安排养护人员前往处理，请耐心等待。"),
        ("dept-city", "已修复", "已更换损坏部件并恢复正常，感谢您的反映。"),
        ("dept-water", "抢修中", "抢修人员已到场，正在关阀检修。"),
    ):
        admin.create_template(
            session=session, actor=system, org_id=_org(session, org_code).id, title=title, text=text
        )
    apikeys.create_key(
        session=session, actor=system, org_id=_org(session, "operator").id, name="阳光社区 App"
    )


def _at(moment: datetime) -> None:
    clock.set_clock(lambda: moment)


def _history(session: Session, community: Community, rng: random.Random, now: datetime) -> None:
    residents = [_user(session, u.username) for u in community.users if u.household_id]
    buildings = community.buildings
    codes = list(_ROUTES)
    start = now - timedelta(days=42)
    moments = sorted(start + timedelta(minutes=rng.randint(0, 41 * 24 * 60)) for _ in range(140))
    workers: dict[int, Actor] = {}

    def worker_of(org_id: int | None) -> Actor:
        if org_id not in workers:
            staff = session.scalars(
                select(User).where(User.org_id == org_id, User.role.in_(("dispatcher", "admin", "analyst")))
            ).first()
            workers[org_id or 0] = actor_for_user(staff) if staff else system_actor("demo")
        return workers[org_id or 0]

    plans: list[tuple[datetime, Callable[[], Any]]] = []
    for index, at in enumerate(moments):
        _at(at)
        code = codes[index % len(codes)] if rng.random() < 0.7 else rng.choice(codes)
        building = rng.choice(buildings)
        resident = residents[index % len(residents)]
        lat = building.lat + rng.uniform(-0.0002, 0.0002)
        lon = building.lon + rng.uniform(-0.0002, 0.0002)
        phone = index % 9 == 0
        request = service.submit(
            session=session,
            actor=system_actor("call-centre") if phone else actor_for_user(resident),
            category_code=code,
            description=rng.choice(_TEXTS[code]),
            lat=lat,
            lon=lon,
            answers=_answers(code, rng, at),
            reporter=service.Reporter(name="来电居民", phone="1380000" + f"{index:04d}") if phone else None,
            channel="phone" if phone else rng.choice(["web", "app", "wechat"]),
        )
        staff = worker_of(request.org_id)
        fate = rng.random()
        response = timedelta(minutes=rng.randint(20, 300))
        fix = timedelta(hours=rng.choice([2, 5, 20, 30, 70, 120]))

        def later(
            delay: timedelta,
            action: str,
            staff: Actor = staff,
            rid: int = request.id,
            start: datetime = at,
            **values: Any,
        ) -> None:
            step = partial(service.act, session=session, actor=staff, request_id=rid, action=action, **values)
            plans.append((start + delay, step))

        later(response, "accept")
        if fate < 0.08 and index > 5:
            plans.append(
                (
                    at + response + timedelta(minutes=5),
                    partial(_duplicate, session, staff, request.id, request.id - 1),
                )
            )
            continue
        if fate < 0.2:
            later(response + timedelta(hours=1), "wait", reason="parts")
            later(response + timedelta(hours=30), "resume")
        if at + fix + timedelta(hours=31) > now and fate < 0.6:
            continue  # still being worked
        later(fix + timedelta(hours=31 if fate < 0.2 else 0), "resolve", note="已处理完毕")
        if not phone:
            reopen = rng.random() < 0.12
            stars = rng.choice([3, 4, 4, 5, 5, 5]) if not reopen else 2
            verdict = partial(_verdict, session, actor_for_user(resident), request.id, reopen, stars)
            plans.append((at + fix + timedelta(hours=40), verdict))
    moment = start
    while moment < now:  # the server's sweep, every six hours of the history
        plans.append((moment, partial(worker.sweep_once, session, moment)))
        moment += timedelta(hours=6)
    for moment, step in sorted(plans, key=lambda p: p[0]):
        if moment >= now:
            continue
        _at(moment)
        with contextlib.suppress(Conflict):  # an order that moved on (a duplicate, say) skips the step
            step()
    clock.set_clock(None)


def _duplicate(session: Session, worker: Actor, request_id: int, original_id: int) -> None:
    original = session.get(Request, original_id)
    dup = session.get(Request, request_id)
    if (
        original is None
        or dup is None
        or original.category_id != dup.category_id
        or original.state in service.CLOSED_STATES
    ):
        return
    lead = worker
    service.act(session=session, actor=lead, request_id=request_id, action="duplicate", of_id=original_id)


def _verdict(session: Session, resident: Actor, request_id: int, reopen: bool, stars: int) -> None:
    if reopen:
        service.confirm(
            session=session,
            actor=resident,
            request_id=request_id,
            fixed=False,
            reason="问题还在，请再看看",
            satisfaction=stars,
        )
    else:
        service.confirm(
            session=session, actor=resident, request_id=request_id, fixed=True, satisfaction=stars
        )


def _suggestions(session: Session, community: Community, now: datetime) -> None:
    residents = [actor_for_user(_user(session, u.username)) for u in community.users if u.household_id]
    city = _org(session, "dept-city")
    bureau = actor_for_user(_user(session, "bureau.admin"))
    _at(now - timedelta(days=20))
    signal = suggestions.create(
        session=session,
        actor=residents[0],
        domain="transport",
        title="在东门路口加装红绿灯",
        body="早晚高峰车多，老人和孩子过马路很危险，建议加装信号灯和斑马线。",
    )
    suggestions.assign(
        session=session, actor=bureau, suggestion_id=signal.id, org_id=_org(session, "dept-transport").id
    )
    for resident in residents[1:]:
        suggestions.support(session=session, actor=resident, suggestion_id=signal.id)
    benches = suggestions.create(
        session=session,
        actor=residents[1],
        domain="services",
        title="小区花园增加休息座椅",
        body="老年人散步时没有地方坐，建议在花园步道旁增加座椅。",
    )
    suggestions.assign(session=session, actor=bureau, suggestion_id=benches.id, org_id=city.id)
    for resident in residents[2:6]:
        suggestions.support(session=session, actor=resident, suggestion_id=benches.id)
    _at(now - timedelta(days=2))
    suggestions.create(
        session=session,
        actor=residents[2],
        domain="environment",
        title="增设厨余垃圾定时投放点",
        body="现在投放点离3号楼太远，建议在3号楼西侧增设一个。",
    )
    clock.set_clock(None)


def _incident(session: Session, now: datetime) -> None:
    operator = actor_for_user(_user(session, "operator.dispatcher"))
    community_area = session.scalar(select(Area).where(Area.code == "C01"))
    _at(now - timedelta(hours=5))
    incident = incidents.declare(
        session=session,
        actor=operator,
        kind="flood",
        severity=2,
        area_id=community_area.id if community_area else None,
        title="暴雨致地下车库进水",
        description="持续强降雨，地下车库入口积水约 20 厘米。",
        departments=[_org(session, "dept-water").id, _org(session, "dept-city").id],
    )
    _at(now - timedelta(hours=4, minutes=30))
    incidents.publish_notice(
        session=session,
        actor=operator,
        incident_id=incident.id,
        situation="地下车库入口积水，已封闭车库入口，抢修人员正在抽水。",
        instructions="请勿进入地下车库；车辆请暂停地面停车场；如需帮助请拨打社区值班电话。",
    )
    clock.set_clock(None)


def seed_participation(sessions: sessionmaker[Session], community: Community, seed: int = 2026) -> None:
    """Load the demo's participation (deterministic for a seed, relative to today)."""
    rng = rng_for(seed, "participation")
    system = system_actor("demo")
    now = clock.now().replace(second=0, microsecond=0)
    with sessions.begin() as session:
        _setup(session, community, system)
    with sessions.begin() as session:
        _history(session, community, rng, now)
    with sessions.begin() as session:
        _suggestions(session, community, now)
    with sessions.begin() as session:
        _incident(session, now)
    with sessions.begin() as session:
        measures.publish(session=session, actor=system)
