"""The process engine: loading and validating process files, and running transitions and timers."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from services.sworld import MONDAY, ServicesWorld
from zhishe.cli import app
from zhishe.core import clock
from zhishe.core.audit.models import AuditEvent
from zhishe.core.errors import Conflict, Forbidden, Invalid
from zhishe.services import engine
from zhishe.services.models import Slot, Transaction, TransactionEvent

GOOD = """
name = "tiny"
initial = "open"
finals = ["done", "lapsed"]

[states]
open = { fhir = "pending", zh = "开", en = "open" }
done = "fulfilled"
lapsed = "cancelled"

[[transitions]]
name = "finish"
from = ["open"]
to = "done"
actor = "resident"

[[transitions]]
name = "lapse"
from = ["open"]
to = "lapsed"
actor = "timer"
after = "PT15M"
"""


def _bad(text: str) -> str:
    with pytest.raises(engine.ProcessError) as caught:
        engine.parse_process(text, source="bad.toml")
    message = str(caught.value)
    assert message.startswith("bad.toml: ")
    return message


def test_a_valid_process_parses_with_its_states_timers_and_fhir_map() -> None:
    process = engine.parse_process(GOOD, source="tiny.toml")
    assert process.initial == "open"
    assert process.finals == {"done", "lapsed"}
    assert process.fhir_status("open") == "pending"
    assert process.state_label("open", "en") == "open"
    lapse = next(t for t in process.transitions if t.name == "lapse")
    assert lapse.is_timer and lapse.delay is not None
    assert lapse.delay.resolve({}) == timedelta(minutes=15)


def test_the_shipped_processes_all_load_and_validate() -> None:
    processes = engine.load_processes(reload=True)
    assert {"instant_booking", "request_to_book", "quote_repair"} <= set(processes)
    booking = processes["instant_booking"]
    assert booking.initial == "pending_payment"
    assert {t.name for t in booking.outgoing("pending_payment")} >= {"pay", "expire", "cancel"}


def test_an_undeclared_target_state_is_named() -> None:
    message = _bad(GOOD.replace('to = "done"', 'to = "finished"'))
    assert "transition 'finish'" in message and "'finished' is not declared" in message


def test_a_missing_initial_state_is_refused() -> None:
    assert "initial state 'nowhere'" in _bad(GOOD.replace('initial = "open"', 'initial = "nowhere"'))


def test_an_unreachable_state_is_named() -> None:
    text = GOOD.replace('lapsed = "cancelled"', 'lapsed = "cancelled"\nlimbo = "cancelled"').replace(
        'finals = ["done", "lapsed"]', 'finals = ["done", "lapsed", "limbo"]'
    )
    assert "state 'limbo' cannot be reached" in _bad(text)


def test_a_non_final_state_without_a_way_out_is_a_dead_end() -> None:
    text = GOOD.replace('finals = ["done", "lapsed"]', 'finals = ["done"]')
    assert "state 'lapsed' is a dead end" in _bad(text)


def test_a_final_state_with_a_transition_out_is_refused() -> None:
    text = GOOD.replace('from = ["open"]\nto = "done"', 'from = ["open", "lapsed"]\nto = "done"')
    assert "final state 'lapsed' has outgoing transitions ['finish']" in _bad(text)


def test_an_unregistered_action_is_named() -> None:
    text = GOOD.replace('actor = "resident"', 'actor = "resident"\nactions = ["teleport"]')
    assert "transition 'finish': action 'teleport' is not registered" in _bad(text)


def test_an_unknown_actor_is_refused() -> None:
    assert "actor 'landlord' is not one of" in _bad(GOOD.replace('actor = "resident"', 'actor = "landlord"'))


def test_a_timer_without_a_duration_is_refused() -> None:
    assert "timer transition needs 'after'" in _bad(GOOD.replace('after = "PT15M"\n', ""))


def test_a_timer_in_months_is_refused_with_a_clear_reason() -> None:
    message = _bad(GOOD.replace('after = "PT15M"', 'after = "P1M"'))
    assert "transition 'lapse'" in message and "months and years have no fixed length" in message


def test_a_garbled_duration_is_refused() -> None:
    assert "not an ISO 8601 duration" in _bad(GOOD.replace('after = "PT15M"', 'after = "15 minutes"'))


def test_a_state_without_a_fhir_status_is_named() -> None:
    message = _bad(GOOD.replace('done = "fulfilled"', 'done = "finished"'))
    assert "state 'done'" in message and "FHIR status 'finished'" in message


def test_a_setting_timer_must_name_its_unit_and_default() -> None:
    assert "setting:<name>" in _bad(GOOD.replace('after = "PT15M"', 'after = "setting:accept:PT24H"'))
    process = engine.parse_process(GOOD.replace('after = "PT15M"', 'after = "setting:accept_hours:PT24H"'))
    delay = next(t for t in process.transitions if t.name == "lapse").delay
    assert delay is not None
    assert delay.resolve({}) == timedelta(hours=24)
    assert delay.resolve({"accept_hours": 2}) == timedelta(hours=2)
    assert delay.resolve({"accept_hours": "PT30M"}) == timedelta(minutes=30)
    assert delay.resolve({"accept_hours": -3}) == timedelta(hours=24)


def test_bad_toml_and_unknown_keys_are_reported() -> None:
    assert "not valid TOML" in _bad("name = ")
    assert "unknown keys ['colour']" in _bad(
        GOOD.replace('name = "finish"', 'name = "finish"\ncolour = "red"')
    )


def test_a_duplicate_transition_for_the_same_actor_is_refused() -> None:
    twice = GOOD + '\n[[transitions]]\nname = "finish"\nfrom = ["open"]\nto = "lapsed"\nactor = "resident"\n'
    assert "declared twice from state 'open' for resident" in _bad(twice)


def test_a_directory_with_a_bad_file_fails_loading_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "b.toml").write_text(GOOD.replace('initial = "open"', 'initial = "x"'), encoding="utf-8")
    with pytest.raises(engine.ProcessError, match=r"^b\.toml: "):
        engine.load_processes(tmp_path)


def test_durations_parse_weeks_days_hours_minutes() -> None:
    assert engine.parse_duration("P7D") == timedelta(days=7)
    assert engine.parse_duration("PT24H") == timedelta(hours=24)
    assert engine.parse_duration("P1DT2H30M") == timedelta(days=1, hours=2, minutes=30)
    assert engine.parse_duration("P2W") == timedelta(days=14)
    for bad in ("P1Y", "P", "PT", "PT0M", "-PT5M", "P1000D"):
        with pytest.raises(ValueError):
            engine.parse_duration(bad)


# --- running ---------------------------------------------------------------------------------------


def _booking(sw: ServicesWorld, who: str = "res1", *, capacity: int = 1) -> tuple[Transaction, Slot]:
    listing = sw.listing(sw.providers["clean"], "housekeeping")
    slot = sw.slot(listing, MONDAY + timedelta(days=3), capacity=capacity)
    txn = engine.start(
        sw.session, listing=listing, actor=sw.actor(who), params={"slot_id": slot.id, "quantity": 2}
    )
    sw.session.commit()
    return txn, slot


def test_start_creates_the_transaction_in_its_initial_state_with_its_timer(sw: ServicesWorld) -> None:
    txn, slot = _booking(sw)
    assert txn.state == "pending_payment"
    assert txn.timer_transition == "expire"
    assert txn.timer_at == MONDAY + timedelta(minutes=15)
    assert txn.price_fen == 10000  # two hours at ¥50, computed on the server
    sw.session.refresh(slot)
    assert slot.booked == 1
    events = list(
        sw.session.scalars(select(TransactionEvent).where(TransactionEvent.transaction_id == txn.id))
    )
    assert [(e.transition, e.from_state, e.to_state) for e in events] == [("start", "", "pending_payment")]
    assert sw.session.scalar(select(AuditEvent.id).where(AuditEvent.action == "services.order.start"))


def test_a_transition_not_allowed_from_the_state_is_a_conflict_listing_the_allowed(sw: ServicesWorld) -> None:
    txn, _ = _booking(sw)
    with pytest.raises(Conflict) as caught:
        engine.fire(
            sw.session,
            transaction_id=txn.id,
            transition="deliver",
            actor=sw.actor("clean-admin"),
            by="provider",
        )
    assert "cannot deliver an order that is pending_payment" in str(caught.value)
    assert set(caught.value.detail["allowed"]) == {"pay", "expire", "cancel"}


def test_the_wrong_actor_kind_and_the_wrong_person_are_forbidden(sw: ServicesWorld) -> None:
    txn, _ = _booking(sw)
    with pytest.raises(Forbidden):
        engine.fire(
            sw.session, transaction_id=txn.id, transition="cancel", actor=sw.actor("res2"), by="resident"
        )
    with pytest.raises(Forbidden):
        engine.fire(
            sw.session, transaction_id=txn.id, transition="cancel", actor=sw.actor("fix-admin"), by="provider"
        )
    with pytest.raises(Forbidden):
        engine.fire(
            sw.session, transaction_id=txn.id, transition="expire", actor=sw.actor("res1"), by="timer"
        )
    with pytest.raises(Invalid):
        engine.fire(
            sw.session, transaction_id=txn.id, transition="cancel", actor=sw.actor("res1"), by="landlord"
        )
    sw.session.rollback()
    assert sw.session.get(Transaction, txn.id).state == "pending_payment"  # type: ignore[union-attr]


def test_an_action_error_aborts_the_whole_transition(sw: ServicesWorld) -> None:
    calls: list[str] = []

    @engine.action("test_explode")
    def _explode(ctx: engine.Context) -> None:
        ctx.txn.note = "half written"
        calls.append(ctx.transition)
        raise Conflict("boom")

    process = engine.parse_process(
        GOOD.replace('actor = "resident"', 'actor = "resident"\nactions = ["test_explode"]')
    )
    engine.load_processes()["tiny"] = process
    try:
        txn, _ = _booking(sw)
        txn.process = "tiny"
        txn.state = "open"
        sw.session.commit()
        with pytest.raises(Conflict, match="boom"):
            engine.fire(
                sw.session, transaction_id=txn.id, transition="finish", actor=sw.actor("res1"), by="resident"
            )
        sw.session.rollback()
        fresh = sw.session.get(Transaction, txn.id)
        assert fresh is not None and fresh.state == "open" and fresh.note == ""
        assert calls == ["finish"]
    finally:
        engine.load_processes().pop("tiny", None)


def test_payment_expiry_after_15_minutes_frees_the_slot(sw: ServicesWorld) -> None:
    txn, slot = _booking(sw)
    assert engine.run_timers(sw.session, MONDAY + timedelta(minutes=14)) == 0
    clock.set_clock(lambda: MONDAY + timedelta(minutes=15))
    assert engine.sweep(sw.session, MONDAY + timedelta(minutes=15)) == {"timers_fired": 1}
    sw.session.refresh(txn)
    sw.session.refresh(slot)
    assert txn.state == "expired" and txn.timer_at is None
    assert slot.booked == 0
    assert engine.run_timers(sw.session, MONDAY + timedelta(hours=1)) == 0  # idempotent


def test_one_failing_timer_does_not_stop_the_others(sw: ServicesWorld) -> None:
    first, _ = _booking(sw, "res1")
    second, _ = _booking(sw, "res2")
    first.timer_transition = "nonexistent"
    sw.session.commit()
    assert engine.run_timers(sw.session, MONDAY + timedelta(minutes=20)) == 1
    sw.session.refresh(first)
    sw.session.refresh(second)
    assert first.state == "pending_payment" and second.state == "expired"


def test_available_lists_what_each_party_may_do_now(sw: ServicesWorld) -> None:
    txn, _ = _booking(sw)
    assert {o.transition.name for o in engine.available(txn, sw.actor("res1"))} == {"pay", "cancel"}
    assert engine.available(txn, sw.actor("clean-admin")) == []
    assert engine.available(txn, sw.actor("res2")) == []


def test_an_action_may_arm_its_own_timer(sw: ServicesWorld) -> None:
    at: dict[str, Any] = {}

    @engine.action("test_arm")
    def _arm(ctx: engine.Context) -> None:
        at["when"] = ctx.now + timedelta(hours=5)
        ctx.arm(at["when"], "lapse")

    process = engine.parse_process(
        GOOD.replace(
            'finals = ["done", "lapsed"]', 'finals = ["done", "lapsed"]\nstart_actions = ["test_arm"]'
        )
    )
    engine.load_processes()["tiny"] = process
    try:
        listing = sw.listing(sw.providers["clean"], "housekeeping", "tiny", availability="none")
        txn = engine.start(sw.session, listing=listing, actor=sw.actor("res1"), params={})
        assert (txn.timer_at, txn.timer_transition) == (at["when"], "lapse")
    finally:
        engine.load_processes().pop("tiny", None)


# --- the commands ----------------------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture()
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich tables as wide as a desktop terminal, whatever terminal runs the tests."""
    from zhishe.core.cli_support import console

    monkeypatch.setattr(console, "_width", 200)


