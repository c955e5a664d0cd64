"""The email channel: RFC 5322 messages built with the standard library, submitted over SMTP (smtplib).

A message is multipart/alternative: a plain-text part (the parts laid out as on SMS) and an HTML part
rendered by jinja2 with autoescape, so nothing in a message text can become markup. Headers:

- `Message-ID: <careloop.<item token>@<domain>>`, made from the outbox item, so a resend after an
  ambiguous attempt carries the same id and a mail client that files by Message-ID shows one message;
- the envelope sender (the bounce `Return-Path`) is `bounces+<item token>@<domain>` (VERP): a DSN comes
  back to an address that names the item, whatever the remote MTA quotes of the original;
- `List-Unsubscribe` with an https one-click link (RFC 8058, with `List-Unsubscribe-Post`) and a
  `mailto:unsubscribe+<token>@<domain>`; `Auto-Submitted: auto-generated` (RFC 3834) so vacation
  responders stay quiet;
- every header is final when the message leaves us (Date and Message-ID included), so the relay may
  DKIM-sign it without adding any: signing is the MTA's job (OpenDKIM, Postfix, a provider's relay).

Failures are classified by SMTP reply: 5xx permanent (5.1.x on RCPT: the address does not exist),
4xx and broken connections transient; a connection lost after the message body was sent, before the
server's answer, is ambiguous (`timeout`): the server may have taken it.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from jinja2 import Environment

from bots.domain import Channel
from bots.messages import Choices, Link, MediaRef, Outbound, Text
from channels.base import Delivery, DeliveryStatus, MailContext, SendFailed, SendResult
from channels.sms_render import render_sms

_HTML = Environment(autoescape=True, keep_trailing_newline=True).from_string(
    """<!doctype html>
