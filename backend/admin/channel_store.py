"""The admin console's channel settings in the database: the effective values and where each comes from,
the samples WeChat fields are checked against, and the audited verbs that store settings, template
mappings, and quiet hours and caps per hospital and department."""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.admin.channels import (
    CONSOLE,
    CONTENT_SID,
    MAPPINGS,
    SECRETS,
    TEMPLATE_CHANNELS,
    TEMPLATE_FILE,
    TEMPLATE_STUDIO,
    WECHAT_TEMPLATE_ID,
    SettingRow,
    TemplateRow,
    field_problems,
    parse_fields,
    parse_limit,
    parse_setting,
    template_keys,
)
from backend.admin.effective_settings import MASK, effective, file_values
from backend.app.settings import ENV_FILE, Settings, get_settings
from backend.content.published import published_body
from backend.followup.catalog import definition_of
from backend.models import ChannelSetting, ContactLimit, Department, QuestionnaireVersion
from backend.outbox import overrides
from backend.outbox.overrides import CONSOLE_SETTINGS, template_row
from backend.outbox.providers import template_defaults
from backend.services import audit
from backend.services.refusal import ActionRefused, Reason
from bots.domain import LANGUAGES, Channel

HOSPITAL = "hospital"


def _show(name: str, value: Any) -> str:
    if value is None:
        return ""
    if name in MAPPINGS and isinstance(value, dict):
        return "\n".join(
            f"{key} = {item:g}" if isinstance(item, float) else f"{key} = {item}"
            for key, item in value.items()
        )
    return str(getattr(value, "value", value))


def setting_rows(session: Session, settings: Settings | None = None) -> list[SettingRow]:
    """The console-settable settings: the effective value and its source (console, environment, .env
    file, default). Secrets show only whether they are set."""
    settings = settings or get_settings()
    stored = {row.name: row for row in session.scalars(sa.select(ChannelSetting))}
    base = {row.name: row for row in effective(settings, os.environ, file_values(ENV_FILE))}
    rows = []
    for name in CONSOLE_SETTINGS:
        env = base[name]
        row = stored.get(name)
        if row is None:
            value = (
                env.value if name in SECRETS or name not in MAPPINGS else _show(name, getattr(settings, name))
            )
            rows.append(SettingRow(name, env.variable, value, env.source.value, env.secret, env.description))
            continue
        shown = MASK if name in SECRETS else _show(name, row.value)
        rows.append(SettingRow(name, env.variable, shown, CONSOLE, env.secret, env.description))
    return rows


def template_samples(session: Session, settings: Settings) -> dict[str, dict[str, str]]:
    """Per language, the longest value each bounded variable takes: the hospital's name, and the titles
    of the published questionnaires (what a follow-up invitation's {title} holds)."""
    samples = {lang: {"hospital": settings.hospital_name, "title": ""} for lang in LANGUAGES}
    latest = sa.select(sa.func.max(QuestionnaireVersion.id)).group_by(QuestionnaireVersion.questionnaire_id)
    for row in session.scalars(sa.select(QuestionnaireVersion).where(QuestionnaireVersion.id.in_(latest))):
        titles = definition_of(row).title
        for lang in LANGUAGES:
            title = titles.get(lang, "")
            if len(title) > len(samples[lang]["title"]):
                samples[lang]["title"] = title
    return samples


def template_rows(session: Session, settings: Settings) -> list[TemplateRow]:
    """Every template key on WeChat and WhatsApp: the mapping in use, its source, and its problems."""
    stored = {
        row.name: row.value
        for row in session.scalars(sa.select(ChannelSetting).where(ChannelSetting.name.like("template:%")))
    }
    samples = template_samples(session, settings)
    file_specs = template_defaults(settings, session)  # the studio's published mappings, or the file
    studio, _body = published_body(session, "provider_templates", "site", dict)
    default_source = TEMPLATE_FILE if studio is None else TEMPLATE_STUDIO
    rows = []
    for key in template_keys(settings):
        for channel in TEMPLATE_CHANNELS:
            console = stored.get(template_row(key, channel.value))
            spec = console or (file_specs.get(key) or {}).get(channel.value) or {}
            fields = {str(k): str(v) for k, v in (spec.get("fields") or {}).items()}
            rows.append(
                TemplateRow(
                    key,
                    channel,
                    str(spec.get("id", "")),
                    fields,
                    CONSOLE if console else default_source,
                    tuple(field_problems(channel, fields, samples)),
                )
            )
    return rows


def limit_rows(session: Session) -> list[ContactLimit]:
    """The hospital's row first, then departments' by name."""
    rows = list(
        session.scalars(
            sa.select(ContactLimit)
            .outerjoin(Department, Department.id == ContactLimit.department_id)
            .order_by(ContactLimit.department_id.is_not(None), Department.name)
        )
    )
    return rows


