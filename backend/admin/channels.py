"""The admin console's channel settings: what may be set over the environment, the checks each value
passes, where each effective value comes from, and the audited verbs that store them.

Precedence: a value stored here wins over the environment (or the .env file), which wins over the
default; template mappings stored here win over content/channels/templates.yaml. Secrets are stored
encrypted (`channel_settings.secret`) and never shown again: the page offers only to replace them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backend.app.settings import Settings
from backend.outbox.overrides import CONSOLE_SETTINGS
from backend.outbox.providers import template_file
from backend.services.refusal import ActionRefused, Reason
from bots.domain import Channel

CONSOLE = "console"  # the source of a value stored here
TEMPLATE_FILE = "file"  # the source of a template mapping from content/channels/templates.yaml
TEMPLATE_STUDIO = "studio"  # the source of a template mapping published in the content studio
SECRETS = frozenset(
    {"sms_gateway_token", "twilio_auth_token", "wechat_app_secret", "wechat_token", "wechat_encoding_aes_key"}
)
MAPPINGS = frozenset({"sms_template_ids", "send_rates"})  # typed as "name = value" lines
TEMPLATE_CHANNELS = (Channel.WECHAT, Channel.WHATSAPP)
# WeChat shows 20 characters of a template keyword (thing, name and phrase fields); the header and the
# remark of the older templates are not limited.
WECHAT_FIELD_LIMIT = 20
UNLIMITED_WECHAT_FIELDS = frozenset({"first", "remark"})
UNBOUNDED = ("{text}", "{url}")  # a message's own text or link: no length can be promised

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
MESSAGING_SERVICE = re.compile(r"^MG[0-9a-fA-F]{32}$")
CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")
WECHAT_TEMPLATE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
FIELD_NAME = re.compile(r"^[A-Za-z0-9_.]{1,32}$")
BRANDNAME = re.compile(r"^[A-Za-z0-9 .-]{1,11}$")  # Vietnamese carriers: up to 11 Latin characters
CARRIER_TEMPLATE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# The providers' credentials, in the forms their consoles hand out: a typing slip or a value pasted into the
# wrong box is refused here rather than found later as every webhook refused and every send failing.
CREDENTIALS = {
    "twilio_account_sid": re.compile(r"^AC[0-9a-fA-F]{32}$"),
    "twilio_auth_token": re.compile(r"^[0-9a-fA-F]{32}$"),
    "wechat_app_id": re.compile(r"^wx[0-9a-fA-F]{16}$"),
    "wechat_app_secret": re.compile(r"^[0-9a-zA-Z]{32}$"),
    # the official account's server settings: a token of 3-32 letters or digits, an EncodingAESKey of 43
    "wechat_token": re.compile(r"^[A-Za-z0-9]{3,32}$"),
    "wechat_encoding_aes_key": re.compile(r"^[A-Za-z0-9]{43}$"),
}


@dataclass(frozen=True)
class SettingRow:
    name: str
    variable: str
    value: str  # as shown: a secret as MASK or ""
    source: str  # "console", or effective_settings.Source
    secret: bool
    description: str


@dataclass(frozen=True)
class FieldProblem:
    field: str
    lang: str
    text: str  # the field rendered in that language ("" when unbounded)
    unbounded: bool


@dataclass(frozen=True)
class TemplateRow:
    key: str
    channel: Channel
    template_id: str
    fields: dict[str, str]
    source: str  # "console" or "file"
    problems: tuple[FieldProblem, ...]


def template_keys(settings: Settings) -> list[str]:
    return sorted(template_file(settings))


# --- checks (pure) ---------------------------------------------------------------------------------------


def parse_lines(text: str, reason: Reason) -> dict[str, str]:
    """ "name = value" lines (blank lines skipped) to a mapping; anything else refused with `reason`."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip() or not value.strip() or name.strip() in found:
            raise ActionRefused(reason)
        found[name.strip()] = value.strip()
    return found


