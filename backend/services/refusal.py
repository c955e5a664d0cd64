"""The one refusal every staff action raises: a reason code the pages translate, nothing changed.

`ActionRefused` is the family; its subclasses say which rules refused (an attachment, a spot check, a
booking, a message the sending gates stopped), so a page may catch the whole family or one member.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a staff action was refused. Each one a page can show has a translation in the page's
    `reasons` (backend/web/templates/staff/); the catalogues translate those texts."""

    # a task, case or conversation in the wrong state for the action
    ALREADY_CLAIMED = "already_claimed"
    ALREADY_INVOLVED = "already_involved"
    ALREADY_RATED = "already_rated"
    BOT_OWNS_CONVERSATION = "bot_owns_conversation"
    CLOSED = "closed"
    HANDLED_ON_CASE_PAGE = "handled_on_case_page"
    NOT_CLOSED = "not_closed"
    NO_CONVERSATION = "no_conversation"
    NO_TASK = "no_task"
    # who may act, and on which department
    ASSIGNEE_OUTSIDE_DEPARTMENT = "assignee_outside_department"
    CONTACT_NOT_PERMITTED = "contact_not_permitted"
    FLAG_NOT_PERMITTED = "flag_not_permitted"
    LEAD_DEPARTMENT_ONLY = "lead_department_only"
    MENTIONED_ONLY = "mentioned_only"
    MENTION_OUTSIDE = "mention_outside"  # mention-only access is not passed on
    SAME_DEPARTMENT = "same_department"
    # what the form names does not exist
    NO_SUCH_ARTICLE = "no_such_article"
    NO_SUCH_CHOICE = "no_such_choice"
    NO_SUCH_CODE = "no_such_code"
    NO_SUCH_CONVERSATION = "no_such_conversation"
    NO_SUCH_DEPARTMENT = "no_such_department"
    NO_SUCH_LANGUAGE = "no_such_language"
    NO_SUCH_PATIENT = "no_such_patient"
    NO_SUCH_RECORD_KIND = "no_such_record_kind"
    NOT_PUBLISHED = "not_published"
    UNKNOWN_FLAG = "unknown_flag"
    # what the form says does not fit
    CHANNEL_NOT_SUPPORTED = "channel_not_supported"
    EMAIL_INVALID = "email_invalid"
    EDUCATION_ALREADY_SENT = "education_already_sent"
    REASON_LENGTH = "reason_length"
    REASON_REQUIRED = "reason_required"
    RECORD_LENGTH = "record_length"
    SUMMARY_LENGTH = "summary_length"
    TEXT_LENGTH = "text_length"
    SLA_MINUTES = "sla_minutes"  # a response time that is not a whole number of minutes from 1
    SLA_ORDER = "sla_order"  # a more urgent priority given longer than a less urgent one
    # an attachment
    BAD_NAME = "bad_name"
    EMPTY = "empty"
    FORBIDDEN_TYPE = "forbidden_type"
    TOO_LARGE = "too_large"
    # a spot check
    COUNT_RANGE = "count_range"
    DEPARTMENT = "department"
    NOTE = "note"
    NOTE_LENGTH = "note_length"
    NOT_SUPERVISOR = "not_supervisor"
    NOTHING_TO_SAMPLE = "nothing_to_sample"
    PERIOD = "period"
    RATIO_OR_COUNT = "ratio_or_count"
    RATIO_RANGE = "ratio_range"
    VERDICT = "verdict"
    # clinical safety: marking a missed escalation, the on-duty roster
    ALREADY_MARKED = "already_marked"
    CATEGORY = "category"
    MISSING = "missing"
    NOT_A_PATIENT_MESSAGE = "not_a_patient_message"
    NOT_A_REVIEWER = "not_a_reviewer"
    OUTSIDE_DEPARTMENTS = "outside_departments"
    UNKNOWN_DEPARTMENT_OR_STAFF = "unknown_department_or_staff"
    # the admin console: people, passwords, the organisation
    CODE_INVALID = "code_invalid"
    CODE_IN_USE = "code_in_use"
    EDITED_MEANWHILE = "edited_meanwhile"
    LAST_ADMIN = "last_admin"
    NAME_REQUIRED = "name_required"
    NO_SUCH_STAFF = "no_such_staff"
    PASSWORD_HAS_USERNAME = "password_has_username"  # noqa: S105  (a reason code)
    PASSWORD_TOO_SHORT = "password_too_short"  # noqa: S105
    PASSWORDS_DIFFER = "passwords_differ"
    PHONE_INVALID = "phone_invalid"
    RESET_LINK_INVALID = "reset_link_invalid"
    UNKNOWN_LANGUAGE = "unknown_language"
    UNKNOWN_ROLE = "unknown_role"
    ROLE_REASON_REQUIRED = "role_reason_required"
    ROLE_IN_USE = "role_in_use"
    ROLE_BUILTIN = "role_builtin"
    ROLE_NAME_TAKEN = "role_name_taken"
    ROLE_NEEDS_AUTHENTICATOR = "role_needs_authenticator"
    USERNAME_INVALID = "username_invalid"
    USERNAME_TAKEN = "username_taken"
    # campuses, calendars and doctor schedules
    ADDRESS_TOO_LONG = "address_too_long"
    SCHEDULE_CLASH = "schedule_clash"
    SCHEDULE_EXTERNAL = "schedule_external"
    SCHEDULE_INVALID = "schedule_invalid"
    SENDER_INVALID = "sender_invalid"
    TIMEZONE_INVALID = "timezone_invalid"
    WINDOWS_INVALID = "windows_invalid"
    # the admin console: channel settings, templates, quiet hours and caps
    BRANDNAME_INVALID = "brandname_invalid"
    CAP_INVALID = "cap_invalid"
    FIELD_TOO_LONG = "field_too_long"
    FIELDS_INVALID = "fields_invalid"
    QUIET_HOURS_INVALID = "quiet_hours_invalid"
    RATE_INVALID = "rate_invalid"
    CREDENTIAL_INVALID = "credential_invalid"  # not in the form the provider hands credentials out
    SECRET_EMPTY = "secret_empty"  # noqa: S105  (a reason code)
    SETTING_UNKNOWN = "setting_unknown"
    SIGNATURE_INVALID = "signature_invalid"
    TEMPLATE_ID_REQUIRED = "template_id_required"
    TEMPLATE_KEY_UNKNOWN = "template_key_unknown"
    URL_INVALID = "url_invalid"
    # an outreach batch
    APPROVAL_REQUIRED = "approval_required"
    BATCH_LIST = "batch_list"
    BATCH_MESSAGE = "batch_message"
    BATCH_NAME = "batch_name"
    BATCH_NOT_DRAFT = "batch_not_draft"
    BATCH_RECIPIENTS = "batch_recipients"
    COUNTS_CHANGED = "counts_changed"
    SEND_TIME_PAST = "send_time_past"  # a batch scheduled for a time already gone
    SEND_TIME_INVALID = "send_time_invalid"  # a batch's send time is not a date and time
    INVALID_FILTER = "invalid_filter"
    NOTHING_TO_SEND = "nothing_to_send"
    OWN_BATCH = "own_batch"
    PREVIEW_REQUIRED = "preview_required"
    # the content studio: revisions of authored content
    CONTENT_INVALID = "content_invalid"
    NOT_A_DRAFT = "not_a_draft"
    NOT_AN_APPROVER = "not_an_approver"
    NOT_AN_EDITOR = "not_an_editor"
    NOT_IN_REVIEW = "not_in_review"
    NOTHING_PUBLISHED = "nothing_published"
    NOT_RETIRABLE = "not_retirable"  # a kind whose published versions stay (questionnaires)
    NO_SUCH_REVISION = "no_such_revision"
    OWN_REVISION = "own_revision"
    PUBLISH_TIME = "publish_time"
    REJECT_NOTE = "reject_note"
    TRANSLATION_FILE = "translation_file"
    # a follow-up plan
    PLAN_ALREADY_ACTIVE = "plan_already_active"
    PLAN_ALREADY_PAUSED = "plan_already_paused"
    # a patient's data rights, break-glass access
    ALREADY_ERASED = "already_erased"
    ALREADY_REQUESTED = "already_requested"
    CORRECTION_EMPTY = "correction_empty"
    CORRECTION_INVALID = "correction_invalid"
    LEGAL_HOLD = "legal_hold"
    NOT_A_PRIVACY_OFFICER = "not_a_privacy_officer"
    NOT_PENDING = "not_pending"
    NOT_NEEDED = "not_needed"  # break-glass for a record her departments already open
    OWN_REQUEST = "own_request"


class ActionRefused(Exception):
    """The action does not fit the state of what it acts on (closed, already claimed, not allowed …);
    `reason` is a code the page translates, and the form keeps what was typed."""

    reason: str  # a Reason here; a subclass may carry its own closed set

    def __init__(self, reason: Reason) -> None:
        super().__init__(str(reason))
        self.reason = reason


class NotSent(ActionRefused):
    """The message was not sent: `reason` is the sending path's code (an empty or overlong text, or what
    the outbox gates said: no consent, excluded, unreachable …), the same code its audit row names."""

    def __init__(self, reason: str) -> None:
        Exception.__init__(self, reason)
        self.reason = reason
