"""The demo community's services marketplace and the operator's finances, made through the
platform's own services with the clock set back: categories and commissions, three providers with
their licences, listings and slots, residents' buildings and wallets, the government elderly-care
voucher, three months of bookings (paid by wallet, voucher or at the service; delivered, reviewed,
cancelled), a group buy, a membership-box subscription, annual memberships, an advertising booking,
a data plan, EV charging fees, operating costs, settlements and the profit model's datasets."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from zhishe.core import clock
from zhishe.core.accounts.models import Organisation, User
from zhishe.core.accounts.service import actor_for_user
from zhishe.core.areas.models import Area
from zhishe.core.auth import Actor, system_actor
from zhishe.core.config import get_settings
from zhishe.demo._util import rng_for
from zhishe.finance import ads, costs, dataplans, energyfees, measures, memberships, settlement
from zhishe.opendata import apptokens
from zhishe.participation import admin as participation_admin
from zhishe.services import (
    boxes,
    disputes,
    engine,
    groupbuy,
    licences,
    listings,
    providers,
    reviews,
    transactions,
    vouchers,
    wallet,
)
from zhishe.services.models import Listing, ResidentProfile, Slot, Transaction

__all__ = ["seed_services"]

#: A minimal real PDF: what a scanned licence looks like to the upload check.
_PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"

_CATEGORIES: tuple[tuple[str, str, str, int, list[str]], ...] = (
    ("housekeeping", "家政保洁", "Housekeeping", 1500, ["housekeeping"]),
    ("repair", "家电维修", "Repairs", 1200, []),
    ("elderly_visit", "上门助老", "Elderly home visits", 800, ["medical"]),
    ("fresh_food", "生鲜直供", "Fresh food from farms", 1000, ["food"]),
    ("group_buy", "社区团购", "Group buying", 800, ["food"]),
    ("clinic", "门诊预约", "Clinic appointments", 0, ["medical"]),
)


def _user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    assert user is not None, username
    return user


def _org(session: Session, code: str) -> Organisation:
    org = session.scalar(select(Organisation).where(Organisation.code == code))
    assert org is not None, code
    return org


def _as(session: Session, username: str) -> Actor:
    return actor_for_user(_user(session, username))


def _provider(
    session: Session, username: str, name: tuple[str, str], offset: tuple[float, float], cats: list[str]
) -> int:
    centre = _centre(session)
    provider = providers.create(
        session,
        actor=_as(session, username),
        data={
            "name_zh": name[0],
            "name_en": name[1],
            "phone": "010-6500" + str(abs(hash(name[1])) % 10000).zfill(4),
            "lat": round(centre[0] + offset[0], 6),
            "lon": round(centre[1] + offset[1], 6),
            "radius_m": 3000,
            "categories": cats,
        },
    )
    return provider.id


def _centre(session: Session) -> tuple[float, float]:
    area = session.scalar(select(Area).where(Area.level == "community", Area.lat.is_not(None)))
    return (area.lat, area.lon) if area is not None and area.lat and area.lon else (39.9, 116.41)


def _listing(session: Session, username: str, data: dict[str, Any]) -> int:
    actor = _as(session, username)
    listing = listings.create(session, actor=actor, data=data)
    listings.publish(session, actor=actor, listing_id=listing.id)
    return listing.id


def seed_services(sessions: sessionmaker[Session], seed: int) -> None:
    """Create the marketplace and three months of its activity, then settle and publish the figures."""
    rng = rng_for(seed, "services")
    tz = get_settings().tz
    today = clock.now().astimezone(tz).date()
    start = today - timedelta(days=91)
    with clock.frozen(datetime.combine(start, time(9), tzinfo=tz)), sessions.begin() as session:
        operator = _as(session, "operator.admin")
        # complaints about a service become work orders of the operator (see services.disputes)
        participation_admin.put_category(
            session=session,
            actor=system_actor("demo"),
            spec={
                "service_code": "services_complaint",
                "service_name": "社区服务投诉",
                "name_en": "Community service complaint",
                "description": "对社区服务平台上的家政、维修、助老、生鲜等服务的投诉",
                "group": "社区服务",
                "keywords": "投诉,complaint",
                "sla_amount": 3,
                "sla_unit": "days",
                "attributes": [],
            },
        )
        participation_admin.add_routing_rule(
            session=session,
            actor=system_actor("demo"),
            category_code="services_complaint",
            area_code=None,
            org_id=_org(session, "operator").id,
        )
        for code, zh, en, bps, kinds in _CATEGORIES:
            providers.create_category(
                session,
                actor=operator,
                data={
                    "code": code,
                    "name_zh": zh,
                    "name_en": en,
                    "commission_bps": bps,
                    "licence_kinds": kinds,
                },
            )
        ids = {
            "home": _provider(
                session,
                "provider-home.admin",
                ("邻里家政维修服务部", "Neighbourly Housekeeping and Repairs"),
                (0.006, -0.004),
                ["housekeeping", "repair"],
            ),
            "care": _provider(
                session,
                "provider-care.admin",
                ("安康居家养老服务中心", "Ankang Home Elderly Care"),
                (-0.005, 0.006),
                ["elderly_visit"],
            ),
            "fresh": _provider(
                session,
                "provider-fresh.admin",
                ("鲜邻生鲜超市", "FreshNeighbour Grocery"),
                (0.002, 0.009),
                ["fresh_food", "group_buy"],
            ),
            "clinic": _provider(
                session,
                "clinic-east.admin",
                ("阳光社区卫生服务中心", "Sunshine Community Health Service Centre"),
                (0.004, 0.026),
                ["clinic"],
            ),
        }
        year = start + timedelta(days=365 + 180)
        for key, user, kind in (
            ("home", "provider-home.admin", "housekeeping"),
            ("care", "provider-care.admin", "medical"),
            ("fresh", "provider-fresh.admin", "food"),
            ("clinic", "clinic-east.admin", "medical"),
        ):
            licences.upload(
                session,
                actor=_as(session, user),
                provider_id=ids[key],
                kind=kind,
                number=f"{kind.upper()}-2026-{ids[key]:04d}",
                expires_on=year,
                data=_PDF,
                filename=f"{kind}.pdf",
            )
        # the care centre's medical licence runs out in three weeks: the reminder is due
        licences.upload(
            session,
            actor=_as(session, "provider-care.admin"),
            provider_id=ids["care"],
            kind="first_aid",
            number="FA-2026-7",
            expires_on=today + timedelta(days=21),
            data=_PDF,
            filename="first_aid.pdf",
        )
        policy = {"free_until_hours": 24, "late_fee_bps": 5000, "no_show_fee_bps": 10000}
        cleaning = _listing(
            session,
            "provider-home.admin",
            {
                "title_zh": "日常保洁（2小时起）",
                "title_en": "Home cleaning (2 hours minimum)",
                "description_zh": "擦窗、厨卫清洁、地面清洁，自带工具。",
                "description_en": "Windows, kitchen, bathroom and floors; tools brought along.",
                "category": "housekeeping",
                "process": "instant_booking",
                "availability": "slots",
                "price_rules": {
                    "unit": "hour",
                    "unit_fen": 4500,
                    "min_units": 2,
                    "surcharges": [
                        {
                            "code": "weekend",
                            "name_zh": "周末",
                            "name_en": "Weekend",
                            "kind": "fixed",
                            "amount": 2000,
                            "when": "weekend",
                        },
                        {
                            "code": "deep",
                            "name_zh": "深度清洁",
                            "name_en": "Deep clean",
                            "kind": "percent",
                            "amount": 3000,
                            "when": "option",
                        },
                    ],
                },
                "cancellation_policy": policy,
            },
        )
        repair = _listing(
            session,
            "provider-home.admin",
            {
                "title_zh": "家电上门维修",
                "title_en": "Appliance repair at home",
                "description_zh": "洗衣机、冰箱、空调、热水器，上门检测后报价。",
                "description_en": "Washing machines, fridges, air conditioners and water heaters: a visit, then a quote.",
                "category": "repair",
                "process": "quote_repair",
                "availability": "none",
                "price_rules": {"unit": "visit", "unit_fen": 3000, "min_units": 1, "surcharges": []},
                "cancellation_policy": policy,
            },
        )
        visit = _listing(
            session,
            "provider-care.admin",
            {
                "title_zh": "助老上门探访（测血压、陪聊）",
                "title_en": "Elderly home visit (blood pressure, company)",
                "description_zh": "护理员上门一小时：测血压血糖、整理药品、陪伴聊天。",
                "description_en": "A carer visits for an hour: blood pressure and sugar, medicines sorted, company.",
                "category": "elderly_visit",
                "process": "instant_booking",
                "availability": "slots",
                "price_rules": {"unit": "visit", "unit_fen": 8000, "min_units": 1, "surcharges": []},
                "cancellation_policy": policy,
            },
        )
        veg = _listing(
            session,
            "provider-fresh.admin",
            {
                "title_zh": "有机蔬菜拼团（5人成团）",
                "title_en": "Organic vegetables group buy (5 to form)",
                "description_zh": "平谷合作农场直供，每份约3公斤时令蔬菜。",
                "description_en": "Straight from a Pinggu farm: about 3 kg of seasonal vegetables a share.",
                "category": "group_buy",
                "process": "group_buy",
                "availability": "stock",
                "price_rules": {"unit": "box", "unit_fen": 3900, "min_units": 1, "surcharges": []},
                "cancellation_policy": {},
                "settings": {"group_min": 5, "group_hours": 48},
            },
        )
        box = _listing(
            session,
            "provider-fresh.admin",
            {
                "title_zh": "农场鲜蔬会员箱（每周一箱）",
                "title_en": "Farm vegetable box (weekly)",
                "description_zh": "预付一个月、半年或一年，每周配送一箱。",
                "description_en": "Prepay a month, half a year or a year; a box every week.",
                "category": "fresh_food",
                "process": "membership_box",
                "availability": "none",
                "price_rules": {"unit": "box", "unit_fen": 6800, "min_units": 1, "surcharges": []},
                "cancellation_policy": {},
                "settings": {
                    "plans": {
                        "month": {"periods": 4, "every_days": 7},
                        "half_year": {"periods": 26, "every_days": 7, "discount_bps": 500},
                        "year": {"periods": 52, "every_days": 7, "discount_bps": 1000},
                    }
                },
            },
        )
        clinic = _listing(
            session,
            "clinic-east.admin",
            {
                "title_zh": "全科门诊预约（挂号）",
                "title_en": "General practice appointment",
                "description_zh": "社区卫生服务中心全科门诊，按时段预约，到院缴纳挂号费。",
                "description_en": "The health centre's general practice by time slot; the fee is paid at the desk.",
                "category": "clinic",
                "process": "instant_booking",
                "availability": "slots",
                "price_rules": {"unit": "visit", "unit_fen": 1000, "min_units": 1, "surcharges": []},
                "cancellation_policy": {"free_until_hours": 2, "late_fee_bps": 0, "no_show_fee_bps": 0},
            },
        )
        for listing_id, username, hours in (
            (clinic, "clinic-east.admin", (8, 9)),
            (cleaning, "provider-home.admin", (9, 11)),
            (cleaning, "provider-home.admin", (14, 16)),
            (visit, "provider-care.admin", (10, 11)),
        ):
            listings.add_weekly_slots(
                session,
                actor=_as(session, username),
                listing_id=listing_id,
                weekdays=[1, 2, 3, 4, 5, 6],
                start_time=time(hours[0]),
                end_time=time(hours[1]),
                from_date=start,
                until_date=today + timedelta(days=14),
                capacity=2,
            )
        listings.add_batch(
            session,
            actor=_as(session, "provider-fresh.admin"),
            listing_id=veg,
            quantity=400,
            label="十一月第1批",
        )

        residents = session.scalars(
            select(User).where(User.username.like("resident.%")).order_by(User.id)
        ).all()
        centre = _centre(session)
        buildings = session.scalars(
            select(Area).where(Area.level == "building", Area.lat.is_not(None)).order_by(Area.code)
        ).all()
        for index, resident in enumerate(residents):
            area = buildings[index % len(buildings)] if buildings else None
            session.add(
                ResidentProfile(
                    user_id=resident.id,
                    area_id=area.id if area else None,
                    lat=area.lat if area else centre[0],
                    lon=area.lon if area else centre[1],
                    birth_year=1948 + index * 3 if index < 4 else 1975 + index,
                    tags=["living_alone"] if index == 0 else [],
                )
            )
        session.flush()
        for resident in residents:
            wallet.top_up(
                session=session, actor=operator, user_id=resident.id, amount_fen=500_000, via="bank"
            )
        programme = vouchers.create_programme(
            session=session,
            actor=operator,
            data={
                "code": "ElderlyCare",
                "name_zh": "居家养老服务补贴（每月200元）",
                "name_en": "Home elderly-care subsidy (¥200 a month)",
                "kind": "government_subsidy",
                "amount_fen": 20000,
                "period": "monthly",
                "eligibility": {"min_age": 60},
                "categories": ["elderly_visit", "housekeeping"],
                "valid_from": start.isoformat(),
                "valid_until": (today + timedelta(days=365)).isoformat(),
            },
        )
        vouchers.fund_programme(
            session=session,
            actor=operator,
            programme_id=programme.id,
            amount_fen=2_000_000,
            memo="区民政局拨付",
        )
        plan = memberships.create_plan(
            session=session,
            actor=operator,
            code="annual",
            name_zh="阳光会员（年卡）",
            name_en="Sunshine membership (annual)",
            annual_fee_fen=9900,
            discount_bps=500,
            priority_hours=24,
        )
        slot = ads.create_slot(
            session=session,
            actor=operator,
            code="home-banner",
            placement="home",
            name_zh="居民首页横幅",
            name_en="Resident home banner",
            day_fen=1500,
            per_thousand_impressions_fen=2000,
            per_click_fen=30,
        )
        data_plan = dataplans.create_plan(
            session=session,
            actor=operator,
            code="pro",
            name_zh="开放数据专业版",
            name_en="Open data Pro",
            monthly_fee_fen=50000,
            per_minute=600,
            per_day=200_000,
        )
        resident_ids = [u.id for u in residents]

    # three months of activity, one day at a time
    day = start
    while day < today:
        moment = datetime.combine(day, time(8, 30), tzinfo=tz)
        with clock.frozen(moment), sessions.begin() as session:
            vouchers.sweep(session, moment)
            if day.day == 1 or day == start:
                month = day.strftime("%Y-%m")
                operator = _as(session, "operator.admin")
                for stream, label, amount in (
                    ("marketplace", "平台运维与客服", 60_000),
                    ("advertising", "广告位运营", 8_000),
                    ("data", "数据服务器", 12_000),
                ):
                    costs.create(
                        session=session,
                        actor=operator,
                        month=month,
                        stream=stream,
                        label=label,
                        amount_fen=amount + rng.randint(-5_000, 5_000),
                    )
            _day_of_bookings(session, rng, day, resident_ids, (cleaning, visit, clinic), tz)
        with clock.frozen(datetime.combine(day, time(21), tzinfo=tz)), sessions() as session:
            engine.run_timers(session)
            session.commit()
        day += timedelta(days=1)

    with sessions.begin() as session:
        operator = _as(session, "operator.admin")
        for user_id in resident_ids[:3]:
            memberships.buy(session=session, actor=operator, plan_id=plan.id, user_id=user_id, method="desk")
        merchant = _org(session, "provider-fresh")
        ads.book(
            session=session,
            actor=operator,
            slot_id=slot.id,
            org_id=merchant.id,
            starts_on=today,
            ends_on=today + timedelta(days=20),
            headline="鲜邻生鲜：周末蔬菜八折",
            body="凭会员码到店自提再减5元",
            link="https://example.com/freshneighbour",
        )
        for _ in range(240):
            booking = ads.serve(session, "home", clock.now())
            if booking is not None and rng.random() < 0.05:
                ads.click(session, booking.id)
        ads.bill(session, clock.now(), actor=operator)
        app_token, _secret = apptokens.create(
            session=session, actor=_as(session, "developer.admin"), name="社区服务地图（生产）"
        )
        dataplans.subscribe(
            session=session,
            actor=operator,
            org_id=_org(session, "developer").id,
            plan_id=data_plan.id,
            app_token_ids=[app_token.id],
        )
        for index, user_id in enumerate(resident_ids[:5]):
            ended = clock.now() - timedelta(days=index + 1, hours=3)
            energyfees.charge_ev(
                session=session,
                actor=operator,
                source_ref=f"demo-ev-{index + 1}",
                user_id=user_id,
                kwh_milli=18_000 + 4_000 * index,
                started_at=ended - timedelta(hours=4),
                ended_at=ended,
            )
        residents_now = [actor_for_user(session.get(User, user_id)) for user_id in resident_ids[:4]]  # type: ignore[arg-type]
        boxes.subscribe(session, actor=residents_now[1], listing_id=box, plan="month", method="wallet")
        for member in residents_now[:3]:
            groupbuy.join(session, actor=member, listing_id=veg, method="wallet")
        transactions.book(session, actor=residents_now[2], listing_id=repair, note="洗衣机脱水时异响")
        complained = session.scalar(
            select(Transaction)
            .where(Transaction.listing_id == cleaning, Transaction.state.in_(("delivered", "reviewed")))
            .order_by(Transaction.id.desc())
            .limit(1)
        )
        if complained is not None:
            disputes.open_dispute(
                session,
                actor=actor_for_user(session.get(User, complained.resident_user_id)),  # type: ignore[arg-type]
                transaction_id=complained.id,
                reason="保洁不彻底，厨房油污没有清理，希望退一部分费用",
                claim_fen=3000,
            )
        energyfees.pay_incentive(
            session=session, actor=operator, source_ref="demo-dr-1", user_id=resident_ids[0], amount_fen=1_200
        )
        last_month = today.replace(day=1) - timedelta(days=1)
        for month_end in (last_month.replace(day=1) - timedelta(days=1), last_month):
            settlement.run(session, actor=operator, month=month_end.strftime("%Y-%m"))
        measures.publish(session=session, actor=system_actor("demo"))


def _day_of_bookings(
    session: Session, rng: random.Random, day: date, residents: list[int], bookable: tuple[int, ...], tz: Any
) -> None:
    """Book some of the day's free slots, pay, deliver, review and now and then cancel."""
    for listing_id in bookable:
        listing = session.get(Listing, listing_id)
        assert listing is not None
        slots = session.scalars(
            select(Slot).where(
                Slot.listing_id == listing_id,
                Slot.starts_at >= clock.now(),
                Slot.starts_at < clock.now() + timedelta(days=1),
                Slot.booked < Slot.capacity,
            )
        ).all()
        for slot in slots:
            if rng.random() > 0.55:
                continue
            user_id = rng.choice(residents)
            resident = actor_for_user(session.get(User, user_id))  # type: ignore[arg-type]
            txn = transactions.book(
                session,
                actor=resident,
                listing_id=listing_id,
                slot_id=slot.id,
                quantity=2 if listing.price_rules.get("unit") == "hour" else 1,
            )
            usable = vouchers.usable(session, user_id=user_id, txn=txn)
            method = "voucher" if usable else rng.choice(["wallet", "wallet", "pay_at_service"])
            transactions.pay(
                session,
                actor=resident,
                transaction_id=txn.id,
                method=method,
                voucher_id=usable[0].id if usable else None,
            )
            provider = _provider_actor(session, listing)
            if rng.random() < 0.08:
                transactions.act(
                    session, actor=resident, transaction_id=txn.id, transition="cancel", params={}
                )
                continue
            transactions.act(session, actor=provider, transaction_id=txn.id, transition="deliver", params={})
            if rng.random() < 0.7:
                reviews.submit(
                    session,
                    actor=resident,
                    transaction_id=txn.id,
                    rating=rng.choice([5, 5, 5, 4, 4, 3]),
                    text=rng.choice(["很满意，准时专业", "干净利落", "阿姨很细心", "服务不错", ""]),
                )
            if rng.random() < 0.6:
                reviews.submit(session, actor=provider, transaction_id=txn.id, rating=5, text="客户很友善")


def _provider_actor(session: Session, listing: Listing) -> Actor:
    from zhishe.services.models import Provider

    provider = session.get(Provider, listing.provider_id)
    assert provider is not None
    org = session.get(Organisation, provider.org_id)
    assert org is not None
    return _as(session, f"{org.code}.admin")
