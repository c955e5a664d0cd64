"""Channel adapters built from settings, and turning an outbox item into the adapter's `Delivery`."""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy.orm import Session

from backend.app import yaml_files
from backend.app.settings import Settings, SmsProvider, get_settings
from backend.dialogue.content import load_catalog
from backend.messaging.email_tokens import item_token, unsubscribe_token, unsubscribe_url
from backend.messaging.links import render_links, render_outbound
from backend.models import Conversation, Message, OutboxItem, OutboxKind, Patient, StaffUser
from backend.outbox.overrides import current, effective_settings
from bots.domain import Channel, pick_language
from bots.messages import Outbound
from channels.base import Delivery, MailContext, Sender, TemplateRef

log = logging.getLogger(__name__)


class ChannelNotConfigured(LookupError):
    """No provider credentials for this channel in the settings."""


_built: dict[Channel, Sender] = {}
_building = threading.Lock()


_wechat: list[Any] = []


def forget_adapters() -> None:
    """Forget built adapters (the console's channel settings changed): the next send builds them anew."""
    with _building:
        _built.clear()
        _wechat.clear()


def reset_senders() -> None:
    """Forget built adapters, the console's settings read and the send-rate limiter (settings changed)."""
    from backend.outbox import overrides
    from backend.outbox.rate import reset_send_rate

    forget_adapters()
    overrides.forget()
    reset_send_rate()


def sender_for(channel: Channel) -> Sender:
    """The adapter for a channel, built once per process from the settings with the console's values
    over them (send_items calls this from several threads at once: one builds it, the others wait)."""
    settings = effective_settings()  # rereads the console's values now and then; a change forgets `_built`
    sender = _built.get(channel)
    if sender is None:
        with _building:
            sender = _built.get(channel)
            if sender is None:
                sender = _built[channel] = _build(channel, settings)
    return sender


def sender_key(channel: Channel, settings: Settings) -> str:
    """The provider and sender id a send goes out as: what `send_rates` is keyed by."""
    if channel is Channel.WECHAT:
        return f"wechat:{settings.wechat_app_id or ''}"
    if channel is Channel.SMS and settings.sms_provider is SmsProvider.HTTP:
        return f"gateway:{settings.sms_gateway_sender or 'default'}"
    sender = settings.twilio_sms_from if channel is Channel.SMS else settings.twilio_whatsapp_from
    return f"twilio:{sender or ''}"


def warm_senders() -> list[Channel]:
    """Build the adapters of every configured channel now, before the RQ worker forks a child per job,
    so children inherit them (and the vendor SDK modules they import on first use) instead of building
    them for every job. Building opens no connection; each child opens its own. Returns the channels.
    A channel whose settings are wrong is left to fail at send time, as before: the worker also runs
    every other job."""
    warmed = []
    for channel in (Channel.SMS, Channel.WHATSAPP, Channel.EMAIL):
        try:
            sender_for(channel)
        except ChannelNotConfigured:
            continue
        except Exception as exc:  # e.g. an invalid sender number: send_items reports it per item
            log.warning("cannot build the %s adapter ahead of jobs: %s", channel.value, type(exc).__name__)
            continue
        warmed.append(channel)
    return warmed


def wechat_client() -> Any:
    """The account's wechatpy client (its access token shared through Redis when configured)."""
    if _wechat:
        return _wechat[0]
    settings = get_settings()
    if not (settings.wechat_app_id and settings.wechat_app_secret):
        raise ChannelNotConfigured("WeChat: set CARELOOP_WECHAT_APP_ID and CARELOOP_WECHAT_APP_SECRET")
    from channels.wechat_outbound import make_client

    _wechat.append(
        make_client(
            settings.wechat_app_id,
            settings.wechat_app_secret.get_secret_value(),
            api_root=settings.wechat_api_root,
            redis_url=settings.redis_url,
            timeout=settings.send_timeout_seconds,
        )
    )
    return _wechat[0]


