"""Demo data: departments, clinicians, staff and ~200 patients (zh-CN, vi, en) with visits over 60 days."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pyotp
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.demo.booking import seed_schedules
from backend.models import (
    Anchor,
    Clinician,
    ClinicianKind,
    Department,
    Encounter,
    EncounterKind,
    FollowUpPlan,
    Patient,
    Role,
    Sex,
    StaffUser,
    Ward,
)
from backend.models.base import utcnow
from backend.security.auth import hash_password

DEPARTMENTS = [
    (
        "CARD",
        "Cardiology",
        {"zh-CN": "心内科", "vi": "Tim mạch", "en": "Cardiology"},
        [("I10", "Essential hypertension"), ("I21.9", "Acute myocardial infarction")],
    ),
    (
        "ORTH",
        "Orthopaedics",
        {"zh-CN": "骨科", "vi": "Chấn thương chỉnh hình", "en": "Orthopaedics"},
        [("S72.0", "Fracture of neck of femur"), ("M17.1", "Primary gonarthrosis")],
    ),
    (
        "OBST",
        "Obstetrics",
        {"zh-CN": "产科", "vi": "Sản khoa", "en": "Obstetrics"},
        [("O80", "Single spontaneous delivery"), ("O82", "Caesarean delivery")],
    ),
    (
        "GSUR",
        "General Surgery",
        {"zh-CN": "普外科", "vi": "Ngoại tổng quát", "en": "General Surgery"},
        [("K35.8", "Acute appendicitis"), ("K80.2", "Gallstones")],
    ),
    (
        "ENDO",
        "Endocrinology",
        {"zh-CN": "内分泌科", "vi": "Nội tiết", "en": "Endocrinology"},
        [("E11.9", "Type 2 diabetes mellitus"), ("E05.0", "Thyrotoxicosis")],
    ),
    (
        "PEXC",
        "Physical Exam Centre",
        {"zh-CN": "体检中心", "vi": "Trung tâm khám sức khỏe", "en": "Physical Exam Centre"},
        [("Z00.0", "General medical examination")],
    ),
]
ZH_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
ZH_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂华建国"
VI_SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng"]
VI_MIDDLE = ["Văn", "Thị", "Minh", "Thanh", "Ngọc", "Đức", "Quang", "Hữu"]
VI_GIVEN = [
    "An",
    "Bình",
    "Cường",
    "Dũng",
    "Hà",
    "Hạnh",
    "Hoa",
    "Hùng",
    "Lan",
    "Linh",
    "Mai",
    "Nam",
    "Phương",
    "Tâm",
    "Thảo",
    "Trang",
]
EN_GIVEN = [
    "James",
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Emma",
    "Oliver",
    "Sophie",
]
EN_SURNAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Taylor",
    "Wilson",
    "Davies",
    "Evans",
    "Thomas",
    "Roberts",
]

# Doctors and nurses per department: the name in the hospital's records and how a patient reads it in
# each language (a Chinese hospital's doctors, in pinyin for English and Vietnamese readers).
CLINICIAN_NAMES = [
    ("王建国", "Wang Jianguo"), ("李秀英", "Li Xiuying"), ("张伟", "Zhang Wei"), ("刘芳", "Liu Fang"),
    ("陈明", "Chen Ming"), ("杨丽", "Yang Li"), ("黄磊", "Huang Lei"), ("赵静", "Zhao Jing"),
    ("吴强", "Wu Qiang"), ("周敏", "Zhou Min"), ("徐娟", "Xu Juan"), ("孙涛", "Sun Tao"),
    ("马超", "Ma Chao"), ("朱霞", "Zhu Xia"), ("胡平", "Hu Ping"), ("郭刚", "Guo Gang"),
    ("何桂华", "He Guihua"), ("林洋", "Lin Yang"), ("罗艳", "Luo Yan"), ("高杰", "Gao Jie"),
    ("梁红", "Liang Hong"), ("宋佳", "Song Jia"), ("郑华", "Zheng Hua"), ("谢婷", "Xie Ting"),
    ("韩冰", "Han Bing"), ("唐亮", "Tang Liang"), ("冯雪", "Feng Xue"), ("邓磊", "Deng Lei"),
    ("曹阳", "Cao Yang"), ("彭丽", "Peng Li"),
]  # fmt: skip
DEMO_STAFF = ("admin", "agent", "nurse")
OBSTETRICS_AGES = (18, 45)  # a delivery diagnosis only for a woman of these ages

DEMO_PASSWORD = "careloop-demo"  # noqa: S105  (demo data only; `demo` refuses to run in production)


@dataclass(frozen=True)
class DemoLogins:
    admin_username: str
    admin_totp_secret: str
    agent_username: str
    nurse_username: str
    password: str


def _person(rng: random.Random, index: int) -> tuple[str, str, str, str, Sex]:
    """(name, language, phone, timezone, sex)."""
    sex = rng.choice([Sex.FEMALE, Sex.MALE])
    roll = rng.random()
    if roll < 0.6:
        name = rng.choice(ZH_SURNAMES) + "".join(rng.choice(ZH_GIVEN) for _ in range(rng.choice([1, 2])))
        return name, "zh-CN", f"+86138{index:08d}", "Asia/Shanghai", sex
    if roll < 0.85:
        name = f"{rng.choice(VI_SURNAMES)} {rng.choice(VI_MIDDLE)} {rng.choice(VI_GIVEN)}"
        return name, "vi", f"+8491{index:07d}", "Asia/Ho_Chi_Minh", sex
    name = f"{rng.choice(EN_GIVEN)} {rng.choice(EN_SURNAMES)}"
    return name, "en", f"+447700{900000 + index:06d}"[:13], "Europe/London", sex


def seed(
    session: Session, *, patients: int = 200, now: datetime | None = None, rng_seed: int = 7
) -> DemoLogins:
    """Idempotent: a database that already has departments is left as it is (logins are re-read)."""
    now = now or utcnow()
    rng = random.Random(rng_seed)
    if session.scalar(sa.select(sa.func.count()).select_from(Department)):
        admin = session.scalars(sa.select(StaffUser).where(StaffUser.username == "admin")).one()
        return DemoLogins("admin", admin.totp_secret or "", "agent", "nurse", DEMO_PASSWORD)
    departments: list[
        tuple[Department, list[Ward], list[Clinician], list[Clinician], list[tuple[str, str]]]
    ] = []
    people = iter(CLINICIAN_NAMES)
    for code, name, names, diagnoses in DEPARTMENTS:
        dept = Department(code=code, name=name, names=names)
        session.add(dept)
        session.flush()
        wards = (
            []
            if code == "PEXC"
            else [Ward(department_id=dept.id, code=f"{code}-W{i}", name=f"{name} ward {i}") for i in (1, 2)]
        )
        doctors = [_clinician(dept.id, ClinicianKind.DOCTOR, next(people)) for _ in (1, 2, 3)]
        nurses = [_clinician(dept.id, ClinicianKind.NURSE, next(people)) for _ in (1, 2)]
        session.add_all([*wards, *doctors, *nurses])
        departments.append((dept, wards, doctors, nurses, diagnoses))
    session.flush()
    totp_secret = pyotp.random_base32()
    password_hash = hash_password(DEMO_PASSWORD)
    cardiology = departments[0][0]
    session.add_all(
        [
            StaffUser(
                username="admin",
                display_name="Demo Admin",
                roles={Role.ADMIN},
                password_hash=password_hash,
                totp_secret=totp_secret,
                language="en",
            ),
            StaffUser(
                username="agent",
                display_name="Service Centre Agent",
                roles={Role.SERVICE_AGENT},
                password_hash=password_hash,
                language="zh-CN",
            ),
            StaffUser(
                username="nurse",
                display_name="Cardiology Nurse",
                roles={Role.NURSE},
                password_hash=password_hash,
                language="zh-CN",
                departments=[cardiology],
            ),
        ]
    )
    for index in range(patients):
        name, lang, phone, tz, sex = _person(rng, index)
        patient = Patient(
            mrn=f"MRN{100000 + index}",
            name=name,
            sex=sex,
            language=lang,
            timezone=tz,
            phone=phone,
            birth_date=date(1940, 1, 1) + timedelta(days=rng.randrange(0, 365 * 65)),
            deceased=rng.random() < 0.01,
            dispute=rng.random() < 0.01,
            do_not_disturb=rng.random() < 0.03,
        )
        session.add(patient)
        session.flush()
        age = (now.date() - patient.birth_date).days // 365 if patient.birth_date else 0
        fits = [d for d in departments if _fits(d[0].code, sex, age)]
        for _ in range(rng.choice([1, 1, 2, 3])):
            dept, wards, doctors, nurses, diagnoses = rng.choice(fits)
            kind = (
                EncounterKind.PHYSICAL_EXAM
                if dept.code == "PEXC"
                else rng.choice(
                    [
                        EncounterKind.OUTPATIENT,
                        EncounterKind.DISCHARGE,
                        EncounterKind.DISCHARGE,
                        EncounterKind.INPATIENT,
                    ]
                )
            )
            started = now - timedelta(days=rng.uniform(1, 60))
            ended = None
            if kind is EncounterKind.DISCHARGE:
                ended = min(started + timedelta(days=rng.randint(2, 12)), now - timedelta(hours=1))
            elif kind in (EncounterKind.OUTPATIENT, EncounterKind.PHYSICAL_EXAM):
                ended = started + timedelta(hours=2)
            code, text = rng.choice(diagnoses)
            session.add(
                Encounter(
                    patient_id=patient.id,
                    kind=kind,
                    department_id=dept.id,
                    ward_id=rng.choice(wards).id
                    if wards and kind in (EncounterKind.INPATIENT, EncounterKind.DISCHARGE)
                    else None,
                    started_at=started,
                    ended_at=ended,
                    diagnoses=[{"system": "ICD-10", "code": code, "text": text}],
                    primary_diagnosis=code,
                    attending_doctor_id=rng.choice(doctors).id,
                    responsible_nurse_id=rng.choice(nurses).id,
                )
            )
    session.flush()
    _plans(session, {dept.code: dept.id for dept, *_ in departments})
    seed_schedules(session, timezone=get_settings().default_timezone, now=now)
    return DemoLogins("admin", totp_secret, "agent", "nurse", DEMO_PASSWORD)


def _clinician(department_id: int, kind: ClinicianKind, names: tuple[str, str]) -> Clinician:
    chinese, pinyin = names
    if kind is ClinicianKind.DOCTOR:
        shown = {"zh-CN": f"{chinese}医生", "en": f"Dr {pinyin}", "vi": f"BS. {pinyin}"}
    else:
        shown = {"zh-CN": f"{chinese}护士", "en": f"Nurse {pinyin}", "vi": f"ĐD. {pinyin}"}
    title = "Attending" if kind is ClinicianKind.DOCTOR else None
    return Clinician(kind=kind, department_id=department_id, name=chinese, names=shown, title=title)


def _fits(department_code: str, sex: Sex, age: int) -> bool:
    """Obstetrics sees women of child-bearing age only: a clinician notices anything else at once."""
    if department_code == "OBST":
        return sex is Sex.FEMALE and OBSTETRICS_AGES[0] <= age <= OBSTETRICS_AGES[1]
    return True


def _plans(session: Session, department_ids: dict[str, int]) -> None:
    """Follow-up plans like a hospital's first ones: every discharge, hypertension, satisfaction."""
    session.add_all(
        [
            FollowUpPlan(
                name="Post-discharge follow-up",
                questionnaire_id="post_discharge",
                encounter_kinds=["discharge"],
                offsets_days=[3, 15, 30],
                channels=["webchat", "sms"],
            ),
            FollowUpPlan(
                name="Hypertension follow-up",
                questionnaire_id="hypertension_follow_up",
                encounter_kinds=["discharge", "outpatient"],
                diagnosis_prefixes=["I10"],
                offsets_days=[7, 30],
                channels=["webchat", "sms"],
            ),
            FollowUpPlan(
                name="Inpatient satisfaction (50 % sample)",
                questionnaire_id="inpatient_satisfaction",
                encounter_kinds=["discharge"],
                offsets_days=[1],
                channels=["webchat"],
                sample_ratio=0.5,
            ),
            FollowUpPlan(
                name="Physical exam satisfaction",
                questionnaire_id="physical_exam_satisfaction",
                encounter_kinds=["physical_exam"],
                department_ids=[department_ids["PEXC"]],
                anchor=Anchor.VISIT,
                offsets_days=[1],
                channels=["webchat"],
            ),
        ]
    )
