"""Prices computed on the server from a listing's price rules.

A quote is built in four steps, all on integer fen:

1. **Base**: ``unit_fen × max(quantity, min_units)``, where ``quantity`` counts the listing's
   ``unit`` (hours, units, visits, boxes or days). A membership-box listing whose settings carry
   ``periods`` (``{"month": fen, "half_year": fen, "year": fen}``) prices one period instead, picked
   by ``options["period"]``.
2. **Surcharges**: each rule of ``price_rules["surcharges"]`` applies ``always``; ``when="option"``
   only when its code is in ``options["extras"]``; ``weekend`` when the service starts on a Saturday
   or Sunday, and ``evening`` when it starts at or after 18:00 or before 07:00, both in the platform
   timezone. The start is ``options["starts_at"]`` (ISO 8601) or else ``at``. A ``fixed`` surcharge
   adds ``amount`` fen; a ``percent`` one adds ``amount`` basis points of the base.
3. **Member discount**: the resident's active membership plan (``finance.memberships``) takes its
   ``discount_bps`` off base plus surcharges.
4. **Commission**: ``price × commission_bps / 10,000``, the rate being the provider's contract
   override for the category or the category's default.

Every division rounds half to even, on integers. Whatever price, fee or commission a client sends
in ``options`` is dropped before anything is computed (see ``clean_options``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.config import get_settings
from zhishe.core.errors import Invalid
from zhishe.core.i18n import T
from zhishe.finance.money import bps_of, yuan_label
from zhishe.services.models import Listing, Provider

__all__ = [
    "CLIENT_MONEY_KEYS",
    "MAX_QUANTITY",
    "SURCHARGE_KINDS",
    "SURCHARGE_WHEN",
    "UNITS",
    "Quote",
    "check_price_rules",
    "clean_options",
    "parse_quantity",
    "quote",
    "starts_at_of",
]

#: What a price counts.
UNITS = ("hour", "unit", "visit", "box", "day")
SURCHARGE_KINDS = ("fixed", "percent")
SURCHARGE_WHEN = ("always", "option", "weekend", "evening")
#: The most of anything one booking may ask for.
MAX_QUANTITY = 1000
#: The largest unit price or fixed surcharge accepted (¥1,000,000), so no sum can overflow.
MAX_FEN = 100_000_000
#: Option keys a client might send to set its own price; they are always dropped.
CLIENT_MONEY_KEYS = frozenset(
    {
        "price",
        "price_fen",
        "fee",
        "fee_fen",
        "commission",
        "commission_fen",
        "commission_bps",
        "discount",
        "discount_fen",
        "total",
        "total_fen",
        "amount",
        "amount_fen",
        "subsidy_fen",
    }
)
#: Evening surcharges apply to services starting in [18:00, 24:00) or [00:00, 07:00), local time.
EVENING_FROM = time(18, 0)
EVENING_UNTIL = time(7, 0)

_UNIT_NAMES = {
    "hour": ("小时", "hour", "hours"),
    "unit": ("件", "unit", "units"),
    "visit": ("次", "visit", "visits"),
    "box": ("箱", "box", "boxes"),
    "day": ("天", "day", "days"),
}
_PERIOD_NAMES = {
    "month": ("月", "month"),
    "quarter": ("季度", "quarter"),
    "half_year": ("半年", "half year"),
    "year": ("年", "year"),
}

Line = tuple[str, str, str, int]


@dataclass(frozen=True)
class Quote:
    """A server-computed price: its lines ``(code, label_zh, label_en, amount_fen)``, the total
    (the sum of the lines), the commission on it, and the member discount included in the lines."""

    lines: list[Line]
    price_fen: int
    commission_bps: int
    commission_fen: int
    discount_fen: int
    quantity: int = 1
    billed_units: int = 1
    unit: str = "unit"
    currency: str = "CNY"
    extras: list[str] = field(default_factory=list)
    starts_at: datetime | None = None
    membership_plan: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The quote as JSON (as stored on ``Transaction.quote``)."""
        return {
            "lines": [
                {"code": code, "label_zh": zh, "label_en": en, "amount_fen": amount}
                for code, zh, en, amount in self.lines
            ],
            "price_fen": self.price_fen,
            "commission_bps": self.commission_bps,
            "commission_fen": self.commission_fen,
            "discount_fen": self.discount_fen,
            "quantity": self.quantity,
            "billed_units": self.billed_units,
            "unit": self.unit,
            "currency": self.currency,
            "extras": list(self.extras),
            "starts_at": self.starts_at.isoformat() if self.starts_at else None,
            "membership_plan": self.membership_plan,
        }


