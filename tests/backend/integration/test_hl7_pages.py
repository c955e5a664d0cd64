"""The integration pages: the HL7 message log, one message parsed, reprocess, code mappings; role-gated."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.models import CodeMapping, Encounter, Hl7Message, Hl7Status, Patient, Role
from tests import factories
from tests.backend.integration.hl7_peer import MllpPeer, adt
from tests.backend.security.test_staff_auth import _csrf, sign_in

Address = tuple[str, int]


def _integration_user(db: Session, client: TestClient) -> None:
    factories.staff(db, username="feed", role=Role.INTEGRATION)
    db.commit()
    assert sign_in(client, "feed").status_code == 303


def test_message_log_lists_filters_and_shows_one_message(
    hl7_address: Address, db: Session, client: TestClient
) -> None:
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(adt("A01", "PG1", name="张^伟")).code == "AA"
        assert peer.send(adt("A01", "PG2", mrn=None)).code == "AE"
    _integration_user(db, client)
    page = client.get("/staff/integration/messages")
    assert page.status_code == 200 and "PG1" in page.text and "PG2" in page.text
    invalid = client.get("/staff/integration/messages", params={"status": "invalid"})
    assert "PG2" in invalid.text and "PG1" not in invalid.text and "PID-3" in invalid.text
    row = db.scalars(sa.select(Hl7Message).where(Hl7Message.control_id == "PG1")).one()
    detail = client.get(f"/staff/integration/messages/{row.id}")
    assert detail.status_code == 200 and "PID-5" in detail.text and "张^伟" in detail.text
    assert 'id="reprocess"' not in detail.text  # applied messages are not applied again


def test_held_message_reprocessed_from_its_page(
    hl7_address: Address, db: Session, client: TestClient
) -> None:
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(adt("A01", "K1")).code == "AA"
        assert peer.send(adt("A08", "K1", name="Zhang^Weiguo")).code == "AE"
    held = db.scalars(sa.select(Hl7Message).where(Hl7Message.status == Hl7Status.HELD)).one()
    _integration_user(db, client)
    page = client.get(f"/staff/integration/messages/{held.id}")
    assert 'id="reprocess"' in page.text
    done = client.post(
        f"/staff/integration/messages/{held.id}/reprocess",
        data={"csrf_token": _csrf(page.text)},
        follow_redirects=True,
    )
    assert done.status_code == 200 and 'id="done"' in done.text
    db.expire_all()
    assert db.get(Hl7Message, held.id).status is Hl7Status.APPLIED  # type: ignore[union-attr]
    assert db.scalars(sa.select(Patient)).one().name == "Weiguo Zhang"


def test_pending_code_mapped_from_the_codes_page(
    hl7_address: Address, db: Session, client: TestClient
) -> None:
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(adt("A01", "C1", service="0301")).code == "AA"
    cardiology = factories.department(db, code="CARD")
    _integration_user(db, client)
    page = client.get("/staff/integration/codes")
    mapping = db.scalars(sa.select(CodeMapping).where(CodeMapping.code == "0301")).one()
    assert page.status_code == 200 and f'data-mapping="{mapping.id}"' in page.text
    client.post(
        f"/staff/integration/codes/{mapping.id}",
        data={"target": cardiology.id, "csrf_token": _csrf(page.text)},
    )
    db.expire_all()
    assert db.scalars(sa.select(Encounter)).one().department_id == cardiology.id


def test_other_roles_are_refused(db: Session, client: TestClient) -> None:
    factories.staff(db, username="nurse1", role=Role.NURSE)
    db.commit()
    sign_in(client, "nurse1")
    assert client.get("/staff/integration/messages").status_code == 403
    assert client.get("/staff/integration/codes").status_code == 403
