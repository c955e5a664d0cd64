"""SQLAlchemy 2 models of CareLoop's state; Alembic migrations are generated from these."""

from backend.models.audit import AuditEvent
from backend.models.base import Base
from backend.models.binding import BindAttempt, BindCode, BindMethod, BindOutcome, DepartmentLink
from backend.models.booking import (
    Appointment,
    AppointmentEvent,
    AppointmentEventKind,
    AppointmentReminder,
    AppointmentStatus,
    DoctorSchedule,
    ReminderStatus,
    Site,
    Slot,
)
from backend.models.cases import (
    CaseAttachment,
    CaseDepartment,
    CaseKind,
    CaseProgress,
    CaseSource,
    FeedbackCase,
    HandlingRecord,
    RecordKind,
    Satisfaction,
)
from backend.models.content import ContentItem, ContentRevision, RevisionState
from backend.models.dialogue import ChannelPreference, ConversationStep
from backend.models.fhir import FhirAccessToken, FhirClient, FhirUsedAssertion
from backend.models.followup import (
    Anchor,
    Finding,
    FollowUpPlan,
    OutreachStatus,
    OutreachTask,
    QuestionnaireResponse,
    QuestionnaireVersion,
    ResponseStatus,
)
from backend.models.imports import ImportMapping
from backend.models.integration import (
    CodeKind,
    CodeMapping,
    EncounterIdentifier,
    Hl7Message,
    Hl7Status,
    PatientIdentifier,
    PatientMerge,
)
from backend.models.messaging import Conversation, ConversationOwner, Direction, Message, MessageStatus
from backend.models.org import Clinician, ClinicianKind, Department, Ward
from backend.models.outbox import OutboxItem, OutboxKind, OutboxStatus
from backend.models.outreach import BatchPurpose, BatchState, OutreachBatch, OutreachPreview
from backend.models.patients import ConsentEvent, Encounter, EncounterKind, Patient, Sex
from backend.models.safety import DutyRoster, MissedEscalation, SafetyAlert, SlaPolicy
from backend.models.spot_checks import SpotCheck, SpotCheckItem, SpotVerdict
from backend.models.staff import (
    Heartbeat,
    HomeLayout,
    LoginAttempt,
    PasswordReset,
    Role,
    StaffSession,
    StaffUser,
)
from backend.models.task_events import ResolutionCode, TaskEvent, TaskEventKind, TaskMention
from backend.models.tasks import Task, TaskKind, TaskPriority, TaskStatus
from backend.models.voice import VoiceCall
from backend.models.work import WorkJob, WorkState

__all__ = [
    "Anchor",
    "Appointment",
    "AppointmentEvent",
    "AppointmentEventKind",
    "AppointmentReminder",
    "AppointmentStatus",
    "AuditEvent",
    "Base",
    "BatchPurpose",
    "BatchState",
    "BindAttempt",
    "BindCode",
    "BindMethod",
    "BindOutcome",
    "CaseAttachment",
    "CaseDepartment",
    "CaseKind",
    "CaseProgress",
    "CaseSource",
    "ChannelPreference",
    "Clinician",
    "ClinicianKind",
    "CodeKind",
    "CodeMapping",
    "ConsentEvent",
    "ContentItem",
    "ContentRevision",
    "Conversation",
    "ConversationOwner",
    "ConversationStep",
    "Department",
    "DepartmentLink",
    "Direction",
    "DoctorSchedule",
    "DutyRoster",
    "Encounter",
    "EncounterIdentifier",
    "EncounterKind",
    "FeedbackCase",
    "FhirAccessToken",
    "FhirClient",
    "FhirUsedAssertion",
    "Finding",
    "FollowUpPlan",
    "HandlingRecord",
    "Heartbeat",
    "Hl7Message",
    "Hl7Status",
    "HomeLayout",
    "ImportMapping",
    "LoginAttempt",
    "Message",
    "MessageStatus",
    "MissedEscalation",
    "OutboxItem",
    "OutboxKind",
    "OutboxStatus",
    "OutreachBatch",
    "OutreachPreview",
    "OutreachStatus",
    "OutreachTask",
    "PasswordReset",
    "Patient",
    "PatientIdentifier",
    "PatientMerge",
    "QuestionnaireResponse",
    "QuestionnaireVersion",
    "RecordKind",
    "ReminderStatus",
    "ResolutionCode",
    "ResponseStatus",
    "RevisionState",
    "Role",
    "SafetyAlert",
    "Satisfaction",
    "Sex",
    "Site",
    "SlaPolicy",
    "Slot",
    "SpotCheck",
    "SpotCheckItem",
    "SpotVerdict",
    "StaffSession",
    "StaffUser",
    "Task",
    "TaskEvent",
    "TaskEventKind",
    "TaskKind",
    "TaskMention",
    "TaskPriority",
    "TaskStatus",
    "VoiceCall",
    "Ward",
    "WorkJob",
    "WorkState",
]