def parse_quantity(value: object, *, field: str = "quantity") -> int:
    """A whole quantity 1–1000; zero, negatives, fractions, booleans and text are refused by name."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(
            T("{field} must be a whole number from 1 to {most}", field=field, most=MAX_QUANTITY),
            detail={"field": field, "value": str(value)[:40]},
        )
    if not 1 <= value <= MAX_QUANTITY:
        raise Invalid(
            T(
                "{field} must be from 1 to {most}; {value} is not allowed",
                field=field,
                most=MAX_QUANTITY,
                value=value,
            ),
            detail={"field": field, "value": value},
        )
    return value


def clean_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The resident's options without any price, fee or commission a client tried to set."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise Invalid(T("options must be a JSON object"), detail={"field": "options"})
    return {str(k): v for k, v in options.items() if str(k).lower() not in CLIENT_MONEY_KEYS}


def starts_at_of(options: Mapping[str, Any], at: datetime | None) -> datetime | None:
    """When the service starts: ``options["starts_at"]`` (ISO 8601; naive means platform time), or ``at``."""
    raw = options.get("starts_at")
    if raw in (None, ""):
        return at
    if isinstance(raw, datetime):
        parsed = raw
    elif isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw.strip())
        except ValueError:
            raise Invalid(
                T("starts_at must be an ISO 8601 date and time, such as 2026-11-07T09:00+08:00"),
                detail={"field": "starts_at", "value": raw[:40]},
            ) from None
    else:
        raise Invalid(
            T("starts_at must be an ISO 8601 date and time, such as 2026-11-07T09:00+08:00"),
            detail={"field": "starts_at"},
        )
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=get_settings().tz)
    return parsed


def _rule_error(field: str, message: T) -> Invalid:
    return Invalid(message, detail={"field": f"price_rules.{field}"})


def _int_in(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _rule_error(
            field,
            T(
                "price_rules.{field} must be a whole number from {low} to {high}",
                field=field,
                low=low,
                high=high,
            ),
        )
    return value


def _check_surcharge(index: int, raw: object, seen: set[str]) -> dict[str, Any]:
    where = f"surcharges[{index}]"
    if not isinstance(raw, Mapping):
        raise _rule_error(where, T("price_rules.{field} must be an object", field=where))
    code = raw.get("code")
    if not isinstance(code, str) or not code.strip() or len(code) > 40:
        raise _rule_error(
            f"{where}.code", T("price_rules.{field} needs a code of 1 to 40 characters", field=where)
        )
    code = code.strip()
    if code in seen:
        raise _rule_error(f"{where}.code", T("surcharge code {code} appears more than once", code=repr(code)))
    seen.add(code)
    kind = raw.get("kind", "fixed")
    if kind not in SURCHARGE_KINDS:
        raise _rule_error(
            f"{where}.kind", T("price_rules.{field}.kind must be fixed or percent", field=where)
        )
    when = raw.get("when", "always")
    if when not in SURCHARGE_WHEN:
        raise _rule_error(
            f"{where}.when",
            T("price_rules.{field}.when must be always, option, weekend or evening", field=where),
        )
    high = 10_000 if kind == "percent" else MAX_FEN
    amount = _int_in(raw.get("amount"), f"{where}.amount", 0, high)
    name_zh = str(raw.get("name_zh") or code)[:100]
    name_en = str(raw.get("name_en") or "")[:100]
    return {
        "code": code,
        "name_zh": name_zh,
        "name_en": name_en,
        "kind": kind,
        "amount": amount,
        "when": when,
    }


def check_price_rules(rules: object) -> dict[str, Any]:
    """The price rules normalised, or Invalid naming the first wrong field (``price_rules.<field>``)."""
    if not isinstance(rules, Mapping):
        raise Invalid(T("price_rules must be a JSON object"), detail={"field": "price_rules"})
    unit = rules.get("unit")
    if unit not in UNITS:
        raise _rule_error("unit", T("price_rules.unit must be one of hour, unit, visit, box, day"))
    unit_fen = _int_in(rules.get("unit_fen"), "unit_fen", 0, MAX_FEN)
    min_units = _int_in(rules.get("min_units", 1), "min_units", 1, MAX_QUANTITY)
    raw_surcharges = rules.get("surcharges", [])
    if not isinstance(raw_surcharges, list) or len(raw_surcharges) > 20:
        raise _rule_error("surcharges", T("price_rules.surcharges must be a list of at most 20 surcharges"))
    seen: set[str] = set()
    surcharges = [_check_surcharge(i, raw, seen) for i, raw in enumerate(raw_surcharges)]
    return {"unit": unit, "unit_fen": unit_fen, "min_units": min_units, "surcharges": surcharges}


def _extras(options: Mapping[str, Any], choosable: set[str]) -> list[str]:
    raw = options.get("extras", [])
    if raw in (None, ""):
        raw = []
    if isinstance(raw, str):
        raw = [part for part in raw.split(",") if part.strip()]
    if not isinstance(raw, list | tuple) or not all(isinstance(item, str) for item in raw):
        raise Invalid(T("extras must be a list of option codes"), detail={"field": "extras"})
    picked = list(dict.fromkeys(item.strip() for item in raw))
    unknown = [code for code in picked if code not in choosable]
    if unknown:
        raise Invalid(
            T("unknown extras: {codes}", codes=", ".join(unknown)),
            detail={"field": "extras", "unknown": unknown, "allowed": sorted(choosable)},
        )
    return picked


def _base(
    listing: Listing, rules: Mapping[str, Any], quantity: int, options: Mapping[str, Any]
) -> tuple[Line, int]:
    """The base line and the number of units billed."""
    periods = listing.settings.get("periods") if isinstance(listing.settings, Mapping) else None
    if listing.process == "membership_box" and isinstance(periods, Mapping) and periods:
        period = options.get("period") or next(iter(periods))
        if period not in periods:
            raise Invalid(
                T("period must be one of {periods}", periods=", ".join(map(str, periods))),
                detail={"field": "period", "allowed": list(periods)},
            )
        each = _int_in(periods[period], f"settings.periods.{period}", 0, MAX_FEN)
        zh, en = _PERIOD_NAMES.get(str(period), (str(period), str(period)))
        amount = each * quantity
        return (
            (
                "base",
                f"会员预售 {quantity} × 每{zh} {yuan_label(each)}",
                f"Membership box {quantity} × one {en} at {yuan_label(each)}",
                amount,
            ),
            quantity,
        )
    unit = str(rules["unit"])
    billed = max(quantity, int(rules["min_units"]))
    each = int(rules["unit_fen"])
    zh, en_one, en_many = _UNIT_NAMES[unit]
    en_unit = en_one if billed == 1 else en_many
    line = (
        "base",
        f"{billed} {zh} × {yuan_label(each)}",
        f"{billed} {en_unit} × {yuan_label(each)}",
        each * billed,
    )
    return line, billed


def _applies(surcharge: Mapping[str, Any], extras: list[str], starts: datetime | None) -> bool:
    when = surcharge["when"]
    if when == "always":
        return True
    if when == "option":
        return surcharge["code"] in extras
    if starts is None:
        return False
    local = starts.astimezone(get_settings().tz)
    if when == "weekend":
        return local.weekday() >= 5
    return local.time() >= EVENING_FROM or local.time() < EVENING_UNTIL


def _member_plan(session: Session, user_id: int | None, at: datetime) -> tuple[str, str, str, int] | None:
    """The resident's plan as (code, name_zh, name_en, discount_bps), or None (also when the
    memberships module is not installed)."""
    if user_id is None:
        return None
    try:
        from zhishe.finance import memberships

        plan = memberships.active_plan(session, user_id, at)
    except (ImportError, AttributeError):
        return None
    if plan is None:
        return None
    bps = int(getattr(plan, "discount_bps", 0) or 0)
    if bps <= 0:
        return None
    return (str(plan.code), str(plan.name_zh), str(plan.name_en or plan.name_zh), min(bps, 10_000))


def quote(
    session: Session,
    *,
    listing: Listing,
    resident_user_id: int | None,
    quantity: object,
    options: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> Quote:
    """The server's price for ``quantity`` of ``listing`` with ``options`` (extras, starts_at, period),
    for the resident ``resident_user_id`` (for a member discount), as of ``at`` (default now).

    Raises Invalid naming ``quantity``, ``extras``, ``starts_at`` or ``period`` for bad input."""
    from zhishe.services import providers

    count = parse_quantity(quantity)
    opts = clean_options(options)
    when = at or clock.now()
    rules = check_price_rules(listing.price_rules)
    choosable = {s["code"] for s in rules["surcharges"] if s["when"] == "option"}
    extras = _extras(opts, choosable)
    starts = starts_at_of(opts, at)
    base_line, billed = _base(listing, rules, count, opts)
    base = base_line[3]
    lines: list[Line] = [base_line]
    for surcharge in rules["surcharges"]:
        if not _applies(surcharge, extras, starts):
            continue
        amount = surcharge["amount"] if surcharge["kind"] == "fixed" else bps_of(base, surcharge["amount"])
        lines.append(
            (surcharge["code"], surcharge["name_zh"], surcharge["name_en"] or surcharge["name_zh"], amount)
        )
    subtotal = sum(line[3] for line in lines)
    plan = _member_plan(session, resident_user_id, when)
    discount = 0
    if plan is not None:
        discount = min(bps_of(subtotal, plan[3]), subtotal)
        if discount:
            lines.append(
                ("member_discount", f"会员折扣（{plan[1]}）", f"Member discount ({plan[2]})", -discount)
            )
    price = subtotal - discount
    provider = session.get(Provider, listing.provider_id)
    bps = providers.commission_bps(session, provider, listing.category_code) if provider else 0
    return Quote(
        lines=lines,
        price_fen=price,
        commission_bps=bps,
        commission_fen=bps_of(price, bps),
        discount_fen=discount,
        quantity=count,
        billed_units=billed,
        unit=str(rules["unit"]),
        extras=extras,
        starts_at=starts,
        membership_plan=plan[0] if plan else None,
    )