def _changed(session: Session) -> None:
    """This process rereads the console's values once the change commits (others within REFRESH)."""
    sa.event.listen(session, "after_commit", lambda _session: overrides.invalidate(), once=True)


# --- verbs -----------------------------------------------------------------------------------------------


def do_set_setting(session: Session, name: str, text: str, *, by: int, ip: str | None) -> None:
    value = parse_setting(name, text, template_keys(get_settings()))
    row = session.get(ChannelSetting, name) or ChannelSetting(name=name)
    if name in SECRETS:
        row.value, row.secret = None, value
    else:
        row.value, row.secret = value, None
    row.updated_by = by
    session.add(row)
    # never the secret; a setting's value otherwise, so the log says what changed
    detail = {"replaced": True} if name in SECRETS else {"value": value}
    audit.record(session, "admin.channel_setting", staff_id=by, ip=ip, name=name, **detail)
    _changed(session)


def do_clear_setting(session: Session, name: str, *, by: int, ip: str | None) -> None:
    """Back to the environment's value (or the default)."""
    if name not in CONSOLE_SETTINGS:
        raise ActionRefused(Reason.SETTING_UNKNOWN)
    row = session.get(ChannelSetting, name)
    if row is not None:
        session.delete(row)
    audit.record(session, "admin.channel_setting_clear", staff_id=by, ip=ip, name=name)
    _changed(session)


def do_set_template(
    session: Session,
    key: str,
    channel: Channel,
    template_id: str,
    fields_text: str,
    *,
    by: int,
    ip: str | None,
) -> None:
    """Map a template for one channel. WeChat fields that would not show in full in some language are
    refused (the page lists them); a WhatsApp id is a Content SID (HX…)."""
    settings = get_settings()
    if key not in template_keys(settings) or channel not in TEMPLATE_CHANNELS:
        raise ActionRefused(Reason.TEMPLATE_KEY_UNKNOWN)
    template_id = template_id.strip()
    pattern = WECHAT_TEMPLATE_ID if channel is Channel.WECHAT else CONTENT_SID
    if not pattern.match(template_id):
        raise ActionRefused(Reason.TEMPLATE_ID_REQUIRED)
    fields = parse_fields(fields_text)
    problems = field_problems(channel, fields, template_samples(session, settings))
    if problems:
        raise TemplateTooLong(problems)
    name = template_row(key, channel.value)
    row = session.get(ChannelSetting, name) or ChannelSetting(name=name)
    row.value, row.secret, row.updated_by = {"id": template_id, "fields": fields}, None, by
    session.add(row)
    audit.record(
        session, "admin.channel_template", staff_id=by, ip=ip, key=key, channel=channel.value, id=template_id
    )
    _changed(session)


def do_clear_template(session: Session, key: str, channel: Channel, *, by: int, ip: str | None) -> None:
    """Back to content/channels/templates.yaml."""
    row = session.get(ChannelSetting, template_row(key, channel.value))
    if row is not None:
        session.delete(row)
    audit.record(session, "admin.channel_template_clear", staff_id=by, ip=ip, key=key, channel=channel.value)
    _changed(session)


class TemplateTooLong(ActionRefused):
    def __init__(self, problems: list[Any]) -> None:
        super().__init__(Reason.FIELD_TOO_LONG)
        self.problems = problems


def _scope(department_id: int | None) -> str:
    return HOSPITAL if department_id is None else f"department:{department_id}"


def do_set_limit(
    session: Session,
    department_id: int | None,
    quiet_start: str,
    quiet_end: str,
    cap: str,
    *,
    by: int,
    ip: str | None,
) -> ContactLimit:
    """The hospital's (no department) or a department's quiet hours and daily cap. They only ever add to
    the global setting and each other: the gates apply the strictest."""
    start, end, daily = parse_limit(quiet_start, quiet_end, cap)
    if department_id is not None and session.get(Department, department_id) is None:
        raise ActionRefused(Reason.NO_SUCH_DEPARTMENT)
    scope = _scope(department_id)
    row = session.scalars(sa.select(ContactLimit).where(ContactLimit.scope == scope)).first()
    if row is None:
        row = ContactLimit(scope=scope, department_id=department_id)
        session.add(row)
    row.quiet_start, row.quiet_end, row.daily_cap, row.updated_by = start, end, daily, by
    session.flush()
    audit.record(
        session,
        "admin.contact_limit",
        staff_id=by,
        ip=ip,
        scope=scope,
        quiet=None if start is None else f"{start:02d}-{end:02d}",
        daily_cap=daily,
    )
    return row


def do_clear_limit(session: Session, department_id: int | None, *, by: int, ip: str | None) -> None:
    scope = _scope(department_id)
    session.execute(sa.delete(ContactLimit).where(ContactLimit.scope == scope))
    audit.record(session, "admin.contact_limit_clear", staff_id=by, ip=ip, scope=scope)
