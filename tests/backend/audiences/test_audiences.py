"""Audiences: the filter's rules, its SQL against the Python contact rules, counts, masked samples, the
gate preview against the outbox's own verdicts, and a plan's population preview; on both databases."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from itertools import product

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.audiences.filters import (
    Audience,
    InvalidAudience,
    allowed_consent_states,
    patient_ids,
    reachable_condition,
)
from backend.audiences.plans import plan_population
from backend.audiences.preview import count, gate_counts, listed, mask_name, sample
from backend.followup.eligibility import channel_address
from backend.models import Anchor, EncounterKind, FollowUpPlan, OutboxStatus, Patient
from backend.outbox.gates import Probe, judge, load_facts
from backend.services.consents import consent_allows, do_grant_consent, do_revoke_consent
from bots.domain import Channel, ConsentPurpose
from tests import factories

TODAY = date(2026, 11, 20)
NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai: outside quiet hours


# --- the filter itself -------------------------------------------------------------------------


def test_an_audience_survives_json_and_reads_form_values() -> None:
    audience = Audience(
        department_ids=(3, 4),
        encounter_kinds=(EncounterKind.DISCHARGE,),
        date_from=date(2026, 11, 1),
        date_to=date(2026, 11, 19),
        diagnosis_prefixes=("I21",),
        age_min=40,
        age_max=80,
        languages=("zh-CN",),
        reachable_on=Channel.SMS,
        consent_for=ConsentPurpose.MARKETING,
        excluded_flags=("deceased",),
    )
    assert Audience.from_json(audience.to_json()) == audience
    assert Audience.from_json(
        {"diagnosis_prefixes": [" i21 "], "age_min": "", "department_ids": []}
    ) == Audience(diagnosis_prefixes=("I21",))


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"age_min": 50, "age_max": 40}, "age_max"),
        ({"age_min": -1}, "age_min"),
        ({"age_max": "old"}, "age_max"),
        ({"date_from": "2026-11-20", "date_to": "2026-11-01"}, "date_to"),
        ({"date_from": "20.11.2026"}, "date_from"),
        ({"languages": ["fr"]}, "languages"),
        ({"excluded_flags": ["rich"]}, "excluded_flags"),
        ({"consent_for": "marketing"}, "reachable_on"),
        ({"reachable_on": "fax"}, "reachable_on"),
        ({"encounter_kinds": ["spa"]}, "encounter_kinds"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_a_bad_filter_names_its_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidAudience) as refused:
        Audience.from_json(data)
    assert refused.value.field == field


def test_the_sql_consent_rule_is_derived_from_the_one_consent_rule() -> None:
    for purpose in ConsentPurpose:
        assert allowed_consent_states(purpose) == {
            s for s in (True, False, None) if consent_allows(purpose, s)
        }
    assert allowed_consent_states(ConsentPurpose.CARE) == {True, None}
    assert allowed_consent_states(ConsentPurpose.MARKETING) == {True}


def test_masked_names_show_one_character() -> None:
    assert mask_name("王小明") == "王**"
    assert mask_name("An") == "A*"
    assert mask_name("Z") == "Z*"
    assert mask_name(" ") == ""


# --- against the database -----------------------------------------------------------------------


def _ids(db: Session, audience: Audience) -> set[int]:
    return set(db.scalars(patient_ids(audience, TODAY)))


def test_reachability_in_sql_agrees_with_the_contact_rule(db: Session) -> None:
    people = []
    for invalid, phone, whatsapp, openid, email, bounced in product((False, True), repeat=6):
        person = factories.patient(db, invalid_contact=invalid, email_bounced=bounced)
        person.phone = "+8613800138000" if phone else None
        person.whatsapp = "+8613800138001" if whatsapp else None
        person.wechat_openid = f"o-{person.id}" if openid else None
        person.email = f"p{person.id}@example.org" if email else None
        people.append(person)
    db.flush()
    for channel in Channel:
        in_sql = set(db.scalars(sa.select(Patient.id).where(reachable_condition(channel))))
        in_python = {p.id for p in people if channel_address(p, channel) is not None}
        assert in_sql == in_python, channel


def test_each_criterion_narrows_the_segment(db: Session) -> None:
    cardio, ortho = factories.department(db), factories.department(db)
    base = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)

    def person(dept: object, *, ended: datetime = base, dx: str = "I21.0", **kw: object) -> Patient:
        born = kw.pop("birth_date", None)
        p = factories.patient(db, **kw)
        if born is not None:
            p.birth_date = born  # type: ignore[assignment]
        enc = factories.encounter(db, p, dept, started=ended - timedelta(days=3))  # type: ignore[arg-type]
        enc.ended_at, enc.primary_diagnosis = ended, dx
        return p

    a = person(cardio, language="zh-CN")
    b = person(cardio, dx="I10", birth_date=date(2000, 1, 1))
    c = person(ortho, dx="S72.0")
    d = person(cardio, ended=base - timedelta(days=30))
    e = person(cardio, deceased=True)
    f = person(cardio, dx="I2_X")  # the underscore is literal, not a LIKE wildcard
    nobody = factories.patient(db)  # no encounter at all
    db.flush()
    assert _ids(db, Audience()) >= {a.id, b.id, c.id, d.id, e.id, nobody.id}
    assert _ids(db, Audience(department_ids=(cardio.id,))) == {a.id, b.id, d.id, e.id, f.id}
    assert _ids(db, Audience(diagnosis_prefixes=("I2",))) == {a.id, d.id, e.id, f.id}
    assert _ids(db, Audience(diagnosis_prefixes=("I2_",))) == {f.id}
    window = Audience(date_from=date(2026, 11, 1), date_to=date(2026, 11, 10))
    assert _ids(db, window) == {a.id, b.id, c.id, e.id, f.id}
    assert _ids(db, Audience(date_to=date(2026, 11, 9))) == {d.id}
    assert _ids(db, Audience(department_ids=(cardio.id,), age_max=30)) == {b.id}
    assert _ids(db, Audience(department_ids=(cardio.id,), age_min=60)) == {a.id, d.id, e.id, f.id}
    assert _ids(db, Audience(department_ids=(cardio.id,), languages=("zh-CN",))) == {a.id}
    assert _ids(db, Audience(department_ids=(cardio.id,), excluded_flags=("deceased",))) == {
        a.id,
        b.id,
        d.id,
        f.id,
    }
    assert _ids(db, Audience(encounter_kinds=(EncounterKind.OUTPATIENT,))) == set()
    assert count(db, Audience(department_ids=(cardio.id,)), TODAY) == 5
    shown = sample(db, Audience(department_ids=(cardio.id,)), 3, TODAY)
    assert len(shown) == 3 and {s.id for s in shown} <= {a.id, b.id, d.id, e.id, f.id}
    assert all("****" in s.phone and s.name.endswith("*") for s in shown)


def test_consent_in_sql_follows_the_latest_event(db: Session) -> None:
    dept = factories.department(db)
    never, granted, revoked, regranted = (factories.patient(db, dept=dept) for _ in range(4))
    for p in (granted, regranted):
        for purpose in ConsentPurpose:
            do_grant_consent(db, patient_id=p.id, purpose=purpose, channel=Channel.SMS, source="test")
    for p in (revoked, regranted):
        for purpose in ConsentPurpose:
            do_revoke_consent(db, patient_id=p.id, purpose=purpose, channel=Channel.SMS, source="test")
    for purpose in ConsentPurpose:
        do_grant_consent(db, patient_id=regranted.id, purpose=purpose, channel=Channel.SMS, source="test")
    do_revoke_consent(
        db, patient_id=never.id, purpose=ConsentPurpose.CARE, channel=Channel.WECHAT, source="t"
    )
    db.flush()
    scope = Audience(department_ids=(dept.id,), reachable_on=Channel.SMS)
    care = Audience(**{**scope.__dict__, "consent_for": ConsentPurpose.CARE})
    marketing = Audience(**{**scope.__dict__, "consent_for": ConsentPurpose.MARKETING})
    assert _ids(db, care) == {never.id, granted.id, regranted.id}
    assert _ids(db, marketing) == {granted.id, regranted.id}


def test_the_gate_preview_counts_what_the_outbox_gates_decide(db: Session) -> None:
    dept = factories.department(db)
    ok = [factories.patient(db, dept=dept) for _ in range(3)]
    dead = factories.patient(db, dept=dept, deceased=True)
    dnd = factories.patient(db, dept=dept, do_not_disturb=True)
    invalid = factories.patient(db, dept=dept, invalid_contact=True)
    refused = factories.patient(db, dept=dept)
    do_revoke_consent(db, patient_id=refused.id, purpose=ConsentPurpose.CARE, channel=Channel.SMS, source="t")
    night = factories.patient(db, dept=dept, language="vi")
    night.timezone = "America/New_York"  # 22:00 there: quiet
    db.flush()
    capped = factories.patient(db, dept=dept)
    capped_conversation = factories.conversation(db, capped, Channel.SMS)
    for _ in range(get_settings().max_messages_per_day):  # the daily cap reached: deferred
        item = factories.outbox_item(db, capped_conversation, status=OutboxStatus.SENT)
        item.sent_at = NOW - timedelta(hours=2)
    db.flush()
    people = (*ok, dead, dnd, invalid, refused, night, capped)
    ids = [p.id for p in people]
    counts = gate_counts(db, listed(db, ids), Channel.SMS, ConsentPurpose.CARE, NOW)
    # the same as the outbox's gates item by item, with the facts the sender loads
    probes = [Probe(patient_id=p.id, channel=Channel.SMS, purpose=ConsentPurpose.CARE) for p in people]
    facts = load_facts(db, probes, NOW)
    verdicts = Counter(
        (v.action.value, v.reason)
        for v in (judge(pr, p, facts, NOW) for pr, p in zip(probes, people, strict=True))
    )
    grouped = Counter({("send", None): counts.send})
    grouped.update({("defer", r): n for r, n in counts.defer.items()})
    grouped.update({("suppress", r): n for r, n in counts.suppress.items()})
    assert +grouped == verdicts
    assert counts.send == 3
    assert dict(counts.defer) == {"quiet_hours": 1, "frequency_cap": 1}
    assert dict(counts.suppress) == {
        "excluded:deceased": 1,
        "excluded:do_not_disturb": 1,
        "unreachable": 1,
        "no_consent": 1,
    }
    assert dict(counts.languages) == {"en": 4, "vi": 1}
    assert counts.reachable == 5 and counts.total == 9
    # marketing needs an opt-in nobody gave
    assert (
        gate_counts(db, listed(db, [p.id for p in ok]), Channel.SMS, ConsentPurpose.MARKETING, NOW).send == 0
    )
    same = gate_counts(db, listed(db, ids), Channel.SMS, ConsentPurpose.CARE, NOW)
    assert same.digest() == counts.digest()
    do_revoke_consent(db, patient_id=ok[0].id, purpose=ConsentPurpose.CARE, channel=Channel.SMS, source="t")
    db.flush()
    assert gate_counts(db, listed(db, ids), Channel.SMS, ConsentPurpose.CARE, NOW).digest() != counts.digest()


def _plan(db: Session, name: str, **kw: object) -> FollowUpPlan:
    plan = FollowUpPlan(
        name=name,
        questionnaire_id="post_discharge",
        anchor=Anchor.DISCHARGE,
        offsets_days=kw.pop("offsets_days", [3, 30]),
        channels=kw.pop("channels", ["wechat", "sms"]),
        send_hour=10,
        **kw,
    )
    db.add(plan)
    db.flush()
    return plan


def test_a_plan_preview_counts_whom_the_plan_reaches_in_7_and_30_days(db: Session) -> None:
    cardio, ortho = factories.department(db), factories.department(db)

    def discharged(dept: object, days_ago: float, **kw: object) -> Patient:
        p = factories.patient(db, **kw)
        enc = factories.encounter(db, p, dept)  # type: ignore[arg-type]
        enc.ended_at = NOW - timedelta(days=days_ago)
        enc.started_at = enc.ended_at - timedelta(days=2)
        return p

    soon = discharged(cardio, 1)  # day 3 falls in the next 7 days
    later = discharged(cardio, 10)  # day 30 in 20 days
    past = discharged(cardio, 45)  # every offset has passed
    other = discharged(ortho, 1)
    wechat = discharged(cardio, 1)
    wechat.wechat_openid = "o-wechat"
    dead = discharged(cardio, 1, deceased=True)
    db.flush()
    draft = FollowUpPlan(
        name="unsaved",
        questionnaire_id="post_discharge",
        anchor=Anchor.DISCHARGE,
        department_ids=[cardio.id],
        offsets_days=[3, 30],
        channels=["wechat", "sms"],
        send_hour=10,
        sample_ratio=1.0,
        excluded_flags=["deceased"],
    )
    _plan(db, "ortho", department_ids=[ortho.id])
    _plan(db, "everyone")
    population = plan_population(db, draft, NOW)
    assert population.patients == {7: 2, 30: 3}
    assert dict(population.by_channel) == {"sms": 2, "wechat": 1}
    assert dict(population.by_department) == {cardio.id: 3}
    assert {s.id for s in population.sample} == {soon.id, later.id, wechat.id}
    assert [(o.name, o.patients) for o in population.overlaps] == [("everyone", 3)]
    assert past.id not in {s.id for s in population.sample} and dead.id not in {
        s.id for s in population.sample
    }
    assert other.id not in {s.id for s in population.sample}
