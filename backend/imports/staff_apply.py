"""Staff files against CareLoop: the accounts and roles a chunk's rows name, loaded in a few queries, and
the decided rows applied through the admin console's own staff verbs (`backend/admin/people.py`), so an
imported account is checked and audited exactly as one an admin types in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from backend.admin import people
from backend.admin.people import StaffForm
from backend.i18n import translations
from backend.imports import lookup
from backend.imports.plan import Decision
from backend.imports.rows import Record, StaffRecord
from backend.imports.staff_plan import StaffContext, StaffNow, StaffTarget, target_of
from backend.models import PasswordReset, Role, StaffRole, StaffUser
from backend.security.permissions import KEEPER, holders
from backend.services.refusal import ActionRefused
from backend.work.runs import WorkError
from bots.domain import LANGUAGES

# The built-in roles' names as the staff pages show them (msgids of the catalogues): a file may name a
# role as the hospital's staff read it, in any of the three languages.
BUILTIN_LABELS = {
    Role.ADMIN: "Administrator",
    Role.SERVICE_AGENT: "Service centre",
    Role.DOCTOR: "Doctor",
    Role.NURSE: "Nurse",
    Role.CONTENT_EDITOR: "Content editor",
    Role.MANAGER: "Manager",
    Role.INTEGRATION: "Integration",
    Role.PRIVACY_OFFICER: "Privacy officer",
}
IMPORT_REASON = "staff import"  # the role change's reason, which the audit row keeps


def context(session: Session, source: str, language: str) -> StaffContext:
    names: dict[str, str] = {}
    keys = []
    for role in session.scalars(sa.select(StaffRole).order_by(StaffRole.key)):
        key = str(role.key)
        keys.append(key)
        label = BUILTIN_LABELS.get(Role(key)) if key in set(Role) else None
        spoken = [translations(lang).gettext(label) for lang in LANGUAGES] if label else []
        for name in (role.name, *spoken):
            names.setdefault(name.strip().casefold(), key)
    for key in keys:
        names[key.casefold()] = key  # a key wins over a name that happens to read the same
    admin_roles = frozenset(k for k in keys if people.is_admin(session, frozenset({k})))
    departments = lookup.codes(session, source).departments
    return StaffContext(names, departments, admin_roles, language)


def accounts(session: Session, usernames: Sequence[str]) -> dict[str, StaffNow]:
    """Snapshots of the accounts the usernames name (departments in the same two statements)."""
    if not usernames:
        return {}
    query = (
        sa.select(StaffUser)
        .options(selectinload(StaffUser.departments))
        .where(StaffUser.username.in_(set(usernames)))
    )
    return {
        user.username: StaffNow(
            id=user.id,
            version=user.version,
            display_name=user.display_name,
            roles=tuple(sorted(str(role) for role in user.roles)),
            department_ids=tuple(sorted(d.id for d in user.departments)),
            language=user.language,
            phone=user.phone,
            email=user.email,
            active=user.active,
        )
        for user in session.scalars(query)
    }


def active_admins(session: Session) -> frozenset[int]:
    query = sa.select(StaffUser.id).where(holders(KEEPER), StaffUser.active.is_(True))
    return frozenset(session.scalars(query))


def _form(username: str, target: StaffTarget) -> StaffForm:
    return StaffForm(
        username=username,
        display_name=target.display_name,
        roles=frozenset(target.roles),
        department_ids=target.department_ids,
        language=target.language,
        phone=target.phone,
        reason=IMPORT_REASON,
        email=target.email,
    )


def apply_staff(
    session: Session,
    decided: Sequence[tuple[Record, Decision]],
    staff_context: StaffContext,
    *,
    staff_id: int | None,
) -> None:
    """Create or update each account through the console's verbs (audited there); a new account gets
    no password, only the one-time link an admin issues from its page, as for one made by hand."""
    held = accounts(session, [r.username for r, _d in decided if isinstance(r, StaffRecord)])
    for record, _decision in decided:
        assert isinstance(record, StaffRecord)
        now = held.get(record.username)
        target = target_of(record, now, staff_context)
        assert isinstance(target, StaffTarget), "decided rows resolve"
        try:
            if now is None:
                created = people.do_create_staff(session, form=_form(record.username, target), password=None,
                                                 by=staff_id)  # fmt: skip
                if not target.active:
                    people.do_set_active(session, staff_id=created.user.id, version=created.user.version,
                                         active=False, by=staff_id)  # fmt: skip
                continue
            version = now.version
            fields = StaffTarget(
                now.display_name,
                now.roles,
                now.department_ids,
                now.language,
                now.phone,
                now.email,
                now.active,
            )
            if fields != replace(target, active=now.active):
                people.do_update_staff(session, staff_id=now.id, version=version,
                                       form=_form(record.username, target), by=staff_id)  # fmt: skip
                version += 1
            if target.active != now.active:
                people.do_set_active(session, staff_id=now.id, version=version, active=target.active,
                                     by=staff_id)  # fmt: skip
        except ActionRefused as refused:
            raise WorkError(f"account {record.username}: {refused}") from None


def needing_link(session: Session, since: object) -> list[StaffUser]:
    """Active accounts created since `since` that have never signed in and were never given a
    set-password link: the import's page lists them with the way to their page, where an admin issues
    one (a deactivated account could not use it)."""
    linked = sa.select(PasswordReset.staff_id)
    query = (
        sa.select(StaffUser)
        .where(
            StaffUser.created_at >= since,
            StaffUser.last_login_at.is_(None),
            StaffUser.active.is_(True),
            StaffUser.id.not_in(linked),
        )
        .order_by(StaffUser.username)
    )
    return list(session.scalars(query))
