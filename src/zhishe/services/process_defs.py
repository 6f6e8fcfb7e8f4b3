"""Declared processes: the TOML files under ``services/processes/`` that define each kind of
marketplace transaction, their parsing and validation, and the registries of the actions and
guards they name. ``engine`` runs them.

The format of a process file::

    name = "instant_booking"                 # what listings name in ``Listing.process``
    title_zh = "即时预订"
    title_en = "Instant booking"
    initial = "pending_payment"              # the state a new transaction starts in
    finals = ["reviewed", "cancelled"]       # states with no way out
    start_actions = ["quote_price", "take_slot"]   # run when a resident starts a transaction
    modules = ["zhishe.services.group_buy"]  # optional: modules that register the actions used

    [states]                                 # every state, its FHIR Appointment status and labels
    pending_payment = { fhir = "pending", zh = "待支付", en = "waiting for payment" }

    [[transitions]]
    name = "pay"                             # the same name may appear again for another actor
    from = ["pending_payment"]               # the states it leaves from
    to = "booked"
    actor = "resident"                       # or a list: resident | provider | operator | timer | system
    actions = ["hold", "notify_provider"]    # run in order; any error aborts the transition
    guard = "slot_started"                   # optional: a registered check that must pass
    after = "PT15M"                          # timers only: ISO 8601 duration after entering the state,
                                             # or "setting:accept_hours:PT24H" (a listing setting,
                                             # in the unit its name ends with, else the default)
    zh = "支付"                              # labels of the button
    en = "pay"

Loading checks that every referenced state is declared, ``initial`` exists, every state is reachable
from ``initial`` and can reach a final state, every non-final state has a way out and final states
have none, every action and guard is registered, actors are known, timers carry a fixed duration
(days, hours, minutes, seconds: months and years have no fixed length) and every state maps to a
FHIR Appointment status. A bad file fails with a message naming the file and the state or
transition at fault.
"""

from __future__ import annotations

import importlib
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from zhishe.core.errors import NotFound
from zhishe.core.i18n import T

if TYPE_CHECKING:
    from zhishe.services.engine import Context

__all__ = [
    "ACTOR_KINDS",
    "BY_KINDS",
    "FHIR_STATUSES",
    "Delay",
    "Process",
    "ProcessError",
    "State",
    "Transition",
    "action",
    "action_fn",
    "get_process",
    "guard",
    "guard_fn",
    "load_processes",
    "parse_duration",
    "parse_process",
    "registered_actions",
]

PROCESS_DIR = Path(__file__).parent / "processes"
#: Who may take a transition. ``timer`` transitions fire on their own; ``system`` ones are fired by
#: code (a payment gateway's verified callback, a group forming).
ACTOR_KINDS = ("resident", "provider", "operator", "timer", "system")
#: The ``by`` values ``fire`` accepts: the actor kinds, and ``gateway`` (counted as ``system``).
BY_KINDS = (*ACTOR_KINDS, "gateway")
#: FHIR R4 Appointment.status values.
FHIR_STATUSES = (
    "proposed",
    "pending",
    "booked",
    "arrived",
    "fulfilled",
    "cancelled",
    "noshow",
    "entered-in-error",
    "checked-in",
    "waitlist",
)
_PROCESS_KEYS = {"name", "title_zh", "title_en", "initial", "finals", "start_actions", "modules", "states"}
_STATE_KEYS = {"fhir", "zh", "en"}
_TRANSITION_KEYS = {"name", "from", "to", "actor", "actions", "guard", "after", "zh", "en"}
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_DURATION = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
#: The longest timer a process may declare.
MAX_DELAY = timedelta(days=400)


class ProcessError(ValueError):
    """A process file is not a valid process; the message names the file and what is wrong."""


# --- the declared shape -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delay:
    """How long after entering a state a timer fires: fixed, or read from a listing setting."""

    default: timedelta
    setting: str = ""

    def resolve(self, settings: Mapping[str, Any]) -> timedelta:
        """The delay for a listing with ``settings`` (the default when the setting is absent or bad)."""
        if not self.setting or self.setting not in settings:
            return self.default
        value = settings[self.setting]
        try:
            if isinstance(value, str):
                found = parse_duration(value)
            elif isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                unit = self.setting.rsplit("_", 1)[-1]
                if unit not in ("minutes", "hours", "days"):
                    return self.default
                found = timedelta(**{unit: value})
            else:
                return self.default
        except (ValueError, KeyError, OverflowError):
            return self.default
        return found if timedelta(0) < found <= MAX_DELAY else self.default


