"""The one settings object: read once from the environment (and var/careloop.env), validated at start-up."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
import shutil
import sys
from datetime import date
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from backend.app.queues import DEFAULT_ORDER, JobQueue, parse_order, queue_name
from backend.security.crypto import Algorithm, RingSpec
from backend.voice.call_windows import VoiceSite, check_windows
from voice_ai.gateway import GatewayName
from voice_ai.tts import TtsEngine

if TYPE_CHECKING:
    from backend.security.audit_chain import AuditKeys

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV_FILE = Path(os.environ.get("CARELOOP_ENV_FILE", REPO_ROOT / "var" / "careloop.env"))
PLACEHOLDERS = {"", "changeme", "change-me", "secret", "dev"}
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


class PasswordSignIn(StrEnum):
    """Who may sign in with a password (beside single sign-on)."""

    ON = "on"
    BREAK_GLASS_ONLY = "break_glass_only"


class UnknownUsers(StrEnum):
    """What single sign-on does with a provider user who has no CareLoop account."""

    REFUSE = "refuse"
    CREATE_DISABLED = "create_disabled"


class SsoSecondFactor(StrEnum):
    """How an account whose role needs a second factor shows one when it signs in through the provider."""

    PROVIDER_OR_LOCAL = "provider_or_local"  # the ID token says so, else CareLoop asks for its own code
    PROVIDER = "provider"  # the ID token must say so (amr or acr), else the sign-in is refused
    LOCAL = "local"  # CareLoop always asks for its own code after the provider
    OFF = "off"  # the provider is trusted to have asked for one


def careloop_command() -> str:
    """The `careloop` command as a person types it in their own shell, for the hints the product prints:
    the bare name when it is on PATH and is this installation's, else the absolute path of this
    virtualenv's script (`make` installs the checkout into the venv without putting it on PATH)."""
    script = Path(sys.executable).with_name("careloop")
    found = shutil.which("careloop")
    if found and (not script.exists() or Path(found).resolve() == script.resolve()):
        return "careloop"
    if script.exists():
        return str(script)
    return f"{sys.executable} -m backend.app.cli"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class SmsProvider(StrEnum):
    """Who carries SMS: Twilio, or the generic HTTP gateway (channels/sms_gateway.py)."""

    TWILIO = "twilio"
    HTTP = "http"


class SmtpSecurity(StrEnum):
    """How the SMTP connection is protected: STARTTLS on the submission port, TLS from the first byte
    (port 465), or none (a relay on the same host or a test server only)."""

    STARTTLS = "starttls"
    SSL = "ssl"
    NONE = "none"