<html lang="{{ lang }}">
<head><meta charset="utf-8"><title>{{ subject }}</title></head>
<body style="font-family: sans-serif; font-size: 16px; line-height: 1.5; color: #1a1a1a;">
{% for block in blocks %}
{% if block.kind == "text" %}<p>{{ block.lines | join("\n") | e | replace("\n", "<br>"|safe) }}</p>
{% elif block.kind == "choices" %}<ol>{% for label in block.lines %}<li>{{ label }}</li>{% endfor %}</ol>
{% elif block.kind == "link" %}<p><a href="{{ block.url }}">{{ block.label }}</a></p>
{% endif %}
{% endfor %}<hr>
<p style="font-size: 13px; color: #555;">{{ footer }}
<a href="{{ unsubscribe_url }}">{{ unsubscribe_label }}</a></p>
</body>
</html>
"""
)


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    security: str  # "starttls", "ssl" or "none" (backend.app.settings.SmtpSecurity)
    from_address: str
    from_name: str
    domain: str
    username: str | None = None
    password: str | None = None
    reply_to: str | None = None
    timeout: float = 10.0
    ca_file: str | None = None


def message_id(context: MailContext, domain: str) -> str:
    return f"<careloop.{context.item_token}@{domain}>"


def bounce_address(context: MailContext, domain: str) -> str:
    """The envelope sender (VERP): a bounce names the item it is about in the address it comes back to."""
    return f"bounces+{context.item_token}@{domain}"


def _blocks(outbound: Outbound) -> list[dict[str, object]]:
    blocks: list[dict[str, object]] = []
    for part in outbound.parts:
        if isinstance(part, Text) and part.text:
            blocks.append({"kind": "text", "lines": part.text.splitlines()})
        elif isinstance(part, Choices) and part.options:
            blocks.append({"kind": "choices", "lines": [option.label for option in part.options]})
        elif isinstance(part, Link | MediaRef):
            label = part.label if isinstance(part, Link) else ""
            if part.url.startswith(("https://", "http://")):  # never javascript: or data: in an href
                blocks.append({"kind": "link", "url": part.url, "label": label or part.url})
    return blocks


def build_message(delivery: Delivery, config: SmtpConfig, now: datetime | None = None) -> EmailMessage:
    """The message as it leaves us: every header final, text and HTML alternatives."""
    context = delivery.mail
    if context is None:
        raise ValueError("an email delivery needs its MailContext")
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = Address(display_name=config.from_name, addr_spec=config.from_address)
    message["To"] = Address(addr_spec=delivery.to)
    if config.reply_to:
        message["Reply-To"] = Address(addr_spec=config.reply_to)
    message["Subject"] = context.subject
    message["Date"] = format_datetime(now or datetime.now(UTC))
    message["Message-ID"] = message_id(context, config.domain)
    message["List-Unsubscribe"] = (
        f"<{context.unsubscribe_url}>, "
        f"<mailto:unsubscribe+{context.unsubscribe_token}@{config.domain}?subject=unsubscribe>"
    )
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    if context.auto_submitted:
        message["Auto-Submitted"] = "auto-generated"
    text = render_sms(delivery.outbound)
    footer = "\n\n-- \n" + "\n".join(
        line for line in (context.footer, f"{context.unsubscribe_label}: {context.unsubscribe_url}") if line
    )
    message.set_content(text + footer, subtype="plain", charset="utf-8", cte="quoted-printable")
    html = _HTML.render(
        lang=delivery.lang,
        subject=context.subject,
        blocks=_blocks(delivery.outbound),
        footer=context.footer,
        unsubscribe_url=context.unsubscribe_url,
        unsubscribe_label=context.unsubscribe_label or context.unsubscribe_url,
    )
    message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    message["Content-Language"] = delivery.lang  # after the parts: set_content clears Content-* headers
    return message


def _reply_code(exc: smtplib.SMTPResponseException) -> str:
    detail = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else ""
    enhanced = detail.split(" ", 1)[0] if detail[:2] in ("4.", "5.") else ""
    return f"smtp_{exc.smtp_code}" + (f"_{enhanced}" if enhanced else "")


def classify(exc: smtplib.SMTPResponseException, *, recipient: bool = False) -> SendFailed:
    """A refusal by SMTP reply: 5xx permanent, 4xx transient; a 5.1.x on RCPT means no such address."""
    code = _reply_code(exc)
    if 500 <= exc.smtp_code < 600:
        no_such_address = recipient and "_5.1." in code
        return SendFailed(
            f"smtp refused ({exc.smtp_code})", permanent=True, invalid_address=no_such_address, code=code
        )
    return SendFailed(f"smtp deferred ({exc.smtp_code})", permanent=False, code=code)


class SmtpEmail:
    """Submits each message on its own connection: a few per minute per patient population, and a
    connection per send keeps a half-dead session from swallowing the next message."""

    channel = Channel.EMAIL

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.config.ca_file)

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        if config.security == "ssl":
            return smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout, context=self._tls())
        smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
        try:
            if config.security == "starttls":
                smtp.ehlo()
                smtp.starttls(context=self._tls())  # refuses if not offered: never fall back to clear text
                smtp.ehlo()
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, delivery: Delivery) -> SendResult:
        assert delivery.mail is not None, "an email delivery needs its MailContext"
        message = build_message(delivery, self.config)
        body = message.as_bytes(policy=policy.SMTP)
        envelope_from = bounce_address(delivery.mail, self.config.domain)
        stage = "connect"
        try:
            smtp = self._connect()
            try:
                if self.config.username:
                    stage = "auth"
                    smtp.login(self.config.username, self.config.password or "")
                stage = "mail"
                code, reply = smtp.mail(envelope_from)
                if code != 250:
                    raise smtplib.SMTPSenderRefused(code, reply, envelope_from)
                stage = "rcpt"
                code, reply = smtp.rcpt(delivery.to)
                if code not in (250, 251):
                    raise smtplib.SMTPRecipientsRefused({delivery.to: (code, reply)})
                stage = "data"
                code, reply = smtp.data(body)  # raises only for the DATA command's own refusal
                if code != 250:
                    raise smtplib.SMTPDataError(code, reply)
            finally:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    smtp.close()
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            raise classify(smtplib.SMTPResponseException(code, reply), recipient=True) from None
        except smtplib.SMTPAuthenticationError as exc:
            # our credentials, not the patient's address: keep retrying while someone fixes the settings
            raise SendFailed(
                "smtp authentication refused", permanent=False, code=f"auth_{exc.smtp_code}"
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise classify(exc) from None
        except smtplib.SMTPNotSupportedError:
            raise SendFailed(
                f"smtp server lacks what {stage} needs", permanent=False, code="unsupported"
            ) from None
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            if stage == "data":  # the body may have arrived before the connection went
                raise SendFailed(
                    f"smtp connection lost after the body: {type(exc).__name__}",
                    permanent=False,
                    code="timeout",
                ) from None
            raise SendFailed(
                f"smtp {stage} failed: {type(exc).__name__}", permanent=False, code="connection"
            ) from None
        return SendResult((message_id(delivery.mail, self.config.domain),), DeliveryStatus.QUEUED)