def parse_setting(name: str, text: str, known_keys: list[str]) -> Any:
    """The value to store for a console setting, or ActionRefused saying what does not fit."""
    text = text.strip()
    if name not in CONSOLE_SETTINGS:
        raise ActionRefused(Reason.SETTING_UNKNOWN)
    if name in SECRETS and not text:
        raise ActionRefused(Reason.SECRET_EMPTY)
    if name in CREDENTIALS:
        if not CREDENTIALS[name].match(text):
            raise ActionRefused(Reason.CREDENTIAL_INVALID)
        return text
    if name in SECRETS:
        return text
    if name == "sms_provider":
        if text not in ("twilio", "http"):
            raise ActionRefused(Reason.NO_SUCH_CHOICE)
        return text
    if name == "sms_gateway_url":
        if not re.match(r"^https?://[^\s/]+", text):
            raise ActionRefused(Reason.URL_INVALID)
        return text
    if name == "twilio_sms_from":
        if not (E164.match(text) or MESSAGING_SERVICE.match(text)):
            raise ActionRefused(Reason.SENDER_INVALID)
        return text
    if name == "twilio_whatsapp_from":
        if not E164.match(text.removeprefix("whatsapp:")):
            raise ActionRefused(Reason.SENDER_INVALID)
        return text.removeprefix("whatsapp:")
    if name == "sms_gateway_sender":
        if not 1 <= len(text) <= 20:
            raise ActionRefused(Reason.SENDER_INVALID)
        return text
    if name == "sms_signature":
        # carriers register 2-12 characters; the brackets are added by the carrier
        if not 2 <= len(text) <= 12 or any(c in text for c in "【】[]"):
            raise ActionRefused(Reason.SIGNATURE_INVALID)
        return text
    if name == "sms_brandname":
        if not BRANDNAME.match(text):
            raise ActionRefused(Reason.BRANDNAME_INVALID)
        return text
    if name == "sms_template_ids":
        ids = parse_lines(text, Reason.FIELDS_INVALID)
        if set(ids) - set(known_keys):
            raise ActionRefused(Reason.TEMPLATE_KEY_UNKNOWN)
        if not all(CARRIER_TEMPLATE_ID.match(v) for v in ids.values()):
            raise ActionRefused(Reason.FIELDS_INVALID)
        return ids
    assert name == "send_rates"
    rates = parse_lines(text, Reason.RATE_INVALID)
    try:
        numbers = {key: float(value) for key, value in rates.items()}
    except ValueError:
        raise ActionRefused(Reason.RATE_INVALID) from None
    if any(not 0 < n <= 10_000 for n in numbers.values()):
        raise ActionRefused(Reason.RATE_INVALID)
    return numbers


def parse_fields(text: str) -> dict[str, str]:
    fields = parse_lines(text, Reason.FIELDS_INVALID)
    if not fields or not all(FIELD_NAME.match(name) for name in fields):
        raise ActionRefused(Reason.FIELDS_INVALID)
    return fields


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def field_problems(
    channel: Channel, fields: Mapping[str, str], samples: Mapping[str, Mapping[str, str]]
) -> list[FieldProblem]:
    """WeChat's limited fields that would not show in full: rendered in each language with that
    language's longest known values, or bound to a message's own text or link (no length promised)."""
    if channel is not Channel.WECHAT:
        return []
    problems = []
    for name, text in fields.items():
        if name in UNLIMITED_WECHAT_FIELDS:
            continue
        if any(marker in text for marker in UNBOUNDED):
            problems.append(FieldProblem(name, "", "", unbounded=True))
            continue
        for lang, values in samples.items():
            rendered = text.format_map(_Blank(values))
            if len(rendered) > WECHAT_FIELD_LIMIT:
                problems.append(FieldProblem(name, lang, rendered, unbounded=False))
    return problems


def parse_limit(quiet_start: str, quiet_end: str, cap: str) -> tuple[int | None, int | None, int | None]:
    """Hours 0-23 (both or neither) and a cap of at least 1 (or none)."""
    start_text, end_text, cap_text = quiet_start.strip(), quiet_end.strip(), cap.strip()
    if bool(start_text) != bool(end_text):
        raise ActionRefused(Reason.QUIET_HOURS_INVALID)
    start = end = daily = None
    if start_text:
        if not (start_text.isdigit() and end_text.isdigit()):
            raise ActionRefused(Reason.QUIET_HOURS_INVALID)
        start, end = int(start_text), int(end_text)
        if start > 23 or end > 23:
            raise ActionRefused(Reason.QUIET_HOURS_INVALID)
    if cap_text:
        if not cap_text.isdigit() or not 1 <= int(cap_text) <= 1000:
            raise ActionRefused(Reason.CAP_INVALID)
        daily = int(cap_text)
    if start is None and daily is None:
        raise ActionRefused(Reason.QUIET_HOURS_INVALID)
    return start, end, daily