@dataclass(frozen=True, slots=True)
class State:
    """A declared state: its FHIR Appointment status and its labels."""

    name: str
    fhir: str
    label_zh: str
    label_en: str

    def label(self, language: str) -> str:
        """The label in ``language`` (Chinese unless English is asked for)."""
        return self.label_en if language == "en" else self.label_zh


@dataclass(frozen=True, slots=True)
class Transition:
    """A declared transition."""

    name: str
    sources: tuple[str, ...]
    to: str
    actors: tuple[str, ...]
    actions: tuple[str, ...] = ()
    guard: str = ""
    delay: Delay | None = None
    label_zh: str = ""
    label_en: str = ""

    @property
    def is_timer(self) -> bool:
        """Whether the transition fires on its own after a delay."""
        return "timer" in self.actors

    def label(self, language: str) -> str:
        """The button label in ``language``."""
        return (self.label_en if language == "en" else self.label_zh) or self.name


@dataclass(frozen=True, slots=True)
class Process:
    """A validated process."""

    name: str
    title_zh: str
    title_en: str
    initial: str
    finals: frozenset[str]
    states: Mapping[str, State]
    transitions: tuple[Transition, ...]
    start_actions: tuple[str, ...]
    source: str

    def outgoing(self, state: str) -> list[Transition]:
        """The transitions that leave ``state``."""
        return [t for t in self.transitions if state in t.sources]

    def fhir_status(self, state: str) -> str:
        """The FHIR Appointment status of ``state``."""
        found = self.states.get(state)
        return found.fhir if found else "entered-in-error"

    def state_label(self, state: str, language: str) -> str:
        """A state's label in ``language`` (its name if it is not declared)."""
        found = self.states.get(state)
        return found.label(language) if found else state


# --- registries --------------------------------------------------------------------------------------


ActionFn = Callable[["Context"], None]
GuardFn = Callable[["Context"], str | None]
F = TypeVar("F", bound=Callable[..., Any])
_actions: dict[str, ActionFn] = {}
_guards: dict[str, GuardFn] = {}
#: Modules whose actions every process may use (imported before the first validation).
_CORE_MODULES = ("zhishe.services.transactions", "zhishe.services.reviews")


def action(name: str) -> Callable[[F], F]:
    """Register ``fn(ctx)`` as the action ``name`` that process files may list."""

    def register(fn: F) -> F:
        if not _NAME.match(name):
            raise ValueError(f"action name {name!r} must be lower_snake_case")
        _actions[name] = fn
        return fn

    return register


def guard(name: str) -> Callable[[F], F]:
    """Register ``fn(ctx) -> reason | None`` as a guard: a transition whose guard returns a reason
    is not available, and firing it is refused with that reason."""

    def register(fn: F) -> F:
        if not _NAME.match(name):
            raise ValueError(f"guard name {name!r} must be lower_snake_case")
        _guards[name] = fn
        return fn

    return register


def registered_actions() -> list[str]:
    """Names of every registered action (after importing the modules that register them)."""
    _import_modules(_CORE_MODULES, source="engine")
    return sorted(_actions)