class Settings(BaseSettings):
    """Every knob CareLoop has. Environment names are `CARELOOP_<FIELD>` except the two URLs."""

    model_config = SettingsConfigDict(
        env_prefix="CARELOOP_", env_file=ENV_FILE, env_file_encoding="utf-8", extra="ignore"
    )

    env: Environment = Field(
        default=Environment.DEVELOPMENT,
        description="`development`, `test` or `production`; production refuses SQLite, plain http, "
        "demo data and TOTP codes on the command line, and sets secure cookies",
    )
    database_url: str = Field(
        default=f"sqlite:///{REPO_ROOT / 'var' / 'careloop.db'}",
        validation_alias="DATABASE_URL",
        description="SQLAlchemy URL; `postgresql+psycopg://user@host/db` for PostgreSQL "
        "(required in production)",
    )
    redis_url: str | None = Field(
        default=None,
        validation_alias="REDIS_URL",
        description="unset: jobs run inline and periodic jobs in the server; set: RQ workers and RQ's "
        "cron scheduler carry them",
    )
    secret_key: SecretStr = Field(
        description="at least 32 random characters; signs patient links and session tokens (`careloop init`)"
    )
    data_key: SecretStr = Field(
        description="base64 of 32 random bytes; the current key that encrypts patient data at rest "
        "(losing it loses them; see docs/security.md for rotating it)"
    )
    data_keys_previous: SecretStr | None = Field(
        default=None,
        description="comma-separated base64 keys that were `CARELOOP_DATA_KEY` before: they still decrypt "
        "values not yet re-encrypted (`careloop keys rotate`); remove one only after a rotation finished",
    )
    index_key: SecretStr | None = Field(
        default=None,
        description="base64 of 32 bytes keying the blind indexes (lookups by phone, MRN, name token); never "
        "rotated. Unset: derived from `CARELOOP_DATA_KEY`, so it must be set to the first data key "
        "before that key is rotated",
    )
    data_cipher: Algorithm = Field(
        default=Algorithm.AES_GCM,
        description="`aes-gcm` or `sm4` (SM4-CTR with HMAC-SM3): the algorithm new values are encrypted "
        "with; values under the other keep decrypting until re-encrypted",
    )
    public_url: str = Field(
        default=DEFAULT_PUBLIC_URL,
        description="the URL patients' links, webhooks' signatures and OAuth callbacks start with "
        "(https in production); unset, `careloop serve` uses the host and port it serves",
    )
    hospital_name: str = Field(
        default="CareLoop Demo Hospital", description="the hospital's name in patient messages"
    )
    cookie_secure: bool = Field(
        default=False, description="mark staff and WeChat cookies `Secure` (always on in production)"
    )
    content_dir: Path = Field(
        default=REPO_ROOT / "content",
        description="authored flows, message catalogues, questionnaires and education",
    )
    default_region: str = Field(
        default="CN", description="region for phone numbers written without a country code"
    )
    default_timezone: str = Field(
        default="Asia/Shanghai", description="time zone when the patient's is not known; the hospital's day"
    )
    default_language: str = Field(
        default="zh-CN", description="language when the patient's is not known (zh-CN, vi or en)"
    )
    session_idle_minutes: int = Field(default=15, description="a staff session ends after this idle time")
    session_max_hours: float = Field(
        default=12,
        gt=0,
        description="a staff session ends this long after sign-in however active it is (a shift); "
        "a stolen session cookie stops working by then",
    )
    password_min_length: int = Field(
        default=12,
        ge=8,
        le=128,
        description="the shortest password a staff member may set (a password equal to the username, "
        "or containing it, is refused whatever its length)",
    )
    password_reset_hours: float = Field(
        default=24, gt=0, le=168, description="how long an admin's one-time password link stays usable"
    )
    health_disk_warning_percent: int = Field(
        default=90,
        ge=1,
        le=100,
        description="the system health page warns when the disk holding media or data is this full",
    )
    login_max_failures: int = Field(
        default=5,
        ge=1,
        description="failed sign-ins for one username (from browsers it has not signed in on) before "
        "each further try waits, the wait doubling with every failure",
    )
    patient_address_limit_scale: float = Field(
        default=1.0,
        ge=0,
        description="multiplies the per-address limits on patients' links (chat, form, feedback): raise it "
        "where many patients share one address (a ward's Wi-Fi, a carrier's NAT); 0 turns them off, the "
        "per-link limits stay",
    )
    login_max_failures_per_address: int = Field(
        default=20,
        ge=1,
        description="failed sign-ins from one client address before its tries wait likewise (higher: "
        "a hospital's staff often share one address)",
    )
    login_backoff_seconds: int = Field(
        default=30, ge=1, description="the first wait once a username or address has too many failures"
    )
    login_window_minutes: int = Field(
        default=15,
        ge=1,
        description="failed sign-ins are counted over this window; also the longest wait",
    )
    password_sign_in: PasswordSignIn = Field(
        default=PasswordSignIn.ON,
        description="`on`: staff may sign in with password and authenticator code beside single sign-on; "
        "`break_glass_only`: only the accounts named in CARELOOP_BREAK_GLASS_USERNAMES may (for when the "
        "hospital's identity provider is down), everyone else signs in through it",
    )
    break_glass_usernames: list[str] = Field(
        default_factory=list,
        description="JSON list of usernames that keep password sign-in when it is `break_glass_only` "
        '(`["root"]`): keep at least one administrator here',
    )
    oidc_issuer: str = Field(
        default="",
        description="single sign-on: the OpenID Connect issuer URL (Keycloak: "
        "`https://sso.example.org/realms/hospital`); empty turns single sign-on off",
    )
    oidc_client_id: str = Field(
        default="", description="single sign-on: CareLoop's client id at the provider"
    )
    oidc_client_secret: SecretStr | None = Field(
        default=None,
        description="single sign-on: the client's secret (sent with HTTP Basic to the token endpoint)",
    )
    oidc_scopes: str = Field(
        default="openid profile email",
        description="single sign-on: the scopes asked for, space-separated (`openid` is always asked)",
    )
    oidc_username_claim: str = Field(
        default="preferred_username",
        description="single sign-on: the ID token claim holding the CareLoop username (matched in "
        "lower case)",
    )
    oidc_groups_claim: str = Field(
        default="groups",
        description="single sign-on: the ID token claim holding the user's groups or roles (a list; a "
        "dotted path such as `realm_access.roles` reaches into an object)",
    )
    oidc_group_roles: dict[str, str] = Field(
        default_factory=dict,
        description='single sign-on: JSON object from provider group to CareLoop role (`{"/ward-nurses": '
        '"nurse"}`). When set, every sign-in gives the account the roles of all its groups that map (a head '
        "nurse in the nurses' and the managers' groups holds both), and a user in none of them is refused; "
        "empty: roles are managed in CareLoop only",
    )
    oidc_unknown_users: UnknownUsers = Field(
        default=UnknownUsers.REFUSE,
        description="single sign-on: what happens to a provider user with no CareLoop account: `refuse`, "
        "or `create_disabled` (an account is made, inactive, for an admin to check and activate)",
    )
    oidc_new_user_role: str = Field(
        default="nurse",
        description="single sign-on: the role of an account made for an unknown user when no group maps",
    )
    oidc_admin_second_factor: SsoSecondFactor = Field(
        default=SsoSecondFactor.PROVIDER_OR_LOCAL,
        description="single sign-on: how a role that needs a second factor (administrative permissions) "
        "proves one: `provider_or_local` (the ID token's `amr` or `acr` shows multi-factor, else CareLoop "
        "asks for the account's own authenticator code), `provider` (the token must show it, else refused), "
        "`local` (always CareLoop's code after the provider), `off` (trust the provider)",
    )
    oidc_mfa_acr_values: list[str] = Field(
        default_factory=list,
        description="single sign-on: JSON list of `acr` values the provider gives only after a second "
        'factor (such as `["urn:mace:incommon:iap:silver"]` or a Keycloak level such as `["2"]`); the '
        "`amr` claim (RFC 8176: `mfa`, or two kinds of factor such as `pwd` and `otp`) counts in any case",
    )
    oidc_timeout_seconds: float = Field(
        default=10, gt=0, le=60, description="single sign-on: how long to wait for the provider's answers"
    )
    ldap_urls: list[str] = Field(
        default_factory=list,
        description='LDAP / Active Directory sign-in: JSON list of servers tried in order (`["ldaps://dc1.'
        'hospital.local", "ldap://dc2.hospital.local"]`); `ldaps://` is TLS from the start, `ldap://` '
        "upgrades with StartTLS (CARELOOP_LDAP_START_TLS). Empty turns LDAP sign-in off",
    )
    ldap_start_tls: bool = Field(
        default=True,
        description="LDAP: upgrade `ldap://` connections with StartTLS before any bind (a failed upgrade "
        "refuses the sign-in). Off sends passwords in clear: only for a directory on the same host",
    )
    ldap_ca_file: str = Field(
        default="",
        description="LDAP: PEM file of the certificate authorities the directory's certificate must chain "
        "to (its name is checked too); empty: the system's",
    )
    ldap_bind_dn: str = Field(
        default="",
        description="LDAP: the service account CareLoop searches with (`CN=careloop,OU=Service Accounts,"
        "DC=hospital,DC=local`)",
    )
    ldap_bind_password: SecretStr | None = Field(
        default=None, description="LDAP: the service account's password"
    )
    ldap_user_base: str = Field(
        default="", description="LDAP: where staff entries are searched (`OU=Staff,DC=hospital,DC=local`)"
    )
    ldap_user_filter: str = Field(
        default="(sAMAccountName={username})",
        description="LDAP: the filter that finds the one entry of the typed username (escaped before it is "
        "put in): Active Directory `(sAMAccountName={username})`, OpenLDAP `(uid={username})`",
    )
    ldap_name_attribute: str = Field(
        default="displayName", description="LDAP: the attribute with the person's name (else `cn`)"
    )
    ldap_group_base: str = Field(
        default="",
        description="LDAP: where groups are searched with CARELOOP_LDAP_GROUP_FILTER; empty: the user "
        "entry's `memberOf` attribute gives her groups (Active Directory, OpenLDAP's memberof overlay)",
    )
    ldap_group_filter: str = Field(
        default="(&(objectClass=groupOfNames)(member={user_dn}))",
        description="LDAP: the filter finding her groups under CARELOOP_LDAP_GROUP_BASE (`{user_dn}` and "
        "`{username}` are escaped before they are put in)",
    )
    ldap_group_roles: dict[str, str] = Field(
        default_factory=dict,
        description='LDAP: JSON object from group DN to CareLoop role (`{"CN=Ward Nurses,OU=Groups,'
        'DC=hospital,DC=local": "nurse"}`). At every sign-in the account takes the roles of all its groups '
        "that map; in none of them, she is refused and her open sessions end",
    )
    ldap_group_departments: dict[str, str] = Field(
        default_factory=dict,
        description="LDAP: JSON object from group DN to department code. When set, every sign-in gives "
        "the account the departments of its groups that map; empty: departments are managed in CareLoop",
    )
    ldap_create_users: bool = Field(
        default=False,
        description="LDAP: a directory user with a mapped group but no CareLoop account gets one at her "
        "first sign-in (just in time); off: she is refused until an admin makes her account",
    )
    ldap_timeout_seconds: float = Field(
        default=5, gt=0, le=60, description="LDAP: how long to wait to connect to a server and for answers"
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description='JSON list of addresses or networks of our reverse proxies (`["10.0.0.0/8"]`); '
        "only a request from one of them has its client address taken from X-Forwarded-For",
    )
    chat_link_days: int = Field(default=7, description="how long a patient's web chat link works")
    form_link_days: int = Field(default=14, description="how long a questionnaire form link works")
    calendar_link_days: int = Field(default=90, description="how long an appointment's .ics link works")
    feedback_link_days: int = Field(default=30, description="how long a patient's feedback page link works")
    max_message_bytes: int = Field(
        default=4096, description="longest web chat message accepted (UTF-8 bytes)"
    )
    http_header_timeout_seconds: float = Field(
        default=10,
        gt=0,
        description="`careloop serve` closes a connection whose request headers take longer (slowloris)",
    )
    http_keep_alive_seconds: int = Field(
        default=5, ge=1, description="`careloop serve` closes an idle keep-alive connection after this"
    )
    job_queue: str = Field(
        default="careloop",
        description="the default RQ queue's name (with REDIS_URL); the others are <name>-system, "
        "<name>-sends and <name>-turns",
    )
    worker_queues: str = Field(
        default=DEFAULT_ORDER,
        description="the queues `careloop worker` takes jobs from, most urgent first (RQ takes the "
        "first non-empty one): system (periodic jobs), sends (outbox), turns (inbound), default (the rest)",
    )

    nlu_url: str | None = Field(
        default=None, description="Rasa's HTTP API; unset: free text is not sent to Rasa"
    )
    nlu_min_confidence: float = Field(
        default=0.6, description="Rasa's answers below this confidence are ignored (the flow re-asks)"
    )
    nlu_embedded: bool = Field(
        default=True,
        description="read free text with the embedded intent classifier (nlu/intents.py) when Rasa is "
        "not configured, down or unsure; off: such text is re-asked, then handed to staff",
    )
    media_dir: Path = Field(
        default=REPO_ROOT / "var" / "media",
        description="patients' images and voice notes and case evidence, encrypted",
    )
    max_media_bytes: int = Field(
        default=10 * 1024 * 1024, description="largest image or voice note kept from a patient (bytes)"
    )
    fhir_import_max_bytes: int = Field(
        default=2 * 1024 * 1024,
        ge=1,
        description="largest FHIR Questionnaire file accepted for import (bytes); a LOINC PHQ-9 is "
        "about 60 kB",
    )
    max_attachment_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1, description="largest feedback case evidence file (bytes)"
    )
    # --- messaging channels; base URLs are settings so tests can point them at local fakes
    quiet_hours_start: int = Field(
        default=21, ge=0, le=23, description="local hour quiet time starts (outreach deferred)"
    )
    quiet_hours_end: int = Field(default=8, ge=0, le=23, description="local hour quiet time ends")
    max_messages_per_day: int = Field(default=5, ge=1, description="per patient and channel, all purposes")
    outreach_approval_threshold: int = Field(
        default=500,
        ge=0,
        description="an outreach batch that would reach more patients than this needs a second person's "
        "approval before it is sent (0: every batch)",
    )
    send_max_attempts: int = Field(default=6, ge=1, description="transient failures retried up to this")
    send_timeout_seconds: float = Field(
        default=10.0, description="timeout of one request to a provider (Twilio, WeChat, SMS gateway)"
    )
    wechat_app_id: str | None = Field(default=None, description="WeChat official account AppID")
    wechat_app_secret: SecretStr | None = Field(default=None, description="WeChat official account AppSecret")
    wechat_token: SecretStr | None = Field(default=None, description="the URL verification token")
    wechat_encoding_aes_key: SecretStr | None = Field(
        default=None,
        description="43 chars; safe mode (required in production: plain mode does not sign the body)",
    )
    wechat_api_root: str = Field(
        default="https://api.weixin.qq.com", description="WeChat API base; cgi-bin/ and sns/ live under it"
    )
    twilio_account_sid: str | None = Field(default=None, description="Twilio account SID")
    twilio_auth_token: SecretStr | None = Field(
        default=None, description="Twilio auth token; also checks Twilio's webhook signatures"
    )
    twilio_api_base: str = Field(
        default="https://api.twilio.com",
        description="Twilio API base; recordings are fetched with the account's credentials only under it",
    )
    twilio_sms_from: str | None = Field(default=None, description="E.164 number or Messaging Service SID")
    twilio_whatsapp_from: str | None = Field(default=None, description="E.164 WhatsApp sender")
    sms_provider: SmsProvider = Field(
        default=SmsProvider.TWILIO, description="'twilio' or 'http' (the generic gateway)"
    )
    sms_gateway_url: str | None = Field(default=None, description="the generic SMS gateway's send URL")
    sms_gateway_token: SecretStr | None = Field(
        default=None, description="bearer token for sends; HMAC key of the gateway's callbacks"
    )
    sms_gateway_sender: str | None = Field(
        default=None, description="sender passed to the generic gateway (unset: its default)"
    )
    # --- email (SMTP submission; see docs/channels.md#email)
    email_smtp_host: str | None = Field(
        default=None, description="SMTP relay that takes our mail (unset: no email channel)"
    )
    email_smtp_port: int = Field(default=587, ge=1, le=65535, description="587 (STARTTLS) or 465 (SSL)")
    email_smtp_security: SmtpSecurity = Field(
        default=SmtpSecurity.STARTTLS,
        description="'starttls', 'ssl' or 'none'; 'none' is refused in production",
    )
    email_smtp_username: str | None = Field(default=None, description="SMTP AUTH user (unset: no AUTH)")
    email_smtp_password: SecretStr | None = Field(default=None, description="SMTP AUTH password")
    email_smtp_ca_file: str | None = Field(
        default=None, description="CA bundle that signs the relay's certificate (unset: the system's)"
    )
    email_from_address: str | None = Field(
        default=None, description="the From address, e.g. follow-up@hospital.example (on email_domain)"
    )
    email_from_name: str | None = Field(
        default=None, description="the From display name (unset: the hospital's name)"
    )
    email_reply_to: str | None = Field(
        default=None, description="where patients' replies go, e.g. the service centre's mailbox"
    )
    email_domain: str | None = Field(
        default=None,
        description="our mail domain: Message-IDs, bounces+<token>@ and unsubscribe+<token>@ addresses "
        "(unset: the From address's domain); its MTA signs DKIM and pipes those two addresses to "
        "/hooks/email",
    )
    email_hook_token: SecretStr | None = Field(
        default=None,
        description="bearer token the MTA sends with bounces and unsubscribe mails to /hooks/email "
        "(unset: the hook answers 404)",
    )
    # Carriers' registrations the generic gateway passes on: Chinese carriers only deliver SMS that carry
    # a registered signature (签名) and, for notices, a registered template id; Vietnamese carriers deliver
    # from a registered brandname. The admin console can set these too (docs/channels.md).
    sms_signature: str | None = Field(
        default=None, description="the registered SMS signature (签名) for Chinese numbers, without 【】"
    )
    sms_brandname: str | None = Field(
        default=None, description="the registered Vietnamese brandname, the sender shown on +84 numbers"
    )
    sms_template_ids: dict[str, str] = Field(
        default_factory=dict,
        description='JSON {"notice": "SMS_123456"}: the carrier-registered template id per message template',
    )
    send_rates: dict[str, float] = Field(
        default_factory=dict,
        description='JSON {"twilio:+15005550006": 50}: messages per second per provider sender id, shared '
        "by every worker (unset: not limited); the keys are listed on the channels page",
    )
    # --- voice calls
    voice_gateway: GatewayName = Field(
        default=GatewayName.SIMULATED,
        description="'twilio', 'sip' (a SIP trunk or hospital PBX) or 'simulated' (development)",
    )
    twilio_voice_from: str | None = Field(default=None, description="E.164 caller id for voice calls")
    sip_trunk_host: str | None = Field(
        default=None, description="the SIP trunk's or PBX's address (host name or IP) calls are sent to"
    )
    sip_trunk_port: int = Field(default=5060, ge=1, le=65535, description="the SIP trunk's UDP port")
    sip_username: str | None = Field(
        default=None, description="digest auth user name (unset: the trunk trusts our address)"
    )
    sip_password: SecretStr | None = Field(default=None, description="digest auth password")
    sip_domain: str | None = Field(
        default=None,
        description="host part of SIP URIs if the trunk wants its domain (unset: the trunk host)",
    )
    sip_caller_id: str | None = Field(
        default=None, description="the From user: the number patients see, if the trunk lets us set it"
    )
    sip_local_address: str | None = Field(
        default=None,
        description="address put in Via, Contact and SDP (behind NAT: the public one); unset: this host's",
    )
    sip_rtp_port_min: int = Field(default=10000, ge=1024, le=65534, description="lowest local RTP port")
    sip_rtp_port_max: int = Field(
        default=20000, ge=1025, le=65535, description="highest local RTP port (two per call: RTP and RTCP)"
    )
    sip_codecs: str = Field(
        default="PCMA,PCMU", description="G.711 codecs offered, preferred first: PCMA (A-law), PCMU (mu-law)"
    )
    voice_record_at_gateway: bool = Field(
        default=True, description="ask Twilio to record each call (played from the patient's record)"
    )
    voice_vosk_models: dict[str, Path] = Field(
        default_factory=dict, description='JSON {"zh-CN": "/models/vosk-cn"}: vosk model dir per language'
    )
    # A model is a directory of files; its checksum is what `careloop voice-model-checksum DIR` prints
    # (the same as `find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum` run in
    # it). A model whose files do not match, or with no checksum set, is not loaded: docs/voice.md.
    voice_vosk_model_sha256: dict[str, str] = Field(
        default_factory=dict,
        description='JSON {"zh-CN": "<64 hex>"}: SHA-256 of each vosk model directory; a mismatch or a '
        "missing checksum leaves the language on keypad calls",
    )
    voice_pocketsphinx_fallback: bool = Field(
        default=True, description="English calls use pocketsphinx's bundled model when no vosk model is set"
    )
    voice_prompt_cache: Path = Field(
        default=REPO_ROOT / "var" / "voice-prompts",
        description="synthesised prompts, cached per text and voice",
    )
    # pyttsx3's espeak driver, driven from a thread pool, reports the previous prompt's file after
    # its directory is gone (measured: "Error saving WAV file", weakref errors); the CLI is one
    # process per prompt and shares nothing, so the server renders prompts with it by default.
    voice_tts_engine: TtsEngine = Field(default=TtsEngine.CLI, description="'cli' (espeak-ng) or 'pyttsx3'")
    voice_no_input_ms: int = Field(default=5000, ge=1000, description="silence after a prompt: re-ask")
    voice_end_silence_ms: int = Field(default=700, ge=200, description="silence that ends an answer")
    # Per recogniser, the confidence below which an answer is read back ("I heard 4, is that right?")
    # before it is stored; the defaults and how they were measured are in docs/voice.md.
    voice_confirm_below_pocketsphinx: float = Field(
        default=0.45, ge=0, le=1, description="pocketsphinx: read back answers heard with less confidence"
    )
    voice_confirm_below_vosk: float = Field(
        default=0.6, ge=0, le=1, description="vosk: read back answers heard with less confidence"
    )
    # Measured on espeak-ng voices (bench/voice_calibration.py): 4.5 % of plain answers were taken for a
    # person or a red flag (the caller is asked, and declines with 2); off, nothing said is spotted.
    voice_spotting: bool = Field(
        default=True, description="listen for red flags and 'nurse' on every closed question, not only 0"
    )
    # --- the campaign dialer
    # Regulators and patients expect calls at set hours: outside the window a call waits (never dropped).
    voice_call_windows: list[str] = Field(
        default_factory=list,
        description='JSON ["09:00-12:00", "14:00-20:00"]: local hours calls may be placed (the hospital\'s '
        "zone); empty: any hour outside quiet hours",
    )
    voice_holidays: list[date] = Field(
        default_factory=list, description='JSON ["2027-01-01"]: local days without calls (they wait)'
    )
    voice_sites: dict[str, VoiceSite] = Field(
        default_factory=dict,
        description='JSON {"east": {"departments": ["CARD"], "timezone": "Asia/Shanghai", "windows": '
        '["09:00-12:00"], "holidays": ["2027-02-10"], "caller_id": "+862100000001"}}: per campus, by '
        "department code; what a site leaves out is the hospital-wide value",
    )
    voice_max_concurrent_calls: int = Field(default=10, ge=1, description="calls up at the gateway at once")
    voice_calls_per_second: float = Field(
        default=1.0, gt=0, le=100, description="new calls per second (Twilio's default limit is 1)"
    )
    voice_redial_after_hours: float = Field(
        default=4, ge=0, description="no answer, busy, machine, hung up: call again after this"
    )
    voice_valid_confidence: float = Field(
        default=0.6, ge=0, le=1, description="monitoring: a call is a valid record when every answer is above"
    )
    # --- hospital data in: the HL7 v2 listener (`careloop hl7-listen`)
    hl7_host: str = Field(default="0.0.0.0", description="address the MLLP listener binds")  # noqa: S104
    hl7_port: int = Field(default=2575, ge=1, le=65535, description="the MLLP port (2575 is HL7's own)")
    hl7_max_message_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="larger frames are read through and answered AR"
    )
    hl7_frame_timeout_seconds: float = Field(
        default=30, gt=0, description="a frame started and left unfinished this long is answered AR"
    )
    hl7_workers: int = Field(
        default=4, ge=1, le=64, description="threads applying messages (one per connection)"
    )
    hl7_processes: int = Field(
        default=1,
        ge=1,
        le=32,
        description="listener processes sharing the port (SO_REUSEPORT), each with hl7_workers threads; "
        "more than one uses more than one core",
    )
    hl7_fallback_charset: str = Field(
        default="gb18030", description="decodes messages without MSH-18 that are not UTF-8 (GBK is a subset)"
    )
    hl7_mrn_authorities: list[str] = Field(
        default_factory=list,
        description="JSON list of PID-3 assigning authorities whose identifier is the MRN, preferred first; "
        "empty: by identifier type (MR, then PI, ...; national ids and passports last)",
    )
    hl7_allowed_peers: list[str] = Field(
        default_factory=list, description="JSON list of addresses/networks allowed to connect; empty: any"
    )
    hl7_tls_cert: Path | None = Field(default=None, description="PEM certificate: MLLP over TLS when set")
    hl7_tls_key: Path | None = Field(default=None, description="PEM private key of hl7_tls_cert")
    hl7_death_dispositions: list[str] = Field(
        default_factory=lambda: ["20", "40", "41", "42"],
        description="PV1-36 discharge dispositions that mean the patient died (UB-04 'expired' codes)",
    )
    hl7_silence_alert_minutes: int = Field(
        default=60, ge=0, description="no HL7 message for this long in working hours raises a task; 0: off"
    )
    hl7_working_hours: tuple[int, int] = Field(
        default=(8, 18), description="[start, end) local hours in which a silent HL7 feed is an alert"
    )
    studio_self_publish: bool = Field(
        default=False,
        description="an editor may approve and publish her own non-clinical texts in the studio "
        "(clinical content always needs a second person holding the approver grant)",
    )
    studio_source_language: str = Field(
        default="zh-CN",
        description="the language texts are written in first; a translation older than its source text is "
        "shown as stale in the studio",
    )
    results_hl7_host: str | None = Field(
        default=None,
        description="host of the hospital's MLLP listener that receives follow-up results as ORU^R01; "
        "unset: no HL7 write-back",
    )
    results_hl7_port: int = Field(default=2575, ge=1, le=65535, description="port of that MLLP listener")
    results_hl7_charset: str = Field(
        default="UNICODE UTF-8",
        description="MSH-18 of the ORU^R01 messages and the bytes they are written in (UNICODE UTF-8, "
        "GB 18030, 8859/1, ...)",
    )
    results_hl7_receiver: tuple[str, str] = Field(
        default=("HIS", "HOSP"),
        description="[application, facility] written in MSH-5 and MSH-6 of the ORU^R01 messages",
    )
    results_fhir_base_url: str | None = Field(
        default=None,
        description="FHIR R4 base URL that receives follow-up results as a transaction Bundle "
        "(QuestionnaireResponse and Observations); unset: no FHIR write-back",
    )
    results_fhir_token: SecretStr | None = Field(
        default=None, description="bearer token sent to that FHIR server; unset: no Authorization header"
    )
    results_timeout_seconds: float = Field(
        default=30, gt=0, description="how long one result delivery waits for the ACK or the HTTP answer"
    )
    results_max_attempts: int = Field(
        default=10, ge=1, description="a result not delivered after this many tries is marked failed"
    )
    results_retry_seconds: int = Field(
        default=60,
        ge=1,
        description="wait before the first retry of a result delivery; doubled after each try, at most 6 h",
    )
    hl7_retention_days: int = Field(
        default=180, ge=1, description="received HL7 messages are kept this long (held ones until reviewed)"
    )
    hl7_crash_after_commit: str | None = Field(
        default=None,
        description="tests only: the listener kills itself after committing this MSH-10, before its ACK",
    )
    # --- hospital data in: the FHIR R4 API (/fhir/R4)
    fhir_token_seconds: int = Field(
        default=300, ge=30, le=300, description="lifetime of a FHIR access token (SMART: at most 5 minutes)"
    )
    fhir_max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="a larger FHIR request body is refused (413) unread"
    )
    # --- hospital data in: file imports (`careloop import`, /staff/imports)
    import_dir: Path = Field(
        default=REPO_ROOT / "var" / "imports",
        description="uploaded import files (named by their SHA-256), dry-run plans, reconciliation reports",
    )
    import_max_bytes: int = Field(
        default=200 * 1024 * 1024, ge=1024, description="largest CSV or Excel file accepted to import (bytes)"
    )
    his_connect_timeout_seconds: int = Field(
        default=10,
        ge=1,
        le=300,
        description="a pull from a HIS database source (/staff/his-sources) gives up connecting after this "
        "many seconds and reports the source unreachable",
    )
    # --- a patient's data rights and retention (docs/privacy.md)
    medical_record_retention_years: int = Field(
        default=30,
        ge=0,
        description="erasure is refused while the patient's last visit is younger than this (statutory "
        "retention of medical records: 30 years for inpatient records in China, at least 10 in Vietnam)",
    )
    retention_message_days: int = Field(
        default=1095, ge=1, description="message texts and attachments older than this are blanked"
    )
    retention_recording_days: int = Field(
        default=365,
        ge=1,
        description="call recordings and the audio of transcripts older than this are removed",
    )
    retention_import_file_days: int = Field(
        default=30, ge=1, description="uploaded import files and their plans older than this are deleted"
    )
    retention_work_log_days: int = Field(
        default=180,
        ge=1,
        description="finished long-work jobs lose their parameters, errors and results after this",
    )
    retention_batch_size: int = Field(
        default=500, ge=1, le=10_000, description="rows the retention job changes per transaction"
    )
    break_glass_minutes: int = Field(
        default=60, ge=5, le=24 * 60, description="how long break-glass access to one record lasts"
    )
    data_export_dir: Path = Field(
        default=REPO_ROOT / "var" / "exports",
        description="patients' data exports (FHIR Bundle and PDF), encrypted; removed after "
        "retention_import_file_days",
    )
    tombstone_file: Path = Field(
        default=REPO_ROOT / "var" / "tombstones.jsonl",
        description="erasures, also appended here (no personal data) so they can be re-applied after a "
        "restore from a backup taken before them; keep it outside the database's backups",
    )
    # --- clinical safety: emergency guidance, response times, on-duty alerts
    emergency_number: str = Field(
        default="120",
        description="the site's emergency number emergency guidance gives (120 in China, 115 in Vietnam)",
    )
    crisis_line: str = Field(
        default="12356",
        description="the mental-health crisis line guidance on self-harm gives (China's national line 12356)",
    )
    safety_classifier: bool = Field(
        default=True,
        description="read every inbound message with the safety rules and their second net (the embedded "
        "classifier, which can only add an emergency the rules missed); false: the rules alone",
    )
    sla_minutes: dict[str, int] = Field(
        default_factory=dict,
        description='JSON {"emergency": 15, "urgent": 60}: response time per task priority; a department may '
        "set its own; unset priorities keep the built-in 15 min / 1 h / 4 h / 24 h / 72 h",
    )
    duty_alert_minutes: int = Field(
        default=15, ge=1, description="an emergency task nobody took: alert the on-duty person, then fallback"
    )
    # --- backups and the audit trail
    backup_key: SecretStr | None = Field(
        default=None,
        description="base64 of 32 random bytes; encrypts `careloop backup` archives (or pass --key-file). "
        "Must differ from CARELOOP_DATA_KEY and be stored apart from it and from the archives",
    )
    backup_dir: Path | None = Field(
        default=None,
        description="the folder `careloop backup` archives are written to; the system health page reads "
        "the manifest kept beside each (`ARCHIVE.manifest.json`) for the newest backup's age",
    )
    backup_max_age_hours: int = Field(
        default=26,
        ge=1,
        description="the system health page warns when the newest backup in backup_dir is older than "
        "this (a nightly backup, with two hours' slack)",
    )
    audit_key: SecretStr | None = Field(
        default=None,
        description="at least 32 random characters; signs the audit chain's head and retention checkpoints "
        "(unset: derived from CARELOOP_SECRET_KEY, so rotating that key needs this set to the old value)",
    )
    audit_keys_previous: SecretStr | None = Field(
        default=None,
        description="earlier audit keys, comma-separated, newest first: the chain head, retention "
        "checkpoints and not-yet-sealed rows signed with them still verify and seal after "
        "CARELOOP_AUDIT_KEY changes (new signatures always use the current key)",
    )
    audit_retention_days: int = Field(
        default=365,
        ge=183,
        description="audit rows older than this are removed in whole chain segments, leaving a signed "
        "checkpoint; at least six months (China's MLPS 2.0 asks for six months of logs)",
    )
    audit_seal_seconds: int = Field(
        default=5,
        ge=1,
        le=300,
        description="how often the periodic sealer adds committed audit rows to the hash chain; a row is "
        "unsealed (not yet tamper-evident) for about this long after its commit",
    )
    audit_unsealed_warn_minutes: int = Field(
        default=10,
        ge=1,
        description="`careloop audit verify` warns when a committed audit row has waited this long for "
        "the sealer (the periodic jobs are not running)",
    )

    @field_validator("redis_url", mode="before")
    @classmethod
    def _empty_redis_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("worker_queues")
    @classmethod
    def _known_queues(cls, value: str) -> str:
        parse_order(value)
        return value

    @field_validator("sla_minutes")
    @classmethod
    def _known_priorities(cls, value: dict[str, int]) -> dict[str, int]:
        from backend.models.tasks import TaskPriority  # the models read settings: import late

        unknown = set(value) - {p.value for p in TaskPriority}
        if unknown or any(minutes < 1 for minutes in value.values()):
            raise ValueError(f"sla_minutes: priorities {sorted(TaskPriority)} with minutes >= 1")
        return value

    @field_validator("send_rates")
    @classmethod
    def _positive_rates(cls, value: dict[str, float]) -> dict[str, float]:
        if any(rate <= 0 for rate in value.values()):
            raise ValueError("send_rates: messages per second above 0")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError as exc:
                raise ValueError(f"CARELOOP_TRUSTED_PROXIES: {entry!r} is not an address or network") from exc
        return value

    @field_validator("sip_codecs")
    @classmethod
    def _g711(cls, value: str) -> str:
        names = [name.strip().upper() for name in value.split(",") if name.strip()]
        if not names or any(name not in ("PCMA", "PCMU") for name in names) or len(set(names)) != len(names):
            raise ValueError("CARELOOP_SIP_CODECS: PCMA and/or PCMU, comma-separated, preferred first")
        return ",".join(names)

    @field_validator("voice_call_windows")
    @classmethod
    def _call_windows(cls, value: list[str]) -> list[str]:
        return check_windows(value)

    @field_validator("voice_vosk_model_sha256")
    @classmethod
    def _sha256(cls, value: dict[str, str]) -> dict[str, str]:
        for lang, digest in value.items():
            if not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
                raise ValueError(f"CARELOOP_VOICE_VOSK_MODEL_SHA256[{lang!r}] is not 64 hex digits")
        return {lang: digest.lower() for lang, digest in value.items()}

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _refuse_weak_secrets(self) -> Settings:
        if (
            self.secret_key.get_secret_value().lower() in PLACEHOLDERS
            or len(self.secret_key.get_secret_value()) < 32
        ):
            raise ValueError(
                f"CARELOOP_SECRET_KEY must be at least 32 random characters (run `{careloop_command()} init`)"
            )
        try:
            raw = base64.b64decode(self.data_key.get_secret_value(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"CARELOOP_DATA_KEY must be base64 (run `{careloop_command()} init`)") from exc
        if len(raw) != 32:
            raise ValueError("CARELOOP_DATA_KEY must decode to 32 bytes")
        if self.sip_rtp_port_max - self.sip_rtp_port_min < 3:
            raise ValueError("CARELOOP_SIP_RTP_PORT_MAX must be at least 3 above CARELOOP_SIP_RTP_PORT_MIN")
        if self.backup_key is not None:
            try:
                backup = base64.b64decode(self.backup_key.get_secret_value(), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ValueError("CARELOOP_BACKUP_KEY must be base64 of 32 bytes") from exc
            if len(backup) != 32:
                raise ValueError("CARELOOP_BACKUP_KEY must decode to 32 bytes")
            if backup == raw:
                # one stolen key would then open both the archives and the identifiers in them
                raise ValueError("CARELOOP_BACKUP_KEY must differ from CARELOOP_DATA_KEY")
        if self.email_hook_token is not None and len(self.email_hook_token.get_secret_value()) < 24:
            # it lets its bearer fail any email and stop any patient's emails
            raise ValueError("CARELOOP_EMAIL_HOOK_TOKEN must be at least 24 random characters")
        if self.audit_key is not None and len(self.audit_key.get_secret_value()) < 32:
            raise ValueError("CARELOOP_AUDIT_KEY must be at least 32 random characters")
        if any(len(k) < 32 for k in self._previous_audit_keys()):
            raise ValueError("each of CARELOOP_AUDIT_KEYS_PREVIOUS must be at least 32 random characters")
        ring = self.key_ring  # decodes every key, so a bad one stops start-up rather than a read
        if ring.previous and ring.index_key is None:
            # the indexes were made with a key derived from the first data key; deriving them from the
            # new one would make every lookup by phone, MRN or name miss
            raise ValueError(
                "CARELOOP_DATA_KEYS_PREVIOUS is set: set CARELOOP_INDEX_KEY to the data key the blind "
                "indexes "
                "were made with (the first CARELOOP_DATA_KEY) so lookups keep working across rotations"
            )
        if self.env is Environment.PRODUCTION:
            if self.database_url.startswith("sqlite"):
                raise ValueError("production needs DATABASE_URL pointing at PostgreSQL")
            if not self.public_url.startswith("https://"):
                raise ValueError("production needs an https CARELOOP_PUBLIC_URL")
            if self.wechat_token is not None and self.wechat_encoding_aes_key is None:
                # Plain mode signs the timestamp and nonce, not the body: a captured signature
                # forges any body (an unsubscribe included) for the replay window.
                raise ValueError(
                    "production refuses WeChat plain mode: set CARELOOP_WECHAT_ENCODING_AES_KEY (safe mode)"
                )
            if self.email_smtp_host is not None and self.email_smtp_security is SmtpSecurity.NONE:
                raise ValueError("production refuses unencrypted SMTP: set CARELOOP_EMAIL_SMTP_SECURITY")
            self.cookie_secure = True
            if self.hl7_crash_after_commit:
                raise ValueError("CARELOOP_HL7_CRASH_AFTER_COMMIT is a test hook; not in production")
        return self

    @property
    def sso_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)

    def queue_name(self, kind: JobQueue) -> str:
        return queue_name(self.job_queue, kind)

    @property
    def ldap_enabled(self) -> bool:
        return bool(self.ldap_urls)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def data_key_bytes(self) -> bytes:
        return base64.b64decode(self.data_key.get_secret_value())

    @property
    def backup_key_bytes(self) -> bytes | None:
        return None if self.backup_key is None else base64.b64decode(self.backup_key.get_secret_value())

    @property
    def audit_key_bytes(self) -> bytes:
        """The key signing the audit chain: its own setting, else one derived from the secret key."""
        from backend.security.crypto import derive_key

        if self.audit_key is not None:
            return self.audit_key.get_secret_value().encode("utf-8")
        return derive_key(self.secret_key.get_secret_value().encode("utf-8"), b"careloop/audit-chain/v1")

    def _previous_audit_keys(self) -> list[str]:
        raw = self.audit_keys_previous.get_secret_value() if self.audit_keys_previous else ""
        return [part.strip() for part in raw.split(",") if part.strip()]

    @property
    def audit_keys(self) -> AuditKeys:
        """The audit key that signs, and the earlier ones that still verify (security/audit_chain.py)."""
        from backend.security.audit_chain import AuditKeys

        return AuditKeys(self.audit_key_bytes, tuple(k.encode("utf-8") for k in self._previous_audit_keys()))

    @property
    def key_ring(self) -> RingSpec:
        """The field cipher's keys: current, previous, algorithm and the (unrotated) blind-index key."""
        return RingSpec(
            current=self.data_key_bytes,
            previous=tuple(_key_list("CARELOOP_DATA_KEYS_PREVIOUS", self.data_keys_previous)),
            algorithm=self.data_cipher,
            index_key=None
            if self.index_key is None
            else _one_key("CARELOOP_INDEX_KEY", self.index_key.get_secret_value()),
        )


def _one_key(name: str, text: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{name} must hold base64 keys") from exc
    if len(raw) != 32:
        raise ValueError(f"{name} keys must decode to 32 bytes")
    return raw


def _key_list(name: str, value: SecretStr | None) -> list[bytes]:
    if value is None:
        return []
    return [_one_key(name, part) for part in value.get_secret_value().split(",") if part.strip()]


def environment_names() -> set[str]:
    """The environment variable names Settings reads (docker-compose is checked against these)."""
    names = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names.add(alias if isinstance(alias, str) else f"CARELOOP_{name.upper()}")
    return names


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()  # type: ignore[call-arg]  # secrets come from the environment
