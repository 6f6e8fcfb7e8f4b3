"""Commands of `zhishe services` (registered by ``services/cli.py``): the catalogue's categories,
providers and listings, and the licence sweep."""

from __future__ import annotations

import typer
from rich.table import Table

from zhishe.core.cli_support import AS_USER, console, handle_errors, resolve_actor, transaction
from zhishe.core.errors import Invalid
from zhishe.finance.money import yuan_label

__all__ = ["register"]


def categories() -> None:
    """List the service categories with their default commission and required licences."""
    from zhishe.services import providers

    with transaction() as session:
        table = Table("code", "name", "commission", "licences", "active")
        for category in providers.list_categories(session, active_only=False):
            table.add_row(
                category.code,
                category.name_zh,
                f"{category.commission_bps / 100:.2f}%",
                ", ".join(category.licence_kinds or []) or "-",
                "yes" if category.active else "no",
            )
        console.print(table)


def providers_command(
    status: str = typer.Option(None, "--status", help="Only providers with this status: active or suspended"),
    as_user: str = AS_USER,
) -> None:
    """List the providers with their radius, categories, rating and contract commissions."""
    from zhishe.services import providers

    with transaction() as session:
        actor = resolve_actor(session, as_user)
        table = Table("id", "name", "status", "radius m", "categories", "rating", "overrides")
        for provider in providers.list_providers(session, actor=actor, status=status):
            count = provider.rating_count or 0
            rating = f"{provider.rating_sum / count:.2f} ({count})" if count else "-"
            overrides = ", ".join(f"{k}={v}" for k, v in (provider.commission_overrides or {}).items()) or "-"
            table.add_row(
                str(provider.id),
                provider.name_zh,
                provider.status,
                str(provider.radius_m),
                ", ".join(provider.categories or []),
                rating,
                overrides,
            )
        console.print(table)


def listings_command(
    q: str = typer.Option(None, "--q", help="Search terms (each must appear; Chinese substrings work)"),
    category: str = typer.Option(None, "--category", help="Only listings in this category code"),
    status: str = typer.Option(None, "--status", help="draft, active, suspended or withdrawn"),
    as_user: str = AS_USER,
) -> None:
    """List every provider's listings (the operator's view), with their server-computed base price."""
    from zhishe.services import listings, pricing

    with transaction() as session:
        actor = resolve_actor(session, as_user)
        table = Table("id", "title", "provider", "category", "process", "status", "from")
        for listing in listings.list_all(session, actor=actor, q=q, category=category, status=status):
            try:
                minimum = int((listing.price_rules or {}).get("min_units", 1) or 1)
                price = yuan_label(
                    pricing.quote(
                        session, listing=listing, resident_user_id=None, quantity=max(1, minimum), options={}
                    ).price_fen
                )
            except (Invalid, AttributeError, TypeError, ValueError):  # unpriceable rules: still listed
                price = "-"
            table.add_row(
                str(listing.id),
                listing.title_zh,
                str(listing.provider_id),
                listing.category_code,
                listing.process,
                listing.status + (f" ({listing.suspended_reason})" if listing.suspended_reason else ""),
                price,
            )
        console.print(table)


def licence_sweep() -> None:
    """Run the licence sweep now: reminders 30 days ahead, suspensions for lapsed licences, reinstatements."""
    from zhishe.core import clock
    from zhishe.services import licences

    with transaction() as session:
        counts = licences.sweep(session, clock.now())
    console.print(
        f"{counts['reminded']} reminded, {counts['suspended']} listings suspended, "
        f"{counts['reinstated']} reinstated"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("categories")(handle_errors(categories))
    app.command("providers")(handle_errors(providers_command))
    app.command("listings")(handle_errors(listings_command))
    app.command("licence-sweep")(handle_errors(licence_sweep))
