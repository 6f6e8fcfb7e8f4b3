"""Paying for marketplace transactions: holding the resident's money, paying the provider, giving
money back, and rental deposits. Every movement is one balanced ledger entry posted in the caller's
database transaction, beside ``Payment`` rows and the transaction's money fields.

Payment methods sit behind one small interface (``Method``), registered by name:

- ``wallet``: the resident's prepaid balance, ``Liabilities:Wallets:U<user>`` (a credit balance is
  money the operator holds for them). Spending is guarded by ``no_overdraft``: the balance check
  and the change are one conditional UPDATE, so two concurrent spends cannot overdraw it.
- ``gateway``: an online gateway. ``gateway_checkout`` opens a pending payment; the gateway's signed
  callback confirms it, and only then is the money posted, from ``Assets:Gateway``.
- ``pay_at_service``: cash or another offline payment the provider takes and confirms at capture.
  Nothing is held before.
- ``voucher``: a voucher of a subsidy programme or promotion pays min(voucher, price); the rest
  comes from one of the methods above (``voucher`` alone when it covers the whole price).

Signs follow the ledger: a debit is positive, a credit negative; liabilities and income normally
carry credit balances. The flows (``P`` is the provider's ``Liabilities:Payables:P<id>``, ``F`` the
voucher's funding account: ``Liabilities:Subsidy:<CODE>`` for a government subsidy, which the
programme's funding filled, or ``Expenses:Promotions:<CODE>`` for an operator promotion):

=================  =======================================================================================
hold               Dr source (wallet: less owed to the resident; gateway: cash received)   Cr Escrow.
                   A voucher is only reserved (its state becomes ``used``); nothing moves yet.
capture of A       Dr Escrow (cash part)  Dr F (voucher part)  Dr Collected:P (offline part)
                   Cr P (A - commission)  Cr Income:Commission (commission).
                   With pay at service the provider already holds the cash it took, so a second
                   entry ``collected`` clears it against what the operator owes:
                   Dr P (offline part)  Cr Assets:Providers:Collected:P<id>.
                   Net effect for pay at service: P moves by voucher part - commission: the
                   provider owes the commission, and is owed the subsidy.
release            Dr Escrow (what is still held)  Cr source. An unspent voucher is reserved again
                   for its owner (or expires if its time is up).
refund of R        Dr P (R - commission returned)  Dr Income:Refunds:Commission (commission returned)
                   Cr source (cash part)  Cr F (voucher part, back to its fund).
                   Commission and voucher shares are in proportion to what was captured; the cash
                   part of a pay-at-service refund goes to the resident's wallet.
deposit hold       Dr wallet  Cr Liabilities:Deposits.
deposit settle     Dr Liabilities:Deposits  Cr P (kept for the owner)  Cr wallet (the rest).
=================  =======================================================================================

Capture takes the resident's own money first (held cash, or at service what they pay in cash) and
the voucher for the rest, so that a cancellation fee does not spend a subsidy while cash covers it.
Shares are rounded half to even on integers; the last refund takes exactly what is left, so totals
always add up. ``Transaction.captured_fen/refunded_fen/subsidy_fen/deposit_fen/commission_fen`` are
kept up to date (``commission_fen`` becomes the commission charged once anything is captured;
``subsidy_fen`` is the voucher part reserved or captured; ``deposit_fen`` the deposit still held).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, can
from zhishe.core.errors import Conflict, Forbidden, Invalid, NotFound
from zhishe.core.i18n import T
from zhishe.finance import ledger
from zhishe.finance.models import Account, Entry, Posting
from zhishe.finance.money import share
from zhishe.services.models import Payment, Provider, Transaction, Voucher

__all__ = [
    "COMMISSION",
    "COMMISSION_REFUNDS",
    "DEPOSITS",
    "GATEWAY",
    "METHODS",
    "Method",
    "Position",
    "capture",
    "collected_account",
    "gateway_checkout",
    "get_method",
    "get_transaction",
    "hold",
    "hold_deposit",
    "position",
    "provider_names",
    "provider_of_org",
    "provider_org_id",
    "refund",
    "register",
    "release",
    "settle_deposit",
]

COMMISSION = "Income:Commission"
COMMISSION_REFUNDS = "Income:Refunds:Commission"
DEPOSITS = "Liabilities:Deposits"
GATEWAY = "Assets:Gateway"


def collected_account(provider_id: int) -> str:
    """The clearing account of cash a provider took at the service (zero after each capture)."""
    return f"Assets:Providers:Collected:P{provider_id}"


# --- methods --------------------------------------------------------------------------------------


class Method(Protocol):
    """A way of paying: where the money comes from and goes back to, and how it is taken."""

    #: The registered name, stored in ``Payment.method`` and ``Transaction.payment_method``.
    name: str
    #: Whether the money sits in escrow between hold and capture.
    escrowed: bool

    def source(self, txn: Transaction) -> str:
        """The account money is taken from and returned to."""
        ...

    def take(self, session: Session, *, txn: Transaction, actor: Actor | None, amount_fen: int) -> Payment:
        """Hold ``amount_fen`` for ``txn`` and return the payment row."""
        ...


class _Wallet:
    """The resident's prepaid wallet."""

    name = "wallet"
    escrowed = True

    def source(self, txn: Transaction) -> str:
        return ledger.wallet(txn.resident_user_id)

    def take(self, session: Session, *, txn: Transaction, actor: Actor | None, amount_fen: int) -> Payment:
        source = self.source(txn)
        entry = _post(
            session,
            txn,
            actor,
            kind="hold",
            lines=[(source, amount_fen), (ledger.escrow_of(), -amount_fen)],
            memo=f"hold for transaction {txn.id}",
            no_overdraft=[source],
        )
        return _payment(session, txn, self.name, "hold", amount_fen, entry)


