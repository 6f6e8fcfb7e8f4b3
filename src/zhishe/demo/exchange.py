"""Exchange activity of the demo community, made through the exchange's own services: requests in
every state, grants with reads on record, and a data issue waiting for its owner."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from zhishe.catalog import reads
from zhishe.core import clock
from zhishe.core.accounts.models import User
from zhishe.core.accounts.service import actor_for_user
from zhishe.core.auth import Actor
from zhishe.core.config import get_settings
from zhishe.exchange import issues, service
from zhishe.exchange.schemas import NarrowIn, RequestIn

__all__ = ["seed_exchange"]


def _actor(session: Session, username: str) -> Actor:
    user = session.scalar(select(User).where(User.username == username))
    assert user is not None, username
    return actor_for_user(user)


def seed_exchange(sessions: sessionmaker[Session]) -> None:
    """File, answer and use a few sharing requests between the demo departments."""
    from zhishe import hooks

    hooks.install()
    today = clock.now().astimezone(get_settings().tz).date()
    with sessions.begin() as session:
        env = _actor(session, "env.steward")
        water = _actor(session, "water.steward")
        # 1. environment asks water for night flows, to find leaks near green areas: approved
        leak = service.create_request(
            session=session,
            actor=env,
            data=RequestIn(
                dataset="water-supply-dma-daily",
                purpose="排查绿化灌溉与管网漏损的关系 / relate irrigation to network leakage",
                legal_basis="《政务数据共享管理办法》第十条；区水环境治理工作方案",
                columns=["dma_id", "supply_date", "min_night_flow_m3h", "inflow_m3"],
                starts_on=today,
                expires_on=today + timedelta(days=180),
                mode="subscription",
                submit=True,
            ),
        )
        service.approve(session=session, actor=water, request_id=leak.id)
    with sessions.begin() as session:
        analyst = _actor(session, "env.analyst")
        reads.read_rows(session=session, actor=analyst, dataset="water-supply-dma-daily", limit=100)
        reads.read_rows(
            session=session,
            actor=analyst,
            dataset="water-supply-dma-daily",
            where={"column": "dma_id", "op": "=", "value": "DMA-S"},
            limit=100,
        )
    with sessions.begin() as session:
        city = _actor(session, "city.steward")
        police = _actor(session, "police.steward")
        # 2. city management asks for the household register; police gives less, with a reason
        register = service.create_request(
            session=session,
            actor=city,
            data=RequestIn(
                dataset="household-register",
                purpose="核对独居老人户数，安排冬季巡访 / count elderly households for winter visits",
                legal_basis="《北京市居家养老服务条例》第二十条",
                columns=["household_id", "building_id", "household_size", "has_elderly", "head_phone"],
                starts_on=today,
                expires_on=today + timedelta(days=120),
                mode="query",
                submit=True,
            ),
        )
        service.narrow(
            session=session,
            actor=police,
            request_id=register.id,
            data=NarrowIn(
                reason="联系电话属个人信息，巡访通过居委会联系，不予提供 / phones stay with the committee",
                columns=["household_id", "building_id", "household_size", "has_elderly"],
                expires_on=today + timedelta(days=90),
            ),
        )
        # 3. land asks for water data it has no duty for: rejected
        land = _actor(session, "land.steward")
        refused = service.create_request(
            session=session,
            actor=land,
            data=RequestIn(
                dataset="water-supply-dma-daily",
                purpose="了解管网分布 / learn the network layout",
                legal_basis="部门履职需要",
                columns=["dma_id", "avg_pressure_kpa"],
                starts_on=today,
                expires_on=today + timedelta(days=30),
                mode="export",
                submit=True,
            ),
        )
        service.reject(
            session=session,
            actor=water,
            request_id=refused.id,
            reason="管网运行数据仅向承担规划、应急和监管职责的部门共享 / not a duty of the requester",
        )
        # 4. transport asks the clinic for visit counts: waiting for an answer
        service.create_request(
            session=session,
            actor=_actor(session, "transport.steward"),
            data=RequestIn(
                dataset="clinic-visits-daily",
                purpose="评估公交线路调整对老年人就医的影响 / bus routes and elderly patients",
                legal_basis="区交通综合治理工作方案",
                columns=["visit_date", "clinic_code", "visits_65_plus"],
                starts_on=today,
                expires_on=today + timedelta(days=60),
                mode="query",
                submit=True,
            ),
        )
    with sessions.begin() as session:
        # 5. a reader reports a doubtful value
        issues.file_issue(
            session=session,
            actor=_actor(session, "env.analyst"),
            dataset="water-supply-dma-daily",
            kind="definition",
            problem="inflow_m3 是否包含消防用水？与水费账单口径不一致。 / Does inflow include fire-fighting use?",
        )
