"""Vouchers and subsidies: programmes the operator runs (a government-funded elderly-care voucher, an
operator promotion), the vouchers they issue to eligible residents each period, and their use.

A government subsidy is paid for from its fund, ``Liabilities:Subsidy:<CODE>``: funding the programme
posts Dr ``Assets:Bank`` Cr the fund, and each voucher captured draws on it. An operator promotion
is an expense, ``Expenses:Promotions:<CODE>``, booked when a voucher is captured.

A voucher is used once: the move ``issued → used`` is one conditional UPDATE, so a second use (even
a concurrent one) is refused and nothing is posted. Only its owner may use it, only while the owner
is still eligible, before it expires, and for a category the programme allows. It pays
min(voucher, price); the rest comes from another method. An order that is cancelled before
anything was captured gives the voucher back.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.accounts.models import User
from zhishe.core.areas.models import Area
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, authorize
from zhishe.core.config import get_settings
from zhishe.core.errors import Conflict, Forbidden, Invalid, NotFound
from zhishe.core.i18n import T
from zhishe.finance import ledger
from zhishe.finance.periods import local_day, month_bounds, month_of
from zhishe.services.models import Listing, ResidentProfile, Transaction, Voucher, VoucherProgramme

__all__ = [
    "KINDS",
    "PERIODS",
    "create_programme",
    "eligible",
    "fund_programme",
    "funding_account_of",
    "get_programme",
    "issue_due",
    "list_programmes",
    "mine",
    "period_key",
    "redeem",
    "spend",
    "sweep",
    "unreserve",
    "update_programme",
    "usable",
]

KINDS = ("government_subsidy", "operator_promotion")
PERIODS = ("monthly", "once")
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$")
_RULES = {"min_age", "tags_any", "area_codes"}


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=get_settings().tz)


def period_key(programme: VoucherProgramme, at: datetime) -> str:
    """The period a voucher issued at ``at`` belongs to: ``2026-11`` (monthly) or ``once``."""
    return month_of(at) if programme.period == "monthly" else "once"


def _expiry(programme: VoucherProgramme, at: datetime) -> datetime:
    """End of the month (monthly) or of the programme, whichever comes first, as an instant."""
    end = _local_midnight(programme.valid_until + timedelta(days=1))
    if programme.period == "monthly":
        end = min(end, month_bounds(month_of(at))[1])
    return end


# --- programmes -----------------------------------------------------------------------------------


def funding_account_name(kind: str, code: str) -> str:
    """The ledger account that pays for a programme of ``kind`` called ``code``."""
    part = code[0].upper() + code[1:]
    return f"Liabilities:Subsidy:{part}" if kind == "government_subsidy" else f"Expenses:Promotions:{part}"


def _text(data: dict[str, Any], field: str, *, required: bool, limit: int = 200) -> str:
    value = data.get(field, "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise Invalid(T("{field} is required", field=field), detail={"field": field})
    if len(value) > limit:
        raise Invalid(T("{field} is too long", field=field), detail={"field": field})
    return value.strip()


def _day(data: dict[str, Any], field: str) -> date:
    value = data.get(field)
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise Invalid(
            T("{field} must be a date like 2026-11-01", field=field), detail={"field": field}
        ) from None


def _eligibility(raw: object) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or set(raw) - _RULES:
        raise Invalid(
            T("eligibility may hold only {keys}", keys=", ".join(sorted(_RULES))),
            detail={"field": "eligibility"},
        )
    rules: dict[str, Any] = {}
    if raw.get("min_age") is not None:
        age = raw["min_age"]
        if isinstance(age, bool) or not isinstance(age, int) or not 0 <= age <= 130:
            raise Invalid(
                T("min_age must be a whole number of years"), detail={"field": "eligibility.min_age"}
            )
        rules["min_age"] = age
    for key in ("tags_any", "area_codes"):
        if raw.get(key):
            values = raw[key]
            if not isinstance(values, list) or not all(
                isinstance(v, str) and 0 < len(v) <= 64 for v in values
            ):
                raise Invalid(
                    T("{key} must be a list of names", key=key), detail={"field": f"eligibility.{key}"}
                )
            rules[key] = values
    return rules


def _categories(raw: object) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(v, str) and 0 < len(v) <= 64 for v in raw):
        raise Invalid(T("categories must be a list of category codes"), detail={"field": "categories"})
    return list(raw)


def _amount(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= ledger.MAX_FEN:
        raise Invalid(
            T("{field} must be a positive whole number of fen", field=field), detail={"field": field}
        )
    return value


def create_programme(*, session: Session, actor: Actor, data: dict[str, Any]) -> VoucherProgramme:
    """Create a voucher programme (operator's finance staff)."""
    authorize(actor, "finance.manage")
    code = _text(data, "code", required=True, limit=48)
    if not _CODE.match(code):
        raise Invalid(
            T("code must start with a letter or digit and hold only letters, digits, - and _"),
            detail={"field": "code"},
        )
    if session.scalar(select(VoucherProgramme.id).where(VoucherProgramme.code == code)) is not None:
        raise Conflict(T("a programme {code} already exists", code=code), detail={"field": "code"})
    kind = data.get("kind")
    if kind not in KINDS:
        raise Invalid(T("kind must be one of {values}", values=", ".join(KINDS)), detail={"field": "kind"})
    period = data.get("period", "monthly")
    if period not in PERIODS:
        raise Invalid(
            T("period must be one of {values}", values=", ".join(PERIODS)), detail={"field": "period"}
        )
    valid_from, valid_until = _day(data, "valid_from"), _day(data, "valid_until")
    if valid_until < valid_from:
        raise Invalid(T("valid_until must not be before valid_from"), detail={"field": "valid_until"})
    programme = VoucherProgramme(
        code=code,
        name_zh=_text(data, "name_zh", required=True),
        name_en=_text(data, "name_en", required=False),
        kind=kind,
        funding_account=funding_account_name(kind, code),
        amount_fen=_amount(data.get("amount_fen"), "amount_fen"),
        period=period,
        eligibility=_eligibility(data.get("eligibility")),
        categories=_categories(data.get("categories")),
        valid_from=valid_from,
        valid_until=valid_until,
        org_id=actor.org_id,
        active=True,
    )
    session.add(programme)
    session.flush()
    record(
        session=session,
        actor=actor,
        action="services.voucher_programme.create",
        object_type="services_voucher_programme",
        object_id=programme.id,
        detail={"code": code, "kind": kind, "amount_fen": programme.amount_fen},
    )
    return programme


def get_programme(*, session: Session, actor: Actor, programme_id: int) -> VoucherProgramme:
    """A programme, for the operator's finance staff."""
    authorize(actor, "finance.read")
    programme = session.get(VoucherProgramme, programme_id)
    if programme is None:
        raise NotFound(
            T("there is no voucher programme {id}", id=programme_id), detail={"programme": programme_id}
        )
    return programme


def list_programmes(*, session: Session, actor: Actor) -> list[VoucherProgramme]:
    """Every programme, newest first (audited: it names funding accounts)."""
    authorize(actor, "finance.read")
    record(
        session=session,
        actor=actor,
        action="services.voucher_programme.list",
        object_type="services_voucher_programme",
        object_id="*",
    )
    return list(session.scalars(select(VoucherProgramme).order_by(VoucherProgramme.id.desc())))


def update_programme(
    *, session: Session, actor: Actor, programme_id: int, data: dict[str, Any]
) -> VoucherProgramme:
    """Change a programme's names, rules, categories, amount, end or active flag."""
    authorize(actor, "finance.manage")
    programme = get_programme(session=session, actor=actor, programme_id=programme_id)
    unknown = set(data) - {
        "name_zh",
        "name_en",
        "eligibility",
        "categories",
        "amount_fen",
        "valid_until",
        "active",
    }
    if unknown:
        field = sorted(unknown)[0]
        raise Invalid(T("{field} cannot be changed", field=field), detail={"field": field})
    if "name_zh" in data:
        programme.name_zh = _text(data, "name_zh", required=True)
    if "name_en" in data:
        programme.name_en = _text(data, "name_en", required=False)
    if "eligibility" in data:
        programme.eligibility = _eligibility(data["eligibility"])
    if "categories" in data:
        programme.categories = _categories(data["categories"])
    if "amount_fen" in data:
        programme.amount_fen = _amount(data["amount_fen"], "amount_fen")
    if "valid_until" in data:
        until = _day(data, "valid_until")
        if until < programme.valid_from:
            raise Invalid(T("valid_until must not be before valid_from"), detail={"field": "valid_until"})
        programme.valid_until = until
    if "active" in data:
        if not isinstance(data["active"], bool):
            raise Invalid(T("active must be true or false"), detail={"field": "active"})
        programme.active = data["active"]
    session.flush()
    record(
        session=session,
        actor=actor,
        action="services.voucher_programme.update",
        object_type="services_voucher_programme",
        object_id=programme.id,
        detail={"fields": sorted(data)},
    )
    return programme


def fund_programme(
    *, session: Session, actor: Actor, programme_id: int, amount_fen: int, memo: str = ""
) -> Any:
    """Record money received for a government subsidy: Dr ``Assets:Bank`` Cr the programme's fund."""
    authorize(actor, "finance.manage")
    programme = get_programme(session=session, actor=actor, programme_id=programme_id)
    amount = _amount(amount_fen, "amount_fen")
    if programme.kind != "government_subsidy":
        raise Invalid(
            T("only a government subsidy has a fund; a promotion is an expense when used"),
            detail={"field": "programme"},
        )
    entry = ledger.post(
        session,
        kind="subsidy_fund",
        stream="marketplace",
        lines=[("Assets:Bank", amount), (programme.funding_account, -amount)],
        memo=(memo or f"funding of {programme.code}")[:500],
        ref_type="voucher_programme",
        ref_id=programme.id,
        actor=actor,
    )
    record(
        session=session,
        actor=actor,
        action="services.voucher_programme.fund",
        object_type="services_voucher_programme",
        object_id=programme.id,
        detail={"amount_fen": amount, "entry": entry.id},
    )
    return entry


def funding_account_of(session: Session, voucher_id: int) -> str:
    """The account that pays for voucher ``voucher_id``."""
    voucher = session.get(Voucher, voucher_id)
    programme = session.get(VoucherProgramme, voucher.programme_id) if voucher is not None else None
    if programme is None:
        raise NotFound(T("there is no voucher {id}", id=voucher_id), detail={"field": "voucher_id"})
    return programme.funding_account


# --- eligibility and issuing ----------------------------------------------------------------------


def _area_codes(session: Session, area_id: int | None) -> set[str]:
    codes: set[str] = set()
    seen = 0
    while area_id is not None and seen < 10:
        area = session.get(Area, area_id)
        if area is None:
            break
        codes.add(area.code)
        area_id = area.parent_id
        seen += 1
    return codes


def eligible(session: Session, programme: VoucherProgramme, user_id: int, at: datetime) -> bool:
    """Whether resident ``user_id`` meets every rule of ``programme`` at ``at``."""
    rules = programme.eligibility or {}
    if not rules:
        return True
    profile = session.get(ResidentProfile, user_id)
    if profile is None:
        return False
    age_ok = "min_age" not in rules or (
        profile.birth_year is not None and local_day(at).year - profile.birth_year >= rules["min_age"]
    )
    tags_ok = not rules.get("tags_any") or bool(set(rules["tags_any"]) & set(profile.tags or []))
    area_ok = not rules.get("area_codes") or bool(
        set(rules["area_codes"]) & _area_codes(session, profile.area_id)
    )
    return age_ok and tags_ok and area_ok


def _running(programme: VoucherProgramme, at: datetime) -> bool:
    day = local_day(at)
    return programme.active and programme.valid_from <= day <= programme.valid_until


def issue_due(session: Session, now: datetime | None = None, *, programme_id: int | None = None) -> int:
    """Issue this period's voucher of every running programme to every eligible resident; vouchers
    already issued are left alone (a unique key makes it safe to run twice). Returns how many."""
    at = now or clock.now()
    query = select(VoucherProgramme).where(VoucherProgramme.active.is_(True))
    if programme_id is not None:
        query = query.where(VoucherProgramme.id == programme_id)
    residents = list(session.scalars(select(User.id).where(User.role == "resident").order_by(User.id)))
    issued = 0
    dialect = session.get_bind().dialect.name
    for programme in session.scalars(query.order_by(VoucherProgramme.id)):
        if not _running(programme, at):
            continue
        key = period_key(programme, at)
        expires = _expiry(programme, at)
        rows = [
            dict(
                programme_id=programme.id,
                user_id=user_id,
                period_key=key,
                amount_fen=programme.amount_fen,
                expires_at=expires,
                state="issued",
                used_fen=0,
                issued_at=at,
            )
            for user_id in residents
            if eligible(session, programme, user_id, at)
        ]
        if not rows:
            continue
        before = _count(session, programme.id, key)
        if dialect == "postgresql":
            session.execute(postgresql.insert(Voucher).values(rows).on_conflict_do_nothing())
        elif dialect == "sqlite":
            session.execute(sqlite.insert(Voucher).values(rows).on_conflict_do_nothing())
        else:  # pragma: no cover - only SQLite and PostgreSQL are supported
            session.execute(insert(Voucher), rows)
        issued += _count(session, programme.id, key) - before
    if issued:
        record(
            session=session,
            actor=None,
            action="services.voucher.issue",
            object_type="services_voucher",
            object_id="*",
            detail={"issued": issued},
        )
    session.flush()
    return issued


def _count(session: Session, programme_id: int, key: str) -> int:
    return int(
        session.scalar(
            select(func.count()).where(Voucher.programme_id == programme_id, Voucher.period_key == key)
        )
        or 0
    )


def sweep(session: Session, now: datetime | None = None) -> dict[str, int]:
    """Expire vouchers whose time is up, and issue a new period's vouchers for programmes that have
    issued none yet this period (new residents get theirs from ``issue_due``)."""
    at = now or clock.now()
    expired = ledger.rowcount(
        session.execute(
            update(Voucher)
            .where(Voucher.state == "issued", Voucher.expires_at <= at)
            .values(state="expired")
            .execution_options(synchronize_session=False)
        )
    )
    issued = 0
    for programme in session.scalars(select(VoucherProgramme).where(VoucherProgramme.active.is_(True))):
        if _running(programme, at) and _count(session, programme.id, period_key(programme, at)) == 0:
            issued += issue_due(session, at, programme_id=programme.id)
    return {"vouchers_expired": int(expired or 0), "vouchers_issued": issued}


# --- using a voucher ------------------------------------------------------------------------------


def mine(*, session: Session, actor: Actor, include_spent: bool = False) -> list[Voucher]:
    """The actor's own vouchers, newest first."""
    authorize(actor, "services.browse")
    if actor.user_id is None:
        return []
    query = select(Voucher).where(Voucher.user_id == actor.user_id)
    if not include_spent:
        query = query.where(Voucher.state == "issued", Voucher.expires_at > clock.now())
    return list(session.scalars(query.order_by(Voucher.id.desc())))


def _refusal(
    session: Session, voucher: Voucher, txn: Transaction, at: datetime
) -> Invalid | Conflict | Forbidden | None:
    """Why ``voucher`` cannot pay for ``txn`` now, or None."""
    field = {"field": "voucher_id", "voucher": voucher.id}
    if voucher.user_id != txn.resident_user_id:
        return Forbidden(T("this voucher belongs to someone else"), detail=field)
    if voucher.state == "used":
        return Conflict(T("this voucher has already been used"), detail=field)
    if voucher.state == "expired" or voucher.expires_at <= at:
        return Invalid(T("this voucher has expired"), detail=field)
    programme = session.get(VoucherProgramme, voucher.programme_id)
    if programme is None or not _running(programme, at):
        return Invalid(T("this voucher's programme has ended"), detail=field)
    listing = session.get(Listing, txn.listing_id)
    if programme.categories and (listing is None or listing.category_code not in programme.categories):
        return Invalid(T("this voucher cannot pay for this kind of service"), detail=field)
    if not eligible(session, programme, voucher.user_id, at):
        return Invalid(T("you are no longer eligible for this voucher"), detail=field)
    return None


def usable(session: Session, *, user_id: int, txn: Transaction) -> list[Voucher]:
    """Vouchers of ``user_id`` that could pay for ``txn`` now."""
    at = clock.now()
    found = session.scalars(
        select(Voucher)
        .where(Voucher.user_id == user_id, Voucher.state == "issued", Voucher.expires_at > at)
        .order_by(Voucher.expires_at, Voucher.id)
    )
    return [v for v in found if v.user_id == txn.resident_user_id and _refusal(session, v, txn, at) is None]


def redeem(session: Session, *, voucher_id: int, txn: Transaction, actor: Actor | None) -> int:
    """Reserve voucher ``voucher_id`` for ``txn`` (issued → used, once) and return what it pays:
    min(voucher, price). Every refusal is raised before anything is written."""
    at = clock.now()
    voucher = session.get(Voucher, voucher_id)
    if voucher is None:
        raise NotFound(T("there is no voucher {id}", id=voucher_id), detail={"field": "voucher_id"})
    session.refresh(voucher)
    problem = _refusal(session, voucher, txn, at)
    if problem is not None:
        raise problem
    pays = min(voucher.amount_fen, txn.price_fen)
    programme = session.get(VoucherProgramme, voucher.programme_id)
    assert programme is not None
    if programme.kind == "government_subsidy" and -ledger.balance(session, programme.funding_account) < pays:
        raise Conflict(
            T("the subsidy fund of this voucher is exhausted; please pay another way"),
            detail={"field": "voucher_id", "voucher": voucher.id},
        )
    changed = ledger.rowcount(
        session.execute(
            update(Voucher)
            .where(
                Voucher.id == voucher_id,
                Voucher.state == "issued",
                Voucher.user_id == txn.resident_user_id,
                Voucher.expires_at > at,
            )
            .values(state="used", used_transaction_id=txn.id)
            .execution_options(synchronize_session=False)
        )
    )
    if changed != 1:
        raise Conflict(
            T("this voucher has already been used"), detail={"field": "voucher_id", "voucher": voucher_id}
        )
    session.expire(voucher)
    record(
        session=session,
        actor=actor,
        action="services.voucher.use",
        object_type="services_voucher",
        object_id=voucher_id,
        detail={"transaction": txn.id, "pays_fen": pays},
    )
    return pays


def spend(session: Session, *, voucher_id: int, amount_fen: int) -> None:
    """Record ``amount_fen`` of a reserved voucher as captured."""
    session.execute(
        update(Voucher)
        .where(Voucher.id == voucher_id)
        .values(used_fen=Voucher.used_fen + amount_fen)
        .execution_options(synchronize_session=False)
    )


def unreserve(session: Session, *, voucher_id: int, txn: Transaction) -> None:
    """Give back a voucher reserved for ``txn`` and not captured (or let it expire if its time is up)."""
    at = clock.now()
    voucher = session.get(Voucher, voucher_id)
    if voucher is None:
        return
    session.refresh(voucher)
    if voucher.used_transaction_id != txn.id or voucher.used_fen > 0 or voucher.state != "used":
        return
    voucher.state = "issued" if voucher.expires_at > at else "expired"
    voucher.used_transaction_id = None
    session.flush()