class _Gateway:
    """An online gateway: the money arrives with its verified callback (see ``services.gateway``)."""

    name = "gateway"
    escrowed = True

    def source(self, txn: Transaction) -> str:
        return GATEWAY

    def take(self, session: Session, *, txn: Transaction, actor: Actor | None, amount_fen: int) -> Payment:
        confirmed = session.scalar(
            select(Payment).where(
                Payment.transaction_id == txn.id,
                Payment.method == self.name,
                Payment.kind == "hold",
                Payment.state == "done",
                Payment.entry_id.is_not(None),
            )
        )
        if confirmed is None:
            raise Conflict(
                T("the online payment has not been confirmed by the gateway yet"),
                detail={"transaction": txn.id, "method": self.name},
            )
        return confirmed


class _PayAtService:
    """Cash or another offline payment, taken and confirmed by the provider: nothing is held."""

    name = "pay_at_service"
    escrowed = False

    def source(self, txn: Transaction) -> str:
        return ledger.wallet(txn.resident_user_id)

    def take(self, session: Session, *, txn: Transaction, actor: Actor | None, amount_fen: int) -> Payment:
        return _payment(session, txn, self.name, "hold", 0, None, state="pending")


METHODS: dict[str, Method] = {}


def register(implementation: Method) -> None:
    """Make a payment method available under its name."""
    METHODS[implementation.name] = implementation


for _implementation in (_Wallet(), _Gateway(), _PayAtService()):
    register(_implementation)


def get_method(name: str) -> Method:
    """The method called ``name``; ``Invalid`` names the field otherwise."""
    found = METHODS.get(name)
    if found is None:
        raise Invalid(
            T("method must be one of {values}", values=", ".join(sorted([*METHODS, "voucher"]))),
            detail={"field": "method", "value": name[:50]},
        )
    return found


# --- where a transaction's money is ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Position:
    """Where a transaction's money is, from its payment rows."""

    #: The cash method (wallet, gateway, pay_at_service) or "" when a voucher pays everything.
    method: str
    #: Cash held in escrow now.
    held_fen: int
    #: Voucher part reserved and not yet captured or released.
    reserved_subsidy_fen: int
    #: Captured so far: in total, from cash (escrow or at the service), from the voucher.
    captured_fen: int
    captured_cash_fen: int
    captured_subsidy_fen: int
    #: Refunded so far: in total, and the voucher part of it.
    refunded_fen: int
    refunded_subsidy_fen: int
    #: Deposit held now.
    deposit_fen: int


