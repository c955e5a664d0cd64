"""Provider template mappings as a kind of the studio: which approved template each of our message
templates uses on WeChat, WhatsApp and SMS, and how its fields are filled.

A body is the mapping of content/channels/templates.yaml: `{template key: {channel: {id, fields}}}`, with
`wechat` (a template_id and its keyword fields), `whatsapp` (a Content SID, HX…, and its numbered
variables) and `sms` (the carrier-registered template id; the text fills it). One item (key `site`). The
ids and field names follow the admin console's rules (backend/admin/channels.py); a WeChat keyword shows
20 characters, so each field is rendered in every language with that language's longest known values (the
hospital's name, the published questionnaires' titles); one that would be cut, or that is bound to a whole
message's text or link, is flagged beside the field with its length per language, not blocking: WeChat
shows the start of it and the message still goes, and a deployed file whose English questionnaire title is
long must still seed. The shape, ids and field names block. Not clinical. The console's per-channel
mapping, where an administrator stored one, still wins over the published revision
(backend/outbox/providers.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from backend.admin.channels import (
    CARRIER_TEMPLATE_ID,
    CONTENT_SID,
    FIELD_NAME,
    UNLIMITED_WECHAT_FIELDS,
    WECHAT_FIELD_LIMIT,
    WECHAT_TEMPLATE_ID,
    field_problems,
)
from backend.content.kinds import Change, Problem, register
from bots.domain import Channel

KIND = "provider_templates"
KEY = "site"
CHANNELS = (Channel.WECHAT, Channel.WHATSAPP, Channel.SMS)
ID_PATTERNS = {
    Channel.WECHAT: WECHAT_TEMPLATE_ID,
    Channel.WHATSAPP: CONTENT_SID,
    Channel.SMS: CARRIER_TEMPLATE_ID,
}
MAX_FIELD = 200


def specs(body: Mapping[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """{template key: {channel: {id, fields}}} of the well-formed parts of a body."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for key, by_channel in body.items():
        if not isinstance(by_channel, Mapping):
            continue
        out[str(key)] = {}
        for channel, spec in by_channel.items():
            if isinstance(spec, Mapping):
                fields = spec.get("fields")
                out[str(key)][str(channel)] = {
                    "id": str(spec.get("id", "")),
                    "fields": {str(k): str(v) for k, v in fields.items()}
                    if isinstance(fields, Mapping)
                    else {},
                }
    return out


def validate(body: Mapping[str, Any]) -> list[Problem]:
    """The shape, ids and field names; the 20-character limit needs the samples (`limit_problems`)."""
    problems: list[Problem] = []
    known = {c.value for c in CHANNELS}
    for key, by_channel in body.items():
        if not isinstance(by_channel, Mapping):
            problems.append(Problem(str(key), "not_a_table"))
            continue
        for channel, spec in by_channel.items():
            where = f"{key}/{channel}"
            if channel not in known:
                problems.append(Problem(where, "unknown_channel", str(channel)))
                continue
            if not isinstance(spec, Mapping):
                problems.append(Problem(where, "not_a_table"))
                continue
            if not ID_PATTERNS[Channel(channel)].fullmatch(str(spec.get("id", ""))):
                problems.append(Problem(f"{where}/id", "bad_template_id", str(spec.get("id", ""))[:80]))
            fields = spec.get("fields", {})
            if not isinstance(fields, Mapping):
                problems.append(Problem(f"{where}/fields", "not_a_table"))
                continue
            if channel != Channel.SMS.value and not fields:
                problems.append(Problem(f"{where}/fields", "no_fields"))
            for name, value in fields.items():
                if not FIELD_NAME.fullmatch(str(name)):
                    problems.append(Problem(f"{where}/fields", "bad_field_name", str(name)[:40]))
                elif not isinstance(value, str) or len(value) > MAX_FIELD:
                    problems.append(Problem(f"{where}/fields/{name}", "too_long", str(value)[:40]))
    return problems


