"""What a row of a staff file would do to an account (pure): the account it names after the row (its
role resolved by key or name, its department codes by the hospital's codes), and whether that creates,
changes or leaves it, or would leave the hospital without an active administrator."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from backend.imports.plan import Action, Decision, digest
from backend.imports.problems import Problem, describe
from backend.imports.rows import StaffRecord


@dataclass(frozen=True, slots=True)
class StaffNow:
    """An account as CareLoop holds it."""

    id: int
    version: int
    display_name: str
    roles: tuple[str, ...]  # sorted: the digest of a snapshot must not depend on a set's order
    department_ids: tuple[int, ...]
    language: str
    phone: str | None
    email: str | None
    active: bool


@dataclass(frozen=True, slots=True)
class StaffContext:
    """What a staff file's rows are resolved against, loaded once a run."""

    roles: Mapping[str, str]  # a role's key, configured name or built-in label (case-folded) -> key
    departments: Mapping[str, int]  # hospital department code -> id
    admin_roles: frozenset[str]  # the roles holding the permission to manage staff and roles
    language: str  # the hospital's: a new account's language when the file gives none


@dataclass(frozen=True, slots=True)
class StaffTarget:
    """The account as the row leaves it."""

    display_name: str
    roles: tuple[str, ...]  # sorted
    department_ids: tuple[int, ...]
    language: str
    phone: str | None
    email: str | None
    active: bool


def target_of(record: StaffRecord, now: StaffNow | None, context: StaffContext) -> StaffTarget | list[str]:
    """The account after the row, or the row's problems (an unknown role or department code)."""
    problems = []
    role = context.roles.get(record.role.casefold())
    if role is None:
        problems.append(describe(Problem.UNKNOWN_ROLE))
    department_ids: tuple[int, ...] = now.department_ids if now is not None else ()
    if record.departments is not None:
        found = [context.departments.get(code) for code in record.departments]
        if any(id_ is None for id_ in found):
            problems.append(describe(Problem.UNKNOWN_DEPARTMENT))
        department_ids = tuple(sorted({id_ for id_ in found if id_ is not None}))
    if problems or role is None:
        return problems
    language = record.language or (now.language if now is not None else context.language)
    names = dict(record.names)
    # one display name an account has: the one in its own language, else the hospital's, else any given
    name = names.get(language) or names.get(context.language) or next(iter(names.values()))
    # A file names one role: an account that already holds it keeps the others it was given in CareLoop
    # (an approver, a manager); naming another role replaces them, as the hospital's file says.
    roles = now.roles if now is not None and role in now.roles else (role,)
    return StaffTarget(
        display_name=name,
        roles=roles,
        department_ids=department_ids,
        language=language,
        phone=record.phone if record.phone is not None else (now.phone if now is not None else None),
        email=record.email if record.email is not None else (now.email if now is not None else None),
        active=record.active if record.active is not None else (now.active if now is not None else True),
    )


def decide_staff(
    record: StaffRecord, now: StaffNow | None, context: StaffContext, admins: frozenset[int]
) -> tuple[Decision, frozenset[int]]:
    """The row's decision and the active administrators left after it (`admins` before it: the rows of
    one file are decided in order, so two rows cannot each take away "the other" last admin). An account
    the same file creates does not count: the console must stay managed by someone who can sign in now."""
    target = target_of(record, now, context)
    if isinstance(target, list):
        return Decision(Action.PROBLEM, problems=tuple(target)), admins
    if now is None:
        return Decision(Action.CREATE), admins
    keeps_admin = target.active and any(role in context.admin_roles for role in target.roles)
    after = admins if keeps_admin or now.id not in admins else admins - {now.id}
    if now.id in admins and not after:
        return Decision(Action.PROBLEM, problems=(describe(Problem.LAST_ADMIN),)), admins
    held = StaffTarget(
        now.display_name, now.roles, now.department_ids, now.language, now.phone, now.email, now.active
    )
    action = Action.SKIP if held == target else Action.UPDATE
    return Decision(action, now.id, digest(now)), after