def position(session: Session, txn: Transaction) -> Position:
    """Sum a transaction's payments into where its money is now."""
    sums: dict[tuple[str, str], int] = defaultdict(int)
    cash_method = ""
    for payment in session.scalars(
        select(Payment).where(Payment.transaction_id == txn.id, Payment.state == "done").order_by(Payment.id)
    ):
        sums[(payment.method, payment.kind)] += payment.amount_fen
        if payment.method != "voucher" and payment.kind == "hold":
            cash_method = payment.method
    pending_at_service = session.scalar(
        select(Payment.id).where(
            Payment.transaction_id == txn.id,
            Payment.method == "pay_at_service",
            Payment.kind == "hold",
            Payment.state == "pending",
        )
    )
    if pending_at_service is not None:
        cash_method = "pay_at_service"
    escrowed = [name for name, impl in METHODS.items() if impl.escrowed]
    held = sum(sums[(m, "hold")] - sums[(m, "capture")] - sums[(m, "release")] for m in escrowed)
    captured_cash = sum(sums[(m, "capture")] for m in METHODS)
    captured_subsidy = sums[("voucher", "capture")]
    refunded = sum(amount for (_, kind), amount in sums.items() if kind == "refund")
    deposit = sum(
        amount if kind == "deposit_hold" else -amount
        for (_, kind), amount in sums.items()
        if kind in ("deposit_hold", "deposit_keep", "deposit_return")
    )
    return Position(
        method=cash_method,
        held_fen=held,
        reserved_subsidy_fen=sums[("voucher", "hold")] - captured_subsidy - sums[("voucher", "release")],
        captured_fen=captured_cash + captured_subsidy,
        captured_cash_fen=captured_cash,
        captured_subsidy_fen=captured_subsidy,
        refunded_fen=refunded,
        refunded_subsidy_fen=sums[("voucher", "refund")],
        deposit_fen=deposit,
    )


# --- helpers --------------------------------------------------------------------------------------


def _post(
    session: Session,
    txn: Transaction,
    actor: Actor | None,
    *,
    kind: str,
    lines: list[ledger.Line],
    memo: str,
    no_overdraft: list[str] | None = None,
) -> Entry:
    return ledger.post(
        session,
        kind=kind,
        lines=lines,
        memo=memo,
        ref_type="transaction",
        ref_id=txn.id,
        provider_id=txn.provider_id,
        actor=actor,
        currency=txn.currency or "CNY",
        no_overdraft=no_overdraft or (),
    )


def _payment(
    session: Session,
    txn: Transaction,
    method_name: str,
    kind: str,
    amount_fen: int,
    entry: Entry | None,
    *,
    state: str = "done",
    reference: str = "",
) -> Payment:
    payment = Payment(
        transaction_id=txn.id,
        method=method_name,
        kind=kind,
        amount_fen=amount_fen,
        state=state,
        reference=reference,
        entry_id=entry.id if entry is not None else None,
        created_at=clock.now(),
    )
    session.add(payment)
    session.flush()
    return payment


def _provider_org(session: Session, txn: Transaction) -> int | None:
    provider = session.get(Provider, txn.provider_id)
    return provider.org_id if provider is not None else None


def _check_party(session: Session, txn: Transaction, actor: Actor | None, *, resident: bool = True) -> None:
    """The transaction's resident, its provider's staff, the operator, or the system (``None``)."""
    if actor is None or can(actor, "services.operate"):
        return
    if resident and actor.user_id is not None and actor.user_id == txn.resident_user_id:
        return
    if can(actor, "services.provide", org_id=_provider_org(session, txn)):
        return
    raise Forbidden(
        T("only the parties of this transaction or the operator may move its money"),
        detail={"transaction": txn.id},
    )


def _audit(session: Session, actor: Actor | None, action: str, txn: Transaction, **detail: Any) -> None:
    record(
        session=session,
        actor=actor,
        action=f"services.payment.{action}",
        object_type="services_transaction",
        object_id=txn.id,
        object_org_id=_provider_org(session, txn),
        detail=detail,
    )


