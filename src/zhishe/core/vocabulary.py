"""Words that pages translate from data values (kinds, roles, states...), listed so that message
extraction finds them. ``N_`` marks a string for translation without translating it here."""

from __future__ import annotations

__all__ = ["REASON_PHRASES", "VOCABULARY"]


def N_(message: str) -> str:
    """Mark ``message`` for extraction."""
    return message


VOCABULARY = (
    # organisation kinds
    N_("data_bureau"),
    N_("department"),
    N_("operator"),
    N_("service_provider"),
    N_("clinic"),
    N_("community_committee"),
    N_("public_developer"),
    # roles
    N_("admin"),
    N_("steward"),
    N_("analyst"),
    N_("dispatcher"),
    N_("resident"),
    N_("provider_staff"),
    # sharing classes
    N_("unconditional"),
    N_("conditional"),
    N_("not_shared"),
    # cadences
    N_("continuous"),
    N_("hourly"),
    N_("daily"),
    N_("weekly"),
    N_("monthly"),
    N_("quarterly"),
    N_("annual"),
    N_("irregular"),
    N_("never"),
    # column types and classifications
    N_("string"),
    N_("integer"),
    N_("decimal"),
    N_("boolean"),
    N_("date"),
    N_("datetime"),
    N_("point"),
    N_("public"),
    N_("internal"),
    N_("personal"),
    N_("sensitive"),
    # import modes, job states and stages
    N_("append"),
    N_("replace"),
    N_("upsert"),
    N_("staged"),
    N_("running"),
    N_("done"),
    N_("failed"),
    N_("queued"),
    N_("reading"),
    N_("validating"),
    N_("writing"),
    N_("profiling"),
    # definition change fields
    N_("type"),
    N_("unit"),
    N_("description"),
    N_("classification"),
    N_("is_key"),
    N_("added"),
    N_("removed"),
    # error types
    N_("invalid"),
    N_("unauthenticated"),
    N_("forbidden"),
    N_("not_found"),
    N_("conflict"),
    N_("too_large"),
    N_("rate_limited"),
    N_("method_not_allowed"),
    N_("error"),
    # themes of the demo and common catalogs
    N_("population"),
    N_("energy"),
    N_("environment"),
    N_("transport"),
    N_("public-safety"),
    N_("health"),
    N_("urban-management"),
    N_("economy"),
    N_("government"),
    # sharing requests, access modes and grants
    N_("draft"),
    N_("submitted"),
    N_("approved"),
    N_("narrowed"),
    N_("rejected"),
    N_("active"),
    N_("expired"),
    N_("revoked"),
    N_("query"),
    N_("export"),
    N_("subscription"),
    # data issues
    N_("open"),
    N_("accepted"),
    N_("needs_info"),
    N_("fixed"),
    N_("confirmed"),
    N_("reopened"),
    N_("value"),
    N_("missing_period"),
    N_("definition"),
    # the working-day calendar and webhook deliveries
    N_("shipped"),
    N_("edited"),
    N_("pending"),
    N_("delivered"),
)


#: How an import report explains a bad value: "'<value>' <phrase>". Pages translate the phrase.
REASON_PHRASES = (
    N_("has a latitude outside [-90, 90]"),
    N_("has a longitude outside [-180, 180]"),
    N_("is not a boolean (use true/false, yes/no, 1/0 or 是/否)"),
    N_("is not a date (expected YYYY-MM-DD)"),
    N_("is not a decimal number"),
    N_("is not a finite number"),
    N_("is not a real calendar date"),
    N_("is not a real date and time"),
    N_("is not an ISO 8601 date and time"),
    N_("is not an integer"),
    N_("is not valid text"),
    N_("is outside the integer range"),
    N_("is outside the years 1 to 9999"),
    N_("is too large for a decimal number"),
    N_('is not a point (expected "lat,lon", POINT(lon lat) or {"lat": …, "lon": …})'),
    N_("is a JSON object or array; only point columns accept nested values"),
)