def _build(channel: Channel, settings: Settings) -> Sender:
    timeout = settings.send_timeout_seconds
    if channel is Channel.WECHAT:
        from channels.wechat_outbound import WeChatSender

        return WeChatSender(wechat_client())
    if channel is Channel.SMS and settings.sms_provider is SmsProvider.HTTP:
        if not (settings.sms_gateway_url and settings.sms_gateway_token):
            raise ChannelNotConfigured(
                "SMS gateway: set CARELOOP_SMS_GATEWAY_URL and CARELOOP_SMS_GATEWAY_TOKEN"
            )
        from channels.sms_gateway import HttpGatewaySms

        return HttpGatewaySms(
            url=settings.sms_gateway_url,
            token=settings.sms_gateway_token.get_secret_value(),
            sender=settings.sms_gateway_sender,
            timeout=timeout,
            signature=settings.sms_signature,
            brandname=settings.sms_brandname,
        )
    if channel in (Channel.SMS, Channel.WHATSAPP):
        sender = settings.twilio_sms_from if channel is Channel.SMS else settings.twilio_whatsapp_from
        if not (settings.twilio_account_sid and settings.twilio_auth_token and sender):
            raise ChannelNotConfigured(f"{channel.value}: set the CARELOOP_TWILIO_* settings")
        if channel is Channel.SMS:
            from channels.sms_twilio import TwilioSms

            return TwilioSms(
                account_sid=settings.twilio_account_sid,
                auth_token=settings.twilio_auth_token.get_secret_value(),
                sender=sender,
                api_base=settings.twilio_api_base,
                timeout=timeout,
            )
        from channels.whatsapp import TwilioWhatsApp

        return TwilioWhatsApp(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token.get_secret_value(),
            sender=sender,
            api_base=settings.twilio_api_base,
            timeout=timeout,
        )
    if channel is Channel.EMAIL:
        return _build_email(settings)
    raise ChannelNotConfigured(f"{channel.value} has no outbound adapter")


def _build_email(settings: Settings) -> Sender:
    if not (settings.email_smtp_host and settings.email_from_address):
        raise ChannelNotConfigured("email: set CARELOOP_EMAIL_SMTP_HOST and CARELOOP_EMAIL_FROM_ADDRESS")
    from channels.email import SmtpConfig, SmtpEmail

    password = settings.email_smtp_password
    return SmtpEmail(
        SmtpConfig(
            host=settings.email_smtp_host,
            port=settings.email_smtp_port,
            security=settings.email_smtp_security.value,
            from_address=settings.email_from_address,
            from_name=settings.email_from_name or settings.hospital_name,
            domain=email_domain(settings),
            username=settings.email_smtp_username,
            password=password.get_secret_value() if password else None,
            reply_to=settings.email_reply_to,
            timeout=settings.send_timeout_seconds,
            ca_file=settings.email_smtp_ca_file,
        )
    )


def email_domain(settings: Settings) -> str:
    """Our mail domain: Message-IDs and the bounce and unsubscribe addresses live under it."""
    if settings.email_domain:
        return settings.email_domain
    return (settings.email_from_address or "localhost").rpartition("@")[2]


def mail_context(settings: Settings, item: OutboxItem, patient_id: int, lang: str) -> MailContext:
    """The subject, footer and tokens of an email, in the patient's language."""
    catalog = load_catalog(settings.content_dir, settings.hospital_name)
    purpose = item.purpose
    return MailContext(
        subject=catalog.text(lang, f"email.subject_{purpose.value}"),
        item_token=item_token(settings, item.id),
        unsubscribe_token=unsubscribe_token(settings, patient_id, purpose),
        unsubscribe_url=unsubscribe_url(settings, patient_id, purpose),
        footer=catalog.text(lang, f"email.footer_{purpose.value}"),
        unsubscribe_label=catalog.text(lang, "email.unsubscribe_label"),
        auto_submitted=item.created_by_staff_id is None,  # a staff member's own words are not automatic
    )


def template_file(settings: Settings) -> dict[str, Any]:
    """content/channels/templates.yaml: the templates' defaults, by key and channel."""
    return _templates(str(settings.content_dir / "channels" / "templates.yaml"))


