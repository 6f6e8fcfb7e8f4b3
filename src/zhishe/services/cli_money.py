"""Commands of `zhishe services` (registered by ``services/cli.py``): vouchers, wallet top-ups and
the gateway's public key."""

from __future__ import annotations

from pathlib import Path

import typer

from zhishe.core.cli_support import AS_USER, console, handle_errors, resolve_actor, transaction
from zhishe.core.errors import Invalid, NotFound
from zhishe.finance.money import yuan_label

__all__ = ["register"]


def vouchers_issue() -> None:
    """Issue this period's vouchers of every running programme to every eligible resident (idempotent)."""
    from zhishe.services import vouchers

    with transaction() as session:
        console.print(f"{vouchers.issue_due(session)} vouchers issued")


def wallet_top_up(
    user: str = typer.Argument(..., help="The resident's username."),
    amount_fen: int = typer.Argument(..., help="The amount in fen (10000 is ¥100)."),
    via: str = typer.Option("bank", "--via", help="bank (transfer) or cash (at the service desk)."),
    as_user: str = AS_USER,
) -> None:
    """Put money into a resident's wallet at the service desk."""
    from zhishe.core.accounts.service import get_user_by_username
    from zhishe.services import wallet

    if via not in ("bank", "cash"):
        raise Invalid("--via must be bank or cash", detail={"option": "--via"})
    with transaction() as session:
        actor = resolve_actor(session, as_user)
        target = get_user_by_username(session=session, username=user)
        if target is None:
            raise NotFound(f"there is no user {user!r}", detail={"argument": "user"})
        wallet.top_up(session=session, actor=actor, user_id=target.id, amount_fen=amount_fen, via=via)
        balance = wallet.balance(session=session, actor=actor, user_id=target.id)
        console.print(f"{user}'s wallet now holds {yuan_label(balance)}")


def gateway_key(path: Path = typer.Argument(..., help="The gateway's RSA public key, PEM.")) -> None:
    """Install the online gateway's public key, which verifies its callbacks."""
    from zhishe.services import gateway

    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise Invalid(f"cannot read the key file: {exc}", detail={"argument": "path"}) from exc
    key = gateway.install_public_key(text)
    console.print(f"gateway key installed ({key.n.bit_length()} bits) at {gateway.public_key_path()}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("vouchers-issue")(handle_errors(vouchers_issue))
    app.command("wallet-top-up")(handle_errors(wallet_top_up))
    app.command("gateway-key")(handle_errors(gateway_key))