def test_the_processes_command_lists_and_validates_and_fails_on_a_bad_file(
    tmp_path: Path, wide_console: None
) -> None:
    listed = runner.invoke(app, ["services", "processes"])
    assert listed.exit_code == 0, listed.output
    assert "instant_booking" in listed.output and "processes valid" in listed.output
    (tmp_path / "broken.toml").write_text(GOOD.replace('to = "done"', 'to = "nowhere"'), encoding="utf-8")
    failed = runner.invoke(app, ["services", "processes", "--dir", str(tmp_path)])
    assert failed.exit_code == 1 and "broken.toml" in failed.output and "'nowhere'" in failed.output


def test_the_timers_command_fires_what_is_due_and_the_orders_command_shows_it(
    sw: ServicesWorld, wide_console: None
) -> None:
    txn, _ = _booking(sw)
    clock.set_clock(lambda: MONDAY + timedelta(minutes=20))
    fired = runner.invoke(app, ["services", "timers"])
    assert fired.exit_code == 0, fired.output
    assert f"order {txn.id}: expire → expired" in fired.output and "1 timers fired" in fired.output
    shown = runner.invoke(app, ["services", "orders", "--state", "expired"])
    assert shown.exit_code == 0, shown.output
    assert "instant_booking" in shown.output and "cancelled" in shown.output
    refused = runner.invoke(app, ["services", "orders", "--as", "res1"])
    assert refused.exit_code == 1 and refused.output.startswith("error:")