@lru_cache(maxsize=4)
def _templates(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        data = yaml_files.load(handle) or {}
    assert isinstance(data, dict)
    return data


def template_defaults(settings: Settings, session: Session | None = None) -> dict[str, Any]:
    """The mappings published in the studio (kind provider_templates), or the template file's until the
    studio has published one (backend/content/provider_templates.py)."""
    if session is None:
        return template_file(settings)
    from backend.content.published import published_body

    _number, body = published_body(session, "provider_templates", "site", lambda: template_file(settings))
    return body if body is not None else template_file(settings)


def template_spec(
    key: str, channel: Channel, settings: Settings, session: Session | None = None
) -> dict[str, Any] | None:
    """A template's mapping for one channel: the console's, else the studio's published one (or the
    template file's). SMS templates are the carrier-registered ids (`sms_template_ids`, else the studio's)
    filled with the item's text."""
    if channel is Channel.SMS:
        registered = settings.sms_template_ids.get(key)
        if registered:
            return {"id": registered, "fields": {"text": "{text}"}}
    else:
        console = current(session).templates.get(key, {}).get(channel.value)
        if console:
            return console
    spec = template_defaults(settings, session).get(key, {})
    found = spec.get(channel.value) if isinstance(spec, dict) else None
    return found if isinstance(found, dict) and found else None


def template_for(
    item: OutboxItem, lang: str, settings: Settings, session: Session | None = None
) -> TemplateRef | None:
    """The approved template for this item's key and channel (the console's mapping, or
    content/channels/templates.yaml)."""
    if item.template_key is None:
        return None
    channel_spec = template_spec(item.template_key, item.channel, settings, session)
    if not channel_spec:
        return None
    stored = {k: render_links(settings, str(v), item.channel) for k, v in (item.template_vars or {}).items()}
    values = {"hospital": settings.hospital_name, **stored}
    fields = channel_spec.get("fields", {})
    variables = {key: str(text).format_map(_Missing(values)) for key, text in fields.items()}
    return TemplateRef(
        key=item.template_key,
        provider_id=str(channel_spec["id"]),
        variables=variables,
        url=values.get("url"),
    )


class _Missing(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def address_of(patient: Patient, channel: Channel) -> str:
    """The plaintext address, decrypted only here, for the adapter (never logged)."""
    value = {
        Channel.SMS: patient.phone,
        Channel.WHATSAPP: patient.whatsapp,
        Channel.WECHAT: patient.wechat_openid,
        Channel.EMAIL: patient.email,
    }.get(channel)
    if not value:
        raise LookupError(f"patient {patient.id} has no {channel.value} address")
    return value


def delivery_for(session: Session, item: OutboxItem, patient: Patient, now: datetime) -> Delivery:
    from backend.outbox.sender import window_open

    settings = effective_settings(session)
    message = session.get(Message, item.message_id)
    assert message is not None
    lang = pick_language(patient.language)
    return Delivery(
        reference=str(item.id),
        to=address_of(patient, item.channel),
        outbound=render_outbound(settings, Outbound.from_json(message.parts or []), item.channel),
        lang=lang,
        window_open=window_open(session, patient.id, item.channel, now),
        template=template_for(item, lang, settings, session),
        status_callback=_status_callback(item.channel, settings),
        mail=mail_context(settings, item, patient.id, lang) if item.channel is Channel.EMAIL else None,
        time_critical=item.kind is OutboxKind.EMERGENCY,
    )


def delivery_to_follower(session: Session, item: OutboxItem, conversation: Conversation) -> Delivery:
    """A reply to a WeChat follower not linked to a patient, at the conversation's kept openid."""
    settings = effective_settings(session)
    message = session.get(Message, item.message_id)
    assert message is not None and conversation.reply_to
    return Delivery(
        reference=str(item.id),
        to=conversation.reply_to,
        outbound=render_outbound(settings, Outbound.from_json(message.parts or []), item.channel),
        lang=pick_language((conversation.state or {}).get("lang")),
        window_open=True,  # judged before: a reply outside the window is not sent at all
        status_callback=_status_callback(item.channel, settings),
    )


def delivery_to_staff(session: Session, item: OutboxItem, staff: StaffUser) -> Delivery:
    """An alert to a staff member's own phone or WeChat, her address decrypted only here. On WeChat it is
    always the approved template: her own 48-hour window is not tracked, and a template needs none."""
    from backend.outbox.gates import staff_address

    settings = effective_settings(session)
    message = session.get(Message, item.message_id)
    to = staff_address(staff, item.channel)
    assert message is not None and to
    lang = pick_language(staff.language)
    return Delivery(
        reference=str(item.id),
        to=to,
        outbound=render_outbound(settings, Outbound.from_json(message.parts or []), item.channel),
        lang=lang,
        window_open=item.channel is not Channel.WECHAT,  # SMS has no window
        template=template_for(item, lang, settings, session),
        status_callback=_status_callback(item.channel, settings),
        time_critical=True,  # an emergency nobody has taken
    )


def _status_callback(channel: Channel, settings: Settings) -> str | None:
    """Where the provider reports delivery (WeChat reports template sends to the account's own URL)."""
    if channel in (Channel.WECHAT, Channel.EMAIL):  # email reports come back as mail (DSNs)
        return None
    if channel is Channel.SMS and settings.sms_provider is SmsProvider.HTTP:
        return f"{settings.public_url}/hooks/sms-gateway"
    return f"{settings.public_url}/hooks/twilio/status"