# --- parsing and validation -----------------------------------------------------------------------------


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration with a fixed length (weeks, days, hours, minutes, seconds) as a timedelta."""
    value = text.strip().upper() if isinstance(text, str) else ""
    if re.match(r"^P(\d+Y|\d+M)", value) or (value.startswith("P") and "Y" in value):
        raise ValueError(f"duration {text!r}: months and years have no fixed length; write days, e.g. P30D")
    match = _DURATION.match(value)
    if not match or value in {"P", "PT"} or value.endswith("T"):
        raise ValueError(f"duration {text!r} is not an ISO 8601 duration such as PT15M, PT24H or P7D")
    weeks, days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    found = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    if found <= timedelta(0) or found > MAX_DELAY:
        raise ValueError(f"duration {text!r} must be more than zero and at most {MAX_DELAY.days} days")
    return found


def _parse_delay(text: Any, where: str) -> Delay:
    if not isinstance(text, str):
        raise ProcessError(f"{where}: 'after' must be a string such as \"PT15M\"")
    if text.startswith("setting:"):
        parts = text.split(":")
        if len(parts) != 3 or not re.match(r"^[a-z][a-z0-9_]*_(minutes|hours|days)$", parts[1]):
            raise ProcessError(
                f"{where}: 'after' = {text!r} must read \"setting:<name>_minutes|_hours|_days:<default duration>\""
            )
        try:
            return Delay(parse_duration(parts[2]), parts[1])
        except ValueError as exc:
            raise ProcessError(f"{where}: {exc}") from None
    try:
        return Delay(parse_duration(text))
    except ValueError as exc:
        raise ProcessError(f"{where}: {exc}") from None


def _names(value: Any, where: str, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProcessError(f"{where}: {what} must be a list of names")
    return tuple(value)


def _label(value: Any, where: str, key: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 100:
        raise ProcessError(f"{where}: {key!r} must be a short text")
    return value


def _parse_states(raw: Any, src: str) -> dict[str, State]:
    if not isinstance(raw, dict) or not raw:
        raise ProcessError(f"{src}: [states] must declare at least one state")
    states: dict[str, State] = {}
    for name, spec in raw.items():
        where = f"{src}: state {name!r}"
        if not _NAME.match(name):
            raise ProcessError(f"{where}: a state name is lower_snake_case, at most 32 characters")
        if isinstance(spec, str):
            spec = {"fhir": spec}
        if not isinstance(spec, dict):
            raise ProcessError(f"{where}: must be a FHIR status or a table with 'fhir'")
        unknown = set(spec) - _STATE_KEYS
        if unknown:
            raise ProcessError(f"{where}: unknown keys {sorted(unknown)}")
        fhir = spec.get("fhir")
        if fhir not in FHIR_STATUSES:
            raise ProcessError(
                f"{where}: maps to FHIR status {fhir!r}; use one of {', '.join(FHIR_STATUSES)}"
            )
        states[name] = State(
            name,
            str(fhir),
            _label(spec.get("zh"), where, "zh") or name,
            _label(spec.get("en"), where, "en") or name.replace("_", " "),
        )
    return states


def _parse_transition(raw: Any, index: int, src: str, states: Mapping[str, State]) -> Transition:
    if not isinstance(raw, dict):
        raise ProcessError(f"{src}: transition #{index + 1} must be a table")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ProcessError(f"{src}: transition #{index + 1} needs a lower_snake_case 'name'")
    where = f"{src}: transition {name!r}"
    unknown = set(raw) - _TRANSITION_KEYS
    if unknown:
        raise ProcessError(f"{where}: unknown keys {sorted(unknown)}")
    sources = _names(raw.get("from"), where, "'from'")
    if not sources:
        raise ProcessError(f"{where}: 'from' names no state")
    to = raw.get("to")
    for state in (*sources, to):
        if not isinstance(state, str) or state not in states:
            raise ProcessError(f"{where}: state {state!r} is not declared in [states]")
    actors = _names(raw.get("actor"), where, "'actor'")
    if not actors:
        raise ProcessError(f"{where}: 'actor' names nobody")
    for kind in actors:
        if kind not in ACTOR_KINDS:
            raise ProcessError(f"{where}: actor {kind!r} is not one of {', '.join(ACTOR_KINDS)}")
    delay = None
    if "timer" in actors:
        if len(actors) > 1:
            raise ProcessError(f"{where}: a timer transition has no other actor")
        if "after" not in raw:
            raise ProcessError(
                f"{where}: a timer transition needs 'after' (an ISO 8601 duration such as PT15M)"
            )
        delay = _parse_delay(raw["after"], where)
    elif "after" in raw:
        raise ProcessError(f"{where}: only timer transitions take 'after'")
    actions = _names(raw.get("actions", []), where, "'actions'")
    for name_ in actions:
        if name_ not in _actions:
            raise ProcessError(f"{where}: action {name_!r} is not registered")
    guard_name = raw.get("guard", "")
    if guard_name and guard_name not in _guards:
        raise ProcessError(f"{where}: guard {guard_name!r} is not registered")
    return Transition(
        name=name,
        sources=sources,
        to=str(to),
        actors=actors,
        actions=actions,
        guard=str(guard_name or ""),
        delay=delay,
        label_zh=_label(raw.get("zh"), where, "zh"),
        label_en=_label(raw.get("en"), where, "en"),
    )


def _check_graph(src: str, process: Process) -> None:
    """Reachability, dead ends, final states, duplicate transitions."""
    seen_keys: set[tuple[str, str, str]] = set()
    for t in process.transitions:
        for source in t.sources:
            for kind in t.actors:
                key = (t.name, source, kind)
                if key in seen_keys:
                    raise ProcessError(
                        f"{src}: transition {t.name!r} is declared twice from state {source!r} for {kind}"
                    )
                seen_keys.add(key)
    for final in process.finals:
        if process.outgoing(final):
            names = sorted({t.name for t in process.outgoing(final)})
            raise ProcessError(f"{src}: final state {final!r} has outgoing transitions {names}")
    for state in process.states:
        if state not in process.finals and not process.outgoing(state):
            raise ProcessError(
                f"{src}: state {state!r} is a dead end: it is not final and has no transition out"
            )
    reached = {process.initial}
    frontier = [process.initial]
    while frontier:
        for t in process.outgoing(frontier.pop()):
            if t.to not in reached:
                reached.add(t.to)
                frontier.append(t.to)
    for state in process.states:
        if state not in reached:
            raise ProcessError(
                f"{src}: state {state!r} cannot be reached from the initial state {process.initial!r}"
            )
    ends = set(process.finals)
    changed = True
    while changed:
        changed = False
        for t in process.transitions:
            for source in t.sources:
                if t.to in ends and source not in ends:
                    ends.add(source)
                    changed = True
    for state in process.states:
        if state not in ends:
            raise ProcessError(f"{src}: state {state!r} can never reach a final state")


def _import_modules(modules: Iterable[str], *, source: str) -> None:
    for module in modules:
        if not isinstance(module, str) or not module.startswith("zhishe."):
            raise ProcessError(f"{source}: module {module!r} must be a zhishe module")
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ProcessError(f"{source}: module {module!r} cannot be imported: {exc}") from None


def parse_process(text: str, *, source: str = "<string>") -> Process:
    """Parse and validate one process from TOML ``text``; ``source`` names it in error messages."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProcessError(f"{source}: not valid TOML: {exc}") from None
    unknown = set(raw) - _PROCESS_KEYS - {"transitions"}
    if unknown:
        raise ProcessError(f"{source}: unknown keys {sorted(unknown)}")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ProcessError(f"{source}: 'name' must be a lower_snake_case name")
    _import_modules(_CORE_MODULES, source=source)
    _import_modules(_names(raw.get("modules", []), source, "'modules'"), source=source)
    states = _parse_states(raw.get("states"), source)
    initial = raw.get("initial")
    if not isinstance(initial, str) or initial not in states:
        raise ProcessError(f"{source}: initial state {initial!r} is not declared in [states]")
    finals = _names(raw.get("finals", []), source, "'finals'")
    for final in finals:
        if final not in states:
            raise ProcessError(f"{source}: final state {final!r} is not declared in [states]")
    if initial in finals:
        raise ProcessError(f"{source}: the initial state {initial!r} cannot be final")
    start_actions = _names(raw.get("start_actions", []), source, "'start_actions'")
    for name_ in start_actions:
        if name_ not in _actions:
            raise ProcessError(f"{source}: start action {name_!r} is not registered")
    raw_transitions = raw.get("transitions", [])
    if not isinstance(raw_transitions, list) or not raw_transitions:
        raise ProcessError(f"{source}: a process needs [[transitions]]")
    transitions = tuple(_parse_transition(t, i, source, states) for i, t in enumerate(raw_transitions))
    process = Process(
        name=name,
        title_zh=_label(raw.get("title_zh"), source, "title_zh") or name,
        title_en=_label(raw.get("title_en"), source, "title_en") or name.replace("_", " "),
        initial=initial,
        finals=frozenset(finals),
        states=states,
        transitions=transitions,
        start_actions=start_actions,
        source=source,
    )
    _check_graph(source, process)
    return process


_cache: dict[str, Process] | None = None


def load_processes(directory: Path | None = None, *, reload: bool = False) -> dict[str, Process]:
    """Every process under ``directory`` (default: the shipped ones), validated; cached for the
    shipped directory. Raises ``ProcessError`` naming the first bad file."""
    global _cache
    if directory is None and _cache is not None and not reload:
        return _cache
    found: dict[str, Process] = {}
    for path in sorted((directory or PROCESS_DIR).glob("*.toml")):
        process = parse_process(path.read_text(encoding="utf-8"), source=path.name)
        if process.name in found:
            raise ProcessError(
                f"{path.name}: process {process.name!r} is also declared in {found[process.name].source}"
            )
        found[process.name] = process
    if directory is None:
        _cache = found
    return found


def get_process(name: str) -> Process:
    """The shipped process called ``name``."""
    process = load_processes().get(name)
    if process is None:
        raise NotFound(T("there is no process called {name}", name=name), detail={"process": name})
    return process


def action_fn(name: str) -> ActionFn:
    """The registered action called ``name``."""
    return _actions[name]


def guard_fn(name: str) -> GuardFn:
    """The registered guard called ``name``."""
    return _guards[name]
