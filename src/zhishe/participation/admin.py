"""Configuring participation: report categories with their questions and SLAs, teams, routing rules,
and the response templates staff reply with. Categories can be loaded from a JSON file shaped like
Open311 service definitions (``load_categories``)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.accounts import service as accounts
from zhishe.core.accounts.models import User
from zhishe.core.areas.models import Area
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, authorize
from zhishe.core.errors import Invalid, NotFound
from zhishe.core.i18n import T
from zhishe.participation.models import (
    Category,
    CategoryAttribute,
    ResponseTemplate,
    RoutingRule,
    Team,
    TeamMember,
)
from zhishe.participation.service import DATATYPES

__all__ = [
    "add_routing_rule",
    "create_team",
    "create_template",
    "delete_routing_rule",
    "list_routing_rules",
    "list_teams",
    "list_templates",
    "load_categories",
    "put_category",
]

_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_TYPES = ("realtime", "batch", "blackbox")


def _text(spec: Mapping[str, Any], key: str, field: str, limit: int, required: bool = False) -> str:
    value = spec.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise Invalid(T("{field} must be text", field=field), detail={"field": field})
    value = value.strip()
    if required and not value:
        raise Invalid(T("{field} is required", field=field), detail={"field": field})
    if len(value) > limit:
        raise Invalid(T("{field} has at most {n} characters", field=field, n=limit), detail={"field": field})
    return value


def _attribute(spec: Mapping[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(spec, Mapping):
        raise Invalid(T("{where} must be an object", where=where), detail={"field": where})
    code = _text(spec, "code", f"{where}.code", 64, required=True)
    if not _CODE.match(code):
        raise Invalid(
            T("{where}.code may hold letters, digits, _ . - only", where=where),
            detail={"field": f"{where}.code"},
        )
    datatype = spec.get("datatype")
    if datatype not in DATATYPES:
        raise Invalid(
            T("{where}.datatype must be one of {choices}", where=where, choices=", ".join(DATATYPES)),
            detail={"field": f"{where}.datatype"},
        )
    values = spec.get("values") or []
    if not isinstance(values, list):
        raise Invalid(T("{where}.values must be a list", where=where), detail={"field": f"{where}.values"})
    clean_values = []
    for i, value in enumerate(values):
        if not isinstance(value, Mapping) or not str(value.get("key", "")).strip():
            raise Invalid(
                T("{where}.values[{i}] needs a key and a name", where=where, i=i),
                detail={"field": f"{where}.values"},
            )
        clean_values.append(
            {"key": str(value["key"]).strip()[:100], "name": str(value.get("name", value["key"]))[:200]}
        )
    keys = [v["key"] for v in clean_values]
    if len(set(keys)) != len(keys):
        raise Invalid(T("{where}.values has a key twice", where=where), detail={"field": f"{where}.values"})
    if datatype.endswith("valuelist") and not clean_values:
        raise Invalid(
            T("{where} is a list question without values", where=where), detail={"field": f"{where}.values"}
        )
    order = spec.get("order", 1)
    if not isinstance(order, int) or isinstance(order, bool) or not 0 <= order <= 10_000:
        raise Invalid(
            T("{where}.order must be a whole number", where=where), detail={"field": f"{where}.order"}
        )
    return {
        "code": code,
        "datatype": datatype,
        "variable": bool(spec.get("variable", True)),
        "required": bool(spec.get("required", False)),
        "datatype_description": _text(spec, "datatype_description", f"{where}.datatype_description", 300),
        "order": order,
        "description": _text(spec, "description", f"{where}.description", 2000),
        "values": clean_values,
    }


def put_category(*, session: Session, actor: Actor, spec: Mapping[str, Any]) -> Category:
    """Create or replace a category and its questions from an Open311-shaped definition plus SLA fields:
    ``{service_code, service_name, name_en?, description?, description_en?, group?, keywords?, type?,
    sla_amount?, sla_unit?, nearby_metres?, active?, attributes: [...]}``."""
    authorize(actor, "participation.configure", what="report categories")
    code = _text(spec, "service_code", "service_code", 64, required=True)
    if not _CODE.match(code):
        raise Invalid(
            T("service_code may hold letters, digits, _ . - only"), detail={"field": "service_code"}
        )
    kind = spec.get("type", "realtime")
    if kind not in _TYPES:
        raise Invalid(T("type must be realtime, batch or blackbox"), detail={"field": "type"})
    unit = spec.get("sla_unit", "days")
    if unit not in {"hours", "days"}:
        raise Invalid(T("sla_unit must be hours or days"), detail={"field": "sla_unit"})
    amount = spec.get("sla_amount", 3)
    if not isinstance(amount, int) or isinstance(amount, bool) or not 1 <= amount <= 1000:
        raise Invalid(T("sla_amount must be a whole number from 1 to 1000"), detail={"field": "sla_amount"})
    metres = spec.get("nearby_metres", 50)
    if not isinstance(metres, int) or isinstance(metres, bool) or not 1 <= metres <= 5000:
        raise Invalid(
            T("nearby_metres must be a whole number from 1 to 5000"), detail={"field": "nearby_metres"}
        )
    raw_attributes = spec.get("attributes") or []
    if not isinstance(raw_attributes, list):
        raise Invalid(T("attributes must be a list"), detail={"field": "attributes"})
    attributes = [_attribute(a, f"attributes[{i}]") for i, a in enumerate(raw_attributes)]
    codes = [a["code"] for a in attributes]
    if len(set(codes)) != len(codes):
        raise Invalid(T("two questions share a code"), detail={"field": "attributes"})
    keywords = spec.get("keywords", "")
    if isinstance(keywords, list):
        keywords = ",".join(str(k) for k in keywords)
    fields = {
        "name_zh": _text(spec, "service_name", "service_name", 200, required=True),
        "name_en": _text(spec, "name_en", "name_en", 200),
        "description_zh": _text(spec, "description", "description", 2000),
        "description_en": _text(spec, "description_en", "description_en", 2000),
        "group": _text(spec, "group", "group", 100),
        "keywords": str(keywords)[:500],
        "type": kind,
        "sla_amount": amount,
        "sla_unit": unit,
        "nearby_metres": metres,
        "active": bool(spec.get("active", True)),
    }
    category = session.scalar(select(Category).where(Category.code == code))
    created = category is None
    if category is None:
        category = Category(code=code, created_at=clock.now(), **fields)
        session.add(category)
        session.flush()
    else:
        for key, value in fields.items():
            setattr(category, key, value)
        session.execute(delete(CategoryAttribute).where(CategoryAttribute.category_id == category.id))
    session.add_all(CategoryAttribute(category_id=category.id, **a) for a in attributes)
    session.flush()
    record(
        session=session,
        actor=actor,
        action="participation.category.create" if created else "participation.category.update",
        object_type="participation_category",
        object_id=category.code,
        detail={"attributes": codes, "sla": f"{amount} {unit}"},
    )
    return category


def load_categories(*, session: Session, actor: Actor, specs: Sequence[Mapping[str, Any]]) -> list[Category]:
    """Put every category of a file; all or nothing (the caller's transaction)."""
    if not isinstance(specs, list):
        raise Invalid(T("the file must hold a list of categories"), detail={"field": "file"})
    return [put_category(session=session, actor=actor, spec=spec) for spec in specs]


def create_team(
    *,
    session: Session,
    actor: Actor,
    org_id: int,
    name: str,
    lead_user_id: int | None,
    member_ids: Sequence[int] = (),
) -> Team:
    """A team of an organisation, with its lead (first rung of the escalation ladder)."""
    accounts.get_org_or_raise(session=session, org_id=org_id)
    authorize(actor, "participation.dispatch", org_id=org_id, what="teams")
    name = name.strip()
    if not name or len(name) > 200:
        raise Invalid(T("a team needs a name of at most 200 characters"), detail={"field": "name"})
    people = {*member_ids, *([lead_user_id] if lead_user_id else [])}
    for user_id in people:
        user = session.get(User, user_id)
        if user is None or user.org_id != org_id:
            raise Invalid(
                T("user #{id} is not staff of this organisation", id=user_id), detail={"field": "member_ids"}
            )
    team = Team(org_id=org_id, name=name, lead_user_id=lead_user_id, created_at=clock.now())
    session.add(team)
    session.flush()
    session.add_all(TeamMember(team_id=team.id, user_id=u) for u in people)
    record(
        session=session,
        actor=actor,
        action="participation.team.create",
        object_type="participation_team",
        object_id=team.id,
        object_org_id=org_id,
        detail={"name": name, "members": sorted(people)},
    )
    return team


def list_teams(*, session: Session, actor: Actor, org_id: int) -> list[Team]:
    """An organisation's teams."""
    authorize(actor, "participation.read", org_id=org_id, what="teams")
    return list(session.scalars(select(Team).where(Team.org_id == org_id).order_by(Team.name)))


def add_routing_rule(
    *,
    session: Session,
    actor: Actor,
    category_code: str | None,
    area_code: str | None,
    org_id: int,
    team_id: int | None = None,
    assignee_user_id: int | None = None,
    priority: int = 100,
) -> RoutingRule:
    """Category x area -> department and team, or a grid worker."""
    authorize(actor, "participation.configure", what="routing rules")
    accounts.get_org_or_raise(session=session, org_id=org_id)
    category_id = area_id = None
    if category_code:
        category = session.scalar(select(Category).where(Category.code == category_code))
        if category is None:
            raise Invalid(
                T("no report category {code}", code=repr(category_code)), detail={"field": "category"}
            )
        category_id = category.id
    if area_code:
        area = session.scalar(select(Area).where(Area.code == area_code))
        if area is None:
            raise Invalid(
                T("no area {code} in the address list", code=repr(area_code)), detail={"field": "area"}
            )
        area_id = area.id
    if team_id is not None:
        team = session.get(Team, team_id)
        if team is None or team.org_id != org_id:
            raise Invalid(
                T("team #{id} is not a team of that organisation", id=team_id), detail={"field": "team_id"}
            )
    if assignee_user_id is not None:
        user = session.get(User, assignee_user_id)
        if user is None or user.org_id != org_id:
            raise Invalid(
                T("user #{id} is not staff of that organisation", id=assignee_user_id),
                detail={"field": "assignee_user_id"},
            )
    if not -1_000_000 <= priority <= 1_000_000:
        raise Invalid(T("priority is out of range"), detail={"field": "priority"})
    rule = RoutingRule(
        category_id=category_id,
        area_id=area_id,
        org_id=org_id,
        team_id=team_id,
        assignee_user_id=assignee_user_id,
        priority=priority,
    )
    session.add(rule)
    session.flush()
    record(
        session=session,
        actor=actor,
        action="participation.routing.create",
        object_type="participation_routing_rule",
        object_id=rule.id,
        object_org_id=org_id,
        detail={"category": category_code, "area": area_code, "team_id": team_id},
    )
    return rule


def list_routing_rules(*, session: Session, actor: Actor) -> list[RoutingRule]:
    """Every routing rule (configuration is not personal; staff may read it)."""
    if not actor.is_staff:
        authorize(actor, "participation.configure", what="routing rules")
    return list(session.scalars(select(RoutingRule).order_by(RoutingRule.priority, RoutingRule.id)))


def delete_routing_rule(*, session: Session, actor: Actor, rule_id: int) -> None:
    """Remove a routing rule."""
    authorize(actor, "participation.configure", what="routing rules")
    rule = session.get(RoutingRule, rule_id)
    if rule is None:
        raise NotFound(T("no routing rule #{id}", id=rule_id))
    session.delete(rule)
    record(
        session=session,
        actor=actor,
        action="participation.routing.delete",
        object_type="participation_routing_rule",
        object_id=rule_id,
        object_org_id=rule.org_id,
    )


def create_template(
    *, session: Session, actor: Actor, org_id: int, title: str, text: str
) -> ResponseTemplate:
    """A canned reply of an organisation."""
    authorize(actor, "participation.dispatch", org_id=org_id, what="response templates")
    title, text = title.strip(), text.strip()
    if not title or len(title) > 200:
        raise Invalid(T("a template needs a title of at most 200 characters"), detail={"field": "title"})
    if not text or len(text) > 4000:
        raise Invalid(T("a template needs a text of at most 4000 characters"), detail={"field": "text"})
    row = ResponseTemplate(org_id=org_id, title=title, text=text)
    session.add(row)
    session.flush()
    record(
        session=session,
        actor=actor,
        action="participation.template.create",
        object_type="participation_template",
        object_id=row.id,
        object_org_id=org_id,
    )
    return row


def list_templates(*, session: Session, actor: Actor, org_id: int) -> list[ResponseTemplate]:
    """An organisation's canned replies."""
    authorize(actor, "participation.read", org_id=org_id, what="response templates")
    return list(
        session.scalars(
            select(ResponseTemplate).where(ResponseTemplate.org_id == org_id).order_by(ResponseTemplate.title)
        )
    )
