"""The SMS channel in one import: rendering, the Twilio and generic-gateway senders, gateway callbacks.

The pieces live in `sms_render` (Outbound → text, numbered replies → choice payloads), `sms_twilio`
(Twilio Messages API and its error mapping) and `sms_gateway` (the generic HTTP gateway and its signed
callbacks); Twilio's inbound and status webhooks are parsed in `twilio_webhooks`, shared with WhatsApp.
"""

from __future__ import annotations

from channels.sms_gateway import HttpGatewaySms, gateway_signature, parse_gateway_callback
from channels.sms_render import choices_of, numbered_choice, render_sms
from channels.sms_twilio import TwilioSms

__all__ = [
    "HttpGatewaySms",
    "TwilioSms",
    "choices_of",
    "gateway_signature",
    "numbered_choice",
    "parse_gateway_callback",
    "render_sms",
]
