"""Who is acting, and what they may do: roles, organisation kinds, scopes and ``authorize``.

Every service function calls ``authorize(actor, action, ...)`` before it reads or changes
anything; routes never repeat these checks. The rules live in one table (``_RULES``) so that the
role x action matrix in the tests reads straight off it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from zhishe.core.errors import Forbidden, Invalid
from zhishe.core.i18n import T

__all__ = [
    "MEMBER_KINDS",
    "SCOPES",
    "STAFF_ROLES",
    "Actor",
    "OrgKind",
    "Role",
    "authorize",
    "can",
    "hash_password",
    "system_actor",
    "verify_password",
]


class OrgKind(StrEnum):
    """Kinds of organisation."""

    DATA_BUREAU = "data_bureau"
    DEPARTMENT = "department"
    OPERATOR = "operator"
    SERVICE_PROVIDER = "service_provider"
    CLINIC = "clinic"
    COMMUNITY_COMMITTEE = "community_committee"
    PUBLIC_DEVELOPER = "public_developer"


class Role(StrEnum):
    """Roles a user holds inside their organisation."""

    ADMIN = "admin"
    STEWARD = "steward"
    ANALYST = "analyst"
    DISPATCHER = "dispatcher"
    RESIDENT = "resident"
    PROVIDER_STAFF = "provider_staff"


#: Organisations that take part in government data sharing (the exchange).
MEMBER_KINDS = frozenset(
    {OrgKind.DATA_BUREAU, OrgKind.DEPARTMENT, OrgKind.OPERATOR, OrgKind.CLINIC, OrgKind.COMMUNITY_COMMITTEE}
)
#: Roles that work with internal data.
STAFF_ROLES = frozenset({Role.ADMIN, Role.STEWARD, Role.ANALYST, Role.DISPATCHER})

#: Token scopes, and what each allows.
SCOPES: dict[str, str] = {
    "catalog:read": "read dataset metadata and the rows you may see",
    "catalog:write": "create datasets, import and change them",
    "accounts:read": "list organisations, users and tokens you may see",
    "accounts:write": "create and change organisations, users and tokens",
    "audit:read": "read audit events you may see",
    "exchange:read": "list sharing requests, grants and data issues you may see",
    "exchange:write": "file and answer sharing requests and data issues, manage subscriptions",
    "opendata:write": "open datasets, draft and publish releases, answer public data requests",
    "iot:read": "read the sites, devices and readings you may see",
    "iot:write": "provision sites and devices, send readings, handle energy alerts and events",
    "participation:read": "read work orders, queues and incidents you may see",
    "participation:write": "file reports and suggestions, work and dispatch orders, run incidents",
    "services:read": "browse listings, read your bookings, your provider's orders and statements",
    "services:write": "book, pay, review and dispute; manage your provider's listings and orders",
    "finance:read": "read the ledger, settlements, revenue streams and the profit model",
    "finance:write": "post operating costs, manage memberships, ads, data plans and energy fees",
}

_SCOPE_OF_ACTION = {
    "org.read": "accounts:read",
    "org.write": "accounts:write",
    "user.read": "accounts:read",
    "user.write": "accounts:write",
    "token.read": "accounts:read",
    "token.write": "accounts:write",
    "audit.read": "audit:read",
    "audit.verify": "audit:read",
    "dataset.read": "catalog:read",
    "dataset.write": "catalog:write",
    "exchange.read": "exchange:read",
    "exchange.request": "exchange:write",
    "exchange.answer": "exchange:write",
    "exchange.calendar": "exchange:write",
    "exchange.bureau": "exchange:read",
    "opendata.publish": "opendata:write",
    "opendata.answer": "opendata:write",
    "iot.read": "iot:read",
    "iot.manage": "iot:write",
    "iot.ingest": "iot:write",
    "iot.operate": "iot:write",
    "participation.report": "participation:write",
    "participation.read": "participation:read",
    "participation.work": "participation:write",
    "participation.dispatch": "participation:write",
    "participation.configure": "participation:write",
    "services.browse": "services:read",
    "services.book": "services:write",
    "services.provide": "services:write",
    "services.provider_read": "services:read",
    "services.operate": "services:write",
    "finance.read": "finance:read",
    "finance.statement": "finance:read",
    "finance.manage": "finance:write",
    "finance.buy": "finance:write",
}

_ROLE_RANK = {
    Role.RESIDENT: 0,
    Role.PROVIDER_STAFF: 0,
    Role.ANALYST: 1,
    Role.DISPATCHER: 1,
    Role.STEWARD: 2,
    Role.ADMIN: 3,
}


@dataclass(frozen=True, slots=True)
class Actor:
    """The one doing something: a user through the web, a token, or the local CLI."""

    user_id: int | None
    username: str
    org_id: int | None
    org_kind: str | None
    role: str
    via: str = "web"  # web | token | cli
    scopes: frozenset[str] | None = None  # None: every scope the role allows
    token_id: int | None = None
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def is_platform_admin(self) -> bool:
        """An admin of the data bureau, or the local system operator."""
        return self.role == Role.ADMIN and (self.org_kind == OrgKind.DATA_BUREAU or self.via == "cli")

    @property
    def is_staff(self) -> bool:
        """Works with internal data (not a resident or provider staff)."""
        return self.role in STAFF_ROLES

    @property
    def is_member(self) -> bool:
        """Belongs to an organisation that takes part in data sharing."""
        return self.org_kind in MEMBER_KINDS or self.via == "cli"

    def outranks_or_equals(self, role: str) -> bool:
        """Whether this actor may hand out ``role`` (never more than their own)."""
        return _ROLE_RANK.get(Role(self.role), -1) >= _ROLE_RANK.get(Role(role), 99)


def system_actor(name: str = "system") -> Actor:
    """The local operator using the CLI on the server: a platform admin, audited as such."""
    return Actor(user_id=None, username=f"cli:{name}", org_id=None, org_kind=None, role=Role.ADMIN, via="cli")


def _rule(actor: Actor, action: str, org_id: int | None) -> bool:
    own = org_id is not None and org_id == actor.org_id
    admin = actor.role == Role.ADMIN
    match action:
        case "org.read":
            return actor.is_staff or own
        case "org.write":
            return actor.is_platform_admin
        case "user.read" | "user.write" | "token.write" | "token.read":
            return actor.is_platform_admin or (admin and own)
        case "audit.read":
            return actor.is_platform_admin or (actor.role in {Role.ADMIN, Role.STEWARD} and actor.is_staff)
        case "audit.verify":
            return actor.is_platform_admin
        case "dataset.read":
            return actor.is_platform_admin or (actor.is_staff and actor.is_member)
        case "dataset.write":
            return actor.is_platform_admin or (actor.role in {Role.ADMIN, Role.STEWARD} and own)
        case "exchange.read":
            return actor.is_platform_admin or (actor.is_staff and actor.is_member and (own or org_id is None))
        case "exchange.request":
            return actor.is_staff and actor.is_member and actor.org_id is not None and (own or org_id is None)
        case "exchange.answer":
            return actor.is_platform_admin or (actor.role in {Role.ADMIN, Role.STEWARD} and own)
        case "exchange.calendar":
            return actor.is_platform_admin
        case "exchange.bureau":
            return actor.is_platform_admin or (actor.is_staff and actor.org_kind == OrgKind.DATA_BUREAU)
        case "opendata.publish":
            return actor.is_platform_admin or (actor.role in {Role.ADMIN, Role.STEWARD} and own)
        case "opendata.answer":
            return (
                actor.is_platform_admin
                or (actor.role in {Role.ADMIN, Role.STEWARD} and own)
                or (actor.is_staff and actor.org_kind == OrgKind.DATA_BUREAU)
            )
        case "opendata.develop":
            return actor.user_id is not None
        case "iot.read":
            return actor.is_platform_admin or (actor.is_staff and own)
        case "iot.manage":
            return actor.is_platform_admin or (actor.role in {Role.ADMIN, Role.STEWARD} and own)
        case "iot.ingest":
            return actor.is_platform_admin or (actor.role in {Role.ADMIN, Role.STEWARD} and own)
        case "iot.operate":
            return actor.is_platform_admin or (actor.is_staff and own)
        case "participation.report":
            return actor.user_id is not None or actor.via == "cli"
        case "participation.read":
            return actor.is_platform_admin or (actor.is_staff and (own or _bureau(actor)))
        case "participation.work":
            return actor.is_platform_admin or (actor.is_staff and own)
        case "participation.dispatch":
            return actor.is_platform_admin or (
                actor.role in {Role.ADMIN, Role.STEWARD, Role.DISPATCHER} and (own or _bureau(actor))
            )
        case "participation.configure":
            return actor.is_platform_admin or (
                actor.role in {Role.ADMIN, Role.STEWARD}
                and actor.org_kind in {OrgKind.DATA_BUREAU, OrgKind.OPERATOR}
            )
        case "services.browse" | "services.book":
            return actor.user_id is not None or actor.via == "cli"
        case "services.provide":
            return actor.is_platform_admin or (
                own
                and actor.org_kind in {OrgKind.SERVICE_PROVIDER, OrgKind.CLINIC}
                and actor.role in {Role.ADMIN, Role.STEWARD, Role.PROVIDER_STAFF, Role.DISPATCHER}
            )
        case "services.provider_read":
            return (
                actor.is_platform_admin
                or _operator(actor)
                or (own and actor.org_kind in {OrgKind.SERVICE_PROVIDER, OrgKind.CLINIC})
            )
        case "services.operate":
            return actor.is_platform_admin or (
                _operator(actor) and actor.role in {Role.ADMIN, Role.STEWARD, Role.DISPATCHER}
            )
        case "finance.read":
            return actor.is_platform_admin or _operator(actor)
        case "finance.statement":
            return (
                actor.is_platform_admin
                or _operator(actor)
                or (own and actor.org_kind in {OrgKind.SERVICE_PROVIDER, OrgKind.CLINIC} and admin)
            )
        case "finance.manage":
            return actor.is_platform_admin or (_operator(actor) and actor.role in {Role.ADMIN, Role.STEWARD})
        case "finance.buy":
            return (
                actor.is_platform_admin
                or (_operator(actor) and actor.role in {Role.ADMIN, Role.STEWARD})
                or (own and admin and actor.org_id is not None)
            )
    raise Invalid(f"unknown action {action!r}")


def _operator(actor: Actor) -> bool:
    """Staff of the operating company."""
    return actor.is_staff and actor.org_kind == OrgKind.OPERATOR


def _bureau(actor: Actor) -> bool:
    return actor.is_staff and actor.org_kind == OrgKind.DATA_BUREAU


def can(actor: Actor, action: str, *, org_id: int | None = None) -> bool:
    """Whether ``actor`` may do ``action`` on an object owned by ``org_id`` (scopes included)."""
    scope = _SCOPE_OF_ACTION.get(action)
    if actor.scopes is not None and scope is not None and scope not in actor.scopes:
        return False
    return _rule(actor, action, org_id)


_REFUSALS = {
    "org.read": T("you may not see organisations"),
    "org.write": T("only data bureau administrators may create or change organisations"),
    "user.read": T("you may not see the users of this organisation"),
    "user.write": T("you may not manage the users of this organisation"),
    "token.read": T("you may not manage this organisation's tokens"),
    "token.write": T("you may not manage this organisation's tokens"),
    "audit.read": T("you may not read the audit log"),
    "audit.verify": T("only data bureau administrators may verify the audit chain"),
    "dataset.read": T("your role may not read the data catalog"),
    "dataset.write": T("only stewards and administrators of the owning organisation may change this dataset"),
    "exchange.read": T("you may not see this organisation's sharing requests"),
    "exchange.request": T("only staff of a member organisation may request data for it"),
    "exchange.answer": T("only stewards and administrators of the owning organisation may answer this"),
    "exchange.calendar": T("only data bureau administrators may edit the working-day calendar"),
    "exchange.bureau": T("only the data bureau may see this"),
    "opendata.publish": T(
        "only stewards and administrators of the owning organisation may publish its open data"
    ),
    "opendata.answer": T("only the owning organisation or the data bureau may answer this data request"),
    "opendata.develop": T("sign in to register app tokens"),
    "iot.read": T("you may not see this site's devices and readings"),
    "iot.manage": T("only stewards and administrators of the operating organisation may provision devices"),
    "iot.ingest": T("you may not send readings for this site"),
    "iot.operate": T("only staff of the operating organisation may do this"),
    "participation.report": T("sign in to file a report"),
    "participation.read": T(
        "only staff of the organisation working this order, or the data bureau, may see it"
    ),
    "participation.work": T("only staff of the organisation working this order may do this"),
    "participation.dispatch": T(
        "only dispatchers, stewards and administrators of the organisation working this order, "
        "or of the data bureau, may do this"
    ),
    "services.browse": T("sign in to use community services"),
    "services.book": T("sign in to book community services"),
    "services.provide": T("only staff of this provider may do this"),
    "services.provider_read": T("only this provider's staff or the operator may see this"),
    "services.operate": T("only the operator's dispatchers, stewards and administrators may do this"),
    "finance.read": T("only the operator's staff may see the operator's finances"),
    "finance.statement": T("only the operator or this provider's administrators may see its statements"),
    "finance.manage": T("only the operator's stewards and administrators may do this"),
    "finance.buy": T("only an administrator of the buying organisation, or the operator, may do this"),
    "participation.configure": T(
        "only stewards and administrators of the data bureau or the operator may configure categories and routing"
    ),
}


def authorize(actor: Actor, action: str, *, org_id: int | None = None, what: str = "") -> None:
    """Raise ``Forbidden`` unless ``actor`` may do ``action`` on an object owned by ``org_id``."""
    if not can(actor, action, org_id=org_id):
        scope = _SCOPE_OF_ACTION.get(action)
        if actor.scopes is not None and scope is not None and scope not in actor.scopes:
            raise Forbidden(
                T("this token lacks the scope {scope}", scope=repr(scope)),
                detail={"action": action, "scope": scope},
            )
        detail = {"action": action, **({"object": what} if what else {})}
        raise Forbidden(_REFUSALS.get(action, T("you may not do this")), detail=detail)


_hasher = PasswordHash((Argon2Hasher(),))


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``."""
    if len(password) < 8:
        raise Invalid("a password needs at least 8 characters", detail={"field": "password"})
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    """Whether ``password`` matches ``password_hash`` (constant-time)."""
    try:
        return _hasher.verify(password, password_hash)
    except Exception:  # a malformed stored hash is a failed login, not a crash
        return False