def limit_problems(body: Mapping[str, Any], samples: Mapping[str, Mapping[str, str]]) -> list[Problem]:
    """WeChat fields that would not show in full in some language, rendered with its longest values."""
    problems = []
    for key, by_channel in specs(body).items():
        fields = by_channel.get(Channel.WECHAT.value, {}).get("fields", {})
        for found in field_problems(Channel.WECHAT, fields, samples):
            where = f"{key}/wechat/fields/{found.field}"
            if found.unbounded:
                problems.append(Problem(where, "unbounded", blocking=False))
            else:
                detail = f"{found.lang}: {len(found.text)} > {WECHAT_FIELD_LIMIT}: {found.text}"
                problems.append(Problem(where, "too_long_for_wechat", detail, blocking=False))
    return problems


def counts(body: Mapping[str, Any], samples: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, int]]:
    """Per WeChat field ("key/field"), its rendered length in each language (what the editor shows)."""
    from backend.admin.channels import _Blank

    out: dict[str, dict[str, int]] = {}
    for key, by_channel in specs(body).items():
        for name, text in by_channel.get(Channel.WECHAT.value, {}).get("fields", {}).items():
            if name not in UNLIMITED_WECHAT_FIELDS:
                out[f"{key}/{name}"] = {lang: len(text.format_map(_Blank(v))) for lang, v in samples.items()}
    return out


def check(session: Session, body: Mapping[str, Any]) -> list[Problem]:
    from backend.admin.channel_store import template_samples
    from backend.app.settings import get_settings

    return validate(body) + limit_problems(body, template_samples(session, get_settings()))


def _flat(body: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for key, by_channel in specs(body).items():
        for channel, spec in by_channel.items():
            out[f"{key}/{channel}/id"] = spec["id"]
            for name, value in spec["fields"].items():
                out[f"{key}/{channel}/fields/{name}"] = value
    return out


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    old, new = _flat(before), _flat(after)
    return [
        Change(where, None, old.get(where), new.get(where))
        for where in sorted(set(old) | set(new))
        if old.get(where) != new.get(where)
    ]


def fields_text(fields: Mapping[str, str]) -> str:
    return "\n".join(f"{name} = {value}" for name, value in fields.items())


def body_from_form(values: Mapping[str, str], _key: str = KEY) -> dict[str, Any]:
    """`t|<template>|<channel>|id` and `t|<template>|<channel>|fields` ("name = value" lines); a channel
    left with neither an id nor fields is not mapped. A line without "=" is kept as a field with no name,
    so the validator names it."""
    body: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        parts = name.split("|")
        if len(parts) != 4 or parts[0] != "t" or parts[3] not in ("id", "fields"):
            continue
        spec = body.setdefault(parts[1], {}).setdefault(parts[2], {"id": "", "fields": {}})
        if parts[3] == "id":
            spec["id"] = value.strip()
            continue
        for line in value.replace("\r\n", "\n").split("\n"):
            if line.strip():
                field, _sep, text = line.partition("=")
                spec["fields"][field.strip() if _sep else f"?{field.strip()}"] = text.strip()
    for by_channel in body.values():
        for channel in [c for c, s in by_channel.items() if not s["id"] and not s["fields"]]:
            del by_channel[channel]
        for channel, spec in by_channel.items():
            if channel == Channel.SMS.value and not spec["fields"]:
                spec["fields"] = {"text": "{text}"}
    return body


class ProviderTemplates:
    """The ContentKind of the provider template mappings."""

    name = KIND

    def validate(self, body: Mapping[str, Any]) -> list[Problem]:
        return validate(body)

    def diff(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
        return diff(before, after)

    def preview(self, body: Mapping[str, Any], lang: str) -> dict[str, str]:
        return {where: value for where, value in _flat(body).items()}

    def needs_approver(self, published: Mapping[str, Any] | None, body: Mapping[str, Any]) -> bool:
        return False  # ids and field bindings: no clinical wording lives here


register(ProviderTemplates(), check=check, retirable=False)