def _check_amount(value: object, field: str, *, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(T("{field} must be a whole number of fen", field=field), detail={"field": field})
    if value < 0 or (value == 0 and not allow_zero) or value > ledger.MAX_FEN:
        raise Invalid(
            T("{field} must be a positive number of fen", field=field),
            detail={"field": field, "value": value},
        )
    return value


def _voucher_source(session: Session, txn: Transaction) -> str:
    from zhishe.services import vouchers

    if txn.voucher_id is None:
        raise Conflict(T("this transaction has no voucher"), detail={"transaction": txn.id})
    return vouchers.funding_account_of(session, txn.voucher_id)


def _commission_rate(session: Session, txn: Transaction) -> tuple[int, int]:
    """The commission as a fraction (numerator, denominator) of the captured amount."""
    bps = (txn.quote or {}).get("commission_bps")
    if isinstance(bps, int) and not isinstance(bps, bool) and 0 <= bps <= 10_000:
        return bps, 10_000
    quoted = (txn.quote or {}).get("commission_fen", txn.commission_fen)
    if isinstance(quoted, int) and txn.price_fen > 0 and 0 <= quoted <= txn.price_fen:
        return quoted, txn.price_fen
    return 0, 1


# --- hold, capture, release, refund ---------------------------------------------------------------


def hold(
    session: Session,
    *,
    txn: Transaction,
    actor: Actor | None,
    method: str,
    voucher_id: int | None = None,
) -> list[Payment]:
    """Take the resident's money for ``txn`` into escrow (wallet or confirmed gateway payment), with
    a voucher paying min(voucher, price) first; pay at service holds nothing. The price is the
    server-computed ``txn.price_fen``. Returns the payment rows written (or already confirmed)."""
    _check_party(session, txn, actor, resident=True)
    chosen = get_method(method) if method != "voucher" else None
    if chosen is not None and chosen.name == "gateway":
        # the money came with the gateway's verified callback; a voucher was reserved at checkout
        confirmed = chosen.take(session, txn=txn, actor=actor, amount_fen=0)
        return [confirmed, *_rows(session, txn, kind="hold", method_name="voucher")]
    current = position(session, txn)
    if current.held_fen > 0 or current.reserved_subsidy_fen > 0 or current.method:
        raise Conflict(T("this transaction is already paid for"), detail={"transaction": txn.id})
    if current.captured_fen > 0:
        raise Conflict(T("this transaction has already been captured"), detail={"transaction": txn.id})
    price = txn.price_fen
    written: list[Payment] = []
    subsidy = 0
    if voucher_id is not None:
        from zhishe.services import vouchers

        subsidy = vouchers.redeem(session, voucher_id=voucher_id, txn=txn, actor=actor)
        txn.voucher_id = voucher_id
        txn.subsidy_fen = subsidy
        written.append(_payment(session, txn, "voucher", "hold", subsidy, None))
    rest = price - subsidy
    if chosen is None:
        if rest > 0:
            raise Invalid(
                T(
                    "the voucher covers {covered} fen of {price}: choose a method for the rest",
                    covered=subsidy,
                    price=price,
                ),
                detail={"field": "method"},
            )
        txn.payment_method = "voucher"
    else:
        if rest > 0 or chosen.name == "pay_at_service":
            written.append(chosen.take(session, txn=txn, actor=actor, amount_fen=rest))
        txn.payment_method = chosen.name
    txn.updated_at = clock.now()
    _audit(session, actor, "hold", txn, method=txn.payment_method, price_fen=price, subsidy_fen=subsidy)
    session.flush()
    return written


def _rows(session: Session, txn: Transaction, *, kind: str, method_name: str) -> list[Payment]:
    query = select(Payment).where(
        Payment.transaction_id == txn.id,
        Payment.kind == kind,
        Payment.method == method_name,
        Payment.state == "done",
    )
    return list(session.scalars(query.order_by(Payment.id)))


def capture(
    session: Session, *, txn: Transaction, actor: Actor | None, amount_fen: int | None = None
) -> list[Payment]:
    """Pay the provider for ``txn``: everything held (None) or ``amount_fen`` of it (a cancellation
    fee), less the commission, posting commission revenue and the voucher's subsidy leg."""
    _check_party(session, txn, actor, resident=True)
    now = position(session, txn)
    if not now.method and now.reserved_subsidy_fen == 0:
        raise Conflict(T("nothing has been paid for this transaction"), detail={"transaction": txn.id})
    at_service = now.method == "pay_at_service"
    if at_service:
        cash_available = max(txn.price_fen - txn.subsidy_fen - now.captured_cash_fen, 0)
    else:
        cash_available = now.held_fen
    available = cash_available + now.reserved_subsidy_fen
    if amount_fen is None:
        amount = available
    else:
        amount = _check_amount(amount_fen, "amount_fen")
        if amount > available:
            raise Invalid(
                T(
                    "amount_fen {amount} is more than the {available} fen that can be captured",
                    amount=amount,
                    available=available,
                ),
                detail={"field": "amount_fen", "available_fen": available},
            )
    if amount <= 0:
        raise Conflict(T("nothing is left to capture"), detail={"transaction": txn.id})
    cash = min(amount, cash_available)
    subsidy = amount - cash
    rate = _commission_rate(session, txn)
    charged_before = txn.commission_fen if now.captured_fen > 0 else 0
    commission = share(now.captured_fen + amount, *rate) - charged_before
    commission = min(max(commission, 0), amount)
    payable = ledger.provider_payable(txn.provider_id)
    lines: list[ledger.Line] = [(payable, -(amount - commission)), (COMMISSION, -commission)]
    if cash:
        lines.append((collected_account(txn.provider_id) if at_service else ledger.escrow_of(), cash))
    if subsidy:
        lines.append((_voucher_source(session, txn), subsidy))
    entry = _post(session, txn, actor, kind="capture", lines=lines, memo=f"capture of transaction {txn.id}")
    written: list[Payment] = []
    if cash:
        written.append(_payment(session, txn, now.method, "capture", cash, entry))
    if subsidy:
        written.append(_payment(session, txn, "voucher", "capture", subsidy, entry))
        from zhishe.services import vouchers

        assert txn.voucher_id is not None
        vouchers.spend(session, voucher_id=txn.voucher_id, amount_fen=subsidy)
    if at_service and cash:
        _post(
            session,
            txn,
            actor,
            kind="collected",
            lines=[(payable, cash), (collected_account(txn.provider_id), -cash)],
            memo=f"cash taken by the provider at the service for transaction {txn.id}",
        )
        for pending in session.scalars(
            select(Payment).where(
                Payment.transaction_id == txn.id,
                Payment.method == "pay_at_service",
                Payment.state == "pending",
            )
        ):
            pending.state = "done"
    txn.captured_fen = now.captured_fen + amount
    txn.commission_fen = charged_before + commission
    txn.updated_at = clock.now()
    _audit(session, actor, "capture", txn, amount_fen=amount, commission_fen=commission, subsidy_fen=subsidy)
    session.flush()
    return written


def release(session: Session, *, txn: Transaction, actor: Actor | None) -> list[Payment]:
    """Return whatever is still held for ``txn`` to its sources; an unspent voucher becomes usable
    again. Releasing nothing is not an error (returns no rows)."""
    _check_party(session, txn, actor, resident=True)
    now = position(session, txn)
    written: list[Payment] = []
    if now.held_fen > 0:
        source = get_method(now.method).source(txn)
        entry = _post(
            session,
            txn,
            actor,
            kind="release",
            lines=[(ledger.escrow_of(), now.held_fen), (source, -now.held_fen)],
            memo=f"release of transaction {txn.id}",
        )
        written.append(_payment(session, txn, now.method, "release", now.held_fen, entry))
    if now.reserved_subsidy_fen > 0 and txn.voucher_id is not None:
        written.append(_payment(session, txn, "voucher", "release", now.reserved_subsidy_fen, None))
        from zhishe.services import vouchers

        vouchers.unreserve(session, voucher_id=txn.voucher_id, txn=txn)
        txn.subsidy_fen = now.captured_subsidy_fen
    for pending in session.scalars(
        select(Payment).where(Payment.transaction_id == txn.id, Payment.state == "pending")
    ):
        pending.state = "failed"
    if written:
        txn.updated_at = clock.now()
        _audit(session, actor, "release", txn, amount_fen=now.held_fen, subsidy_fen=now.reserved_subsidy_fen)
    session.flush()
    return written


def _commission_returned(session: Session, txn: Transaction) -> int:
    """Commission already given back for ``txn`` (debits on the contra-income account)."""
    value = session.scalar(
        select(func.coalesce(func.sum(Posting.amount_fen), 0))
        .join(Account, Account.id == Posting.account_id)
        .join(Entry, Entry.id == Posting.entry_id)
        .where(Entry.ref_type == "transaction", Entry.ref_id == txn.id, Account.name == COMMISSION_REFUNDS)
    )
    return int(value or 0)


def refund(
    session: Session, *, txn: Transaction, actor: Actor | None, amount_fen: int, reason: str
) -> list[Payment]:
    """Give back ``amount_fen`` of what was captured for ``txn``: from the provider's payable and
    the commission (in proportion), to the resident's source and, for the voucher part, to its
    fund. Refuses more than captured minus refunded (``Invalid`` naming ``amount_fen``)."""
    _check_party(session, txn, actor, resident=True)
    amount = _check_amount(amount_fen, "amount_fen")
    reason = (reason or "").strip()
    if not reason:
        raise Invalid(T("give a reason for the refund"), detail={"field": "reason"})
    now = position(session, txn)
    refundable = now.captured_fen - now.refunded_fen
    if amount > refundable:
        raise Invalid(
            T(
                "amount_fen {amount} is more than the {refundable} fen captured and not yet refunded",
                amount=amount,
                refundable=refundable,
            ),
            detail={"field": "amount_fen", "refundable_fen": refundable},
        )
    after = now.refunded_fen + amount
    returned_before = _commission_returned(session, txn)
    commission_back = share(txn.commission_fen, after, now.captured_fen) - returned_before
    commission_back = min(max(commission_back, 0), amount)
    subsidy_back = share(now.captured_subsidy_fen, after, now.captured_fen) - now.refunded_subsidy_fen
    subsidy_back = min(max(subsidy_back, 0), amount)
    cash_back = amount - subsidy_back
    lines: list[ledger.Line] = [
        (ledger.provider_payable(txn.provider_id), amount - commission_back),
        (COMMISSION_REFUNDS, commission_back),
    ]
    cash_method = now.method or "wallet"
    if cash_back:
        lines.append((get_method(cash_method).source(txn), -cash_back))
    if subsidy_back:
        lines.append((_voucher_source(session, txn), -subsidy_back))
    entry = _post(session, txn, actor, kind="refund", lines=lines, memo=f"refund: {reason}"[:500])
    written: list[Payment] = []
    if cash_back:
        written.append(_payment(session, txn, cash_method, "refund", cash_back, entry))
    if subsidy_back:
        written.append(_payment(session, txn, "voucher", "refund", subsidy_back, entry))
    txn.refunded_fen = after
    txn.updated_at = clock.now()
    _audit(
        session, actor, "refund", txn, amount_fen=amount, reason=reason[:200], commission_fen=commission_back
    )
    session.flush()
    return written


# --- deposits -------------------------------------------------------------------------------------


def hold_deposit(
    session: Session, *, txn: Transaction, actor: Actor | None, amount_fen: int, method: str = "wallet"
) -> Payment:
    """Hold a rental deposit of ``amount_fen`` from the resident's wallet (top it up first, through
    the gateway if need be) in ``Liabilities:Deposits``."""
    _check_party(session, txn, actor, resident=True)
    amount = _check_amount(amount_fen, "amount_fen")
    if method != "wallet":
        raise Invalid(
            T("deposits are held from the wallet: top it up first"),
            detail={"field": "method", "value": method[:50]},
        )
    if position(session, txn).deposit_fen > 0:
        raise Conflict(T("a deposit is already held for this transaction"), detail={"transaction": txn.id})
    source = ledger.wallet(txn.resident_user_id)
    entry = _post(
        session,
        txn,
        actor,
        kind="deposit_hold",
        lines=[(source, amount), (DEPOSITS, -amount)],
        memo=f"deposit for transaction {txn.id}",
        no_overdraft=[source],
    )
    payment = _payment(session, txn, "wallet", "deposit_hold", amount, entry)
    txn.deposit_fen = amount
    txn.updated_at = clock.now()
    _audit(session, actor, "deposit_hold", txn, amount_fen=amount)
    session.flush()
    return payment


def settle_deposit(
    session: Session, *, txn: Transaction, actor: Actor | None, keep_fen: int = 0
) -> list[Payment]:
    """Settle the deposit held for ``txn``: keep ``keep_fen`` for the owner (after a dispute) and
    return the rest to the resident's wallet."""
    _check_party(session, txn, actor, resident=True)
    keep = _check_amount(keep_fen, "keep_fen", allow_zero=True)
    held = position(session, txn).deposit_fen
    if held <= 0:
        raise Conflict(T("no deposit is held for this transaction"), detail={"transaction": txn.id})
    if keep > held:
        raise Invalid(
            T("keep_fen {keep} is more than the {held} fen deposit", keep=keep, held=held),
            detail={"field": "keep_fen", "deposit_fen": held},
        )
    back = held - keep
    lines: list[ledger.Line] = [(DEPOSITS, held)]
    if keep:
        lines.append((ledger.provider_payable(txn.provider_id), -keep))
    if back:
        lines.append((ledger.wallet(txn.resident_user_id), -back))
    entry = _post(
        session, txn, actor, kind="deposit_settle", lines=lines, memo=f"deposit of transaction {txn.id}"
    )
    written: list[Payment] = []
    if keep:
        written.append(_payment(session, txn, "wallet", "deposit_keep", keep, entry))
    if back:
        written.append(_payment(session, txn, "wallet", "deposit_return", back, entry))
    txn.deposit_fen = 0
    txn.updated_at = clock.now()
    _audit(session, actor, "deposit_settle", txn, kept_fen=keep, returned_fen=back)
    session.flush()
    return written


# --- the gateway ----------------------------------------------------------------------------------


def gateway_checkout(
    session: Session, *, txn: Transaction, actor: Actor | None, voucher_id: int | None = None
) -> dict[str, Any]:
    """Open a pending gateway payment for what ``txn`` still needs (its price less a voucher, which
    is reserved now) and return what the client needs: the reference, the amount and a signed
    order string. The gateway's verified callback later posts the money and fires ``pay``."""
    from zhishe.services import gateway

    return gateway.checkout(session, txn=txn, actor=actor, voucher_id=voucher_id)


def get_transaction(session: Session, transaction_id: int) -> Transaction:
    """The transaction ``transaction_id``, or ``NotFound``."""
    txn = session.get(Transaction, transaction_id)
    if txn is None:
        raise NotFound(T("there is no order {id}", id=transaction_id), detail={"transaction": transaction_id})
    return txn


def vouchers_of(session: Session, txn: Transaction) -> Voucher | None:
    """The voucher a transaction uses, if any."""
    return session.get(Voucher, txn.voucher_id) if txn.voucher_id is not None else None


def provider_org_id(session: Session, provider_id: int) -> int | None:
    """The organisation of provider ``provider_id`` (None when there is no such provider)."""
    provider = session.get(Provider, provider_id)
    return provider.org_id if provider is not None else None


def provider_of_org(session: Session, org_id: int) -> int | None:
    """The provider profile of organisation ``org_id``, if it has one."""
    return session.scalar(select(Provider.id).where(Provider.org_id == org_id))


def provider_names(session: Session) -> dict[int, str]:
    """Every provider's Chinese name by id (for statements and exports)."""
    return {int(pid): str(name) for pid, name in session.execute(select(Provider.id, Provider.name_zh))}
