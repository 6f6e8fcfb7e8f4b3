"""Shared pieces of the ``zhishe`` command: sessions, the acting user, and clean error exits.

Light to import: the database and account modules are imported when a command first needs them,
so that ``zhishe --help`` and commands that need little start quickly.
"""

from __future__ import annotations

import functools
import gc
import getpass
import importlib.abc
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console

from zhishe.core.errors import NotFound, ZhisheError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from zhishe.core.auth import Actor

__all__ = [
    "AS_USER",
    "console",
    "err_console",
    "handle_errors",
    "keep_loaded",
    "maker",
    "org_id_of",
    "resolve_actor",
    "transaction",
    "without_pandas",
]

console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

AS_USER = typer.Option(
    None, "--as", help="Act as this user (default: the local system operator, audited as cli:<you>)."
)


def keep_loaded() -> None:
    """Exempt every object alive now from the garbage collector (``gc.freeze``).

    For a command process: the modules it imported (SQLAlchemy, pydantic, pyarrow… some 100,000
    objects) live until it exits, and each full collection would walk all of them again, at
    about 60 ms a pass; Python's shutdown alone runs several. Objects created later are collected
    as usual. Not for long-running processes, whose garbage must stay collectable.
    """
    gc.freeze()


class _NoPandas(importlib.abc.MetaPathFinder):
    """Refuses ``import pandas`` (see ``without_pandas``)."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname == "pandas" or fullname.startswith("pandas."):
            raise ModuleNotFoundError(
                "pandas is kept out of this command (it needs none; see cli_support.without_pandas)",
                name=fullname,
            )
        return None


@contextmanager
def without_pandas() -> Iterator[None]:
    """Keep pandas out of a command that needs none of it.

    pyarrow checks for pandas objects the first time it is given Python values (``pa.scalar``,
    ``pa.array`` of a list), and the check imports pandas when it is installed: some 0.45 s of
    imports, and 0.6 to 1.2 s of ``zhishe dataset import``'s wall time on a two-core machine
    (the benchmark in ``docs/benchmarks.md``). While this is active ``import pandas`` fails with a
    message naming the reason, so a path that does need pandas shows at once rather than slowly.
    Nothing changes when pandas is already loaded (a test run, or a long-running process).
    """
    if "pandas" in sys.modules:
        yield
        return
    finder = _NoPandas()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def maker() -> sessionmaker[Session]:
    """The session factory of the configured database, with the cross-domain hooks installed (so
    that reads see exchange grants and new versions reach their subscribers, as in the server)."""
    import os

    from zhishe import hooks
    from zhishe.core.config import get_settings
    from zhishe.core.db import get_sessionmaker
    from zhishe.core.observability import configure_logging

    # Logs go to standard error as JSON lines, never into a command's output; a command is quiet
    # below WARNING unless ZHISHE_LOG_LEVEL asks for more.
    configure_logging(os.environ.get("ZHISHE_LOG_LEVEL") or "WARNING")
    hooks.install()
    return get_sessionmaker(get_settings().database_url)


@contextmanager
def transaction() -> Iterator[Session]:
    """A session that commits on success (and keeps the writes of a refusal that must be recorded)."""
    session = maker()()
    try:
        yield session
        session.commit()
    except ZhisheError as exc:
        session.commit() if exc.keep_writes else session.rollback()
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def resolve_actor(session: Session, username: str | None) -> Actor:
    """The actor of a command: a named user, or the local system operator."""
    from zhishe.core.accounts.service import actor_for_user, get_user_by_username
    from zhishe.core.auth import system_actor

    if not username:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            name = "operator"
        return system_actor(name)
    user = get_user_by_username(session=session, username=username)
    if user is None or not user.is_active:
        raise NotFound(f"no active user called {username!r}", detail={"user": username})
    return actor_for_user(user, via="web")


def org_id_of(session: Session, code: str | None, option: str = "--org") -> int | None:
    """The id of the organisation with ``code`` (None when no code is given); Invalid if unknown."""
    if not code:
        return None
    from zhishe.core.accounts import service as accounts
    from zhishe.core.errors import Invalid

    found = accounts.get_org_by_code(session=session, code=code)
    if found is None:
        raise Invalid(f"there is no organisation {code!r}", detail={"option": option})
    return found.id


def handle_errors(fn: F) -> F:
    """Print a ZhisheError as one clear line and exit 1, instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ZhisheError as exc:
            from rich.markup import escape

            err_console.print(f"[bold red]error:[/] {escape(exc.message)}")
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]
