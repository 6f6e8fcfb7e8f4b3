"""Property test: no sequence of actions on a request reaches an invalid state."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zhishe.core.accounts.service import actor_for_user
from zhishe.core.errors import ZhisheError
from zhishe.exchange import service
from zhishe.exchange.schemas import NarrowIn, RequestIn

ACTIONS = ["submit", "approve", "narrow", "reject", "revoke", "tick", "tick_far", "bureau_approve"]
GRANTED = {"approved", "narrowed", "active", "expired", "revoked"}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=st.lists(st.sampled_from(ACTIONS), max_size=8))
def test_no_sequence_of_actions_reaches_an_invalid_state(xw, actions):
    session = xw.db
    start = xw.now
    requester = actor_for_user(xw.users["water.steward"])
    owner = actor_for_user(xw.users["env.steward"])
    bureau = actor_for_user(xw.users["bureau.admin"])
    request = service.create_request(
        session=session,
        actor=requester,
        data=RequestIn(
            dataset="air",
            purpose="p",
            legal_basis="b",
            columns=["station", "day"],
            starts_on=start.date(),
            expires_on=start.date() + timedelta(days=20),
            mode="query",
        ),
    )
    session.commit()
    history = [request.state]
    for action in actions:
        try:
            match action:
                case "submit":
                    service.submit(session=session, actor=requester, request_id=request.id)
                case "approve":
                    service.approve(session=session, actor=owner, request_id=request.id)
                case "bureau_approve":
                    service.approve(session=session, actor=bureau, request_id=request.id)
                case "narrow":
                    service.narrow(
                        session=session,
                        actor=owner,
                        request_id=request.id,
                        data=NarrowIn(reason="r", columns=["station"]),
                    )
                case "reject":
                    service.reject(session=session, actor=owner, request_id=request.id, reason="r")
                case "revoke":
                    service.revoke(session=session, actor=owner, request_id=request.id, reason="r")
                case "tick":
                    xw.at(xw.now + timedelta(days=3))
                    service.refresh(session)
                case "tick_far":
                    xw.at(xw.now + timedelta(days=40))
                    service.refresh(session)
            session.commit()
        except ZhisheError:
            session.rollback()
        session.refresh(request)
        history.append(request.state)
        grant = service.grant_of(session, request.id)
        # a grant exists exactly when the request was approved (narrowed) at some point
        assert (grant is not None) == (request.state in GRANTED), history
        if grant is not None:
            live = service.is_live(grant)
            assert not live or request.state in {"approved", "narrowed", "active"}, history
            if request.state == "revoked":
                assert grant.revoked_at is not None
            assert set(grant.columns) <= {"station", "day"}
        if request.state in {"rejected", "approved", "narrowed"}:
            assert request.answered_at is not None
        assert request.state != "draft" or request.submitted_at is None
    xw.at(start)
