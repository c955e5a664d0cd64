"""Cell values read the way hospital files write them: dates in Chinese, Vietnamese and ISO forms, sex and
visit type in three languages, phone numbers checked for the hospital's region, ICD-10 code lists."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import phonenumbers

from backend.admin.people import USERNAME
from backend.imports.problems import Problem, RowProblem
from backend.imports.readers import Cell
from backend.models.org import ORG_CODE, ClinicianKind
from backend.models.patients import EncounterKind, Sex
from backend.security.identifiers import InvalidEmail, normalise_email


def text(cell: Cell) -> str:
    """A cell as trimmed text; numbers Excel stored as floats lose a spurious '.0' (an MRN 100023.0)."""
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if isinstance(cell, datetime | date | time):
        return cell.isoformat()
    return unicodedata.normalize("NFKC", str(cell)).strip()


_YMD = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")
_DMY = re.compile(r"(\d{1,2})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{4})")  # Vietnamese: day first
_TIME = re.compile(
    r"(?:T|\s+|时?)?(\d{1,2})\s*[:时]\s*(\d{1,2})(?:\s*[:分]\s*(\d{1,2})(?:\.\d+)?\s*秒?)?\s*分?"
)


def _split_date(value: str) -> tuple[date, str]:
    for pattern, order in ((_YMD, "ymd"), (_COMPACT, "ymd"), (_DMY, "dmy")):
        found = pattern.match(value)
        if found:
            a, b, c = (int(g) for g in found.groups())
            year, month, day = (a, b, c) if order == "ymd" else (c, b, a)
            return date(year, month, day), value[found.end() :]
    raise ValueError(value)


def parse_date(cell: Cell, *, today: date) -> date:
    """2024-03-05, 2024/3/5, 2024年3月5日, 20240305, 05/03/2024 (day first), or an Excel date."""
    if isinstance(cell, datetime):
        found = cell.date()
    elif isinstance(cell, date):
        found = cell
    else:
        try:
            found, rest = _split_date(text(cell))
        except ValueError:
            raise RowProblem(Problem.BAD_DATE) from None
        if rest.strip() and not _TIME.fullmatch(rest):
            raise RowProblem(Problem.BAD_DATE)
    if found > today:
        raise RowProblem(Problem.FUTURE)
    if found.year < 1880:
        raise RowProblem(Problem.BAD_DATE)
    return found


def parse_datetime(cell: Cell, *, zone: ZoneInfo, now: datetime) -> datetime:
    """A local date and time in the hospital's zone (a date alone is its midnight), returned in UTC."""
    if isinstance(cell, datetime):
        local = cell if cell.tzinfo else cell.replace(tzinfo=zone)
    elif isinstance(cell, date):
        local = datetime.combine(cell, time(), tzinfo=zone)
    else:
        raw = text(cell)
        try:
            day, rest = _split_date(raw)
            moment = time()
            if rest.strip():
                found = _TIME.fullmatch(rest)
                if not found:
                    raise ValueError(raw)
                hour, minute, second = found.group(1), found.group(2), found.group(3) or "0"
                moment = time(int(hour), int(minute), int(second))
        except ValueError:
            raise RowProblem(Problem.BAD_DATETIME) from None
        local = datetime.combine(day, moment, tzinfo=zone)
    result = local.astimezone(UTC)
    if result > now or local.year < 1900:
        raise RowProblem(Problem.FUTURE if result > now else Problem.BAD_DATETIME)
    return result


SEXES = {
    Sex.MALE: ("男", "男性", "m", "male", "nam", "1"),
    Sex.FEMALE: ("女", "女性", "f", "female", "nữ", "nu", "2"),
    Sex.UNKNOWN: ("未知", "不详", "u", "unknown", "không rõ", "0", "9"),
    Sex.OTHER: ("其他", "o", "other", "khác"),
}
LANGUAGES = {
    "zh-CN": ("zh", "zh-cn", "zh_cn", "中文", "汉语", "普通话", "chinese", "tiếng trung"),
    "vi": ("vi", "vi-vn", "越南语", "tiếng việt", "vietnamese"),
    "en": ("en", "en-us", "en-gb", "英语", "english", "tiếng anh"),
}
KINDS = {
    EncounterKind.OUTPATIENT: ("门诊", "急诊", "outpatient", "ngoại trú", "khám ngoại trú", "o", "e"),
    EncounterKind.INPATIENT: ("住院", "inpatient", "nội trú", "i"),
    EncounterKind.PHYSICAL_EXAM: ("体检", "physical exam", "physical_exam", "khám sức khỏe"),
}
CLINICIAN_KINDS = {
    ClinicianKind.DOCTOR: ("医生", "医师", "doctor", "physician", "bác sĩ", "bác sỹ", "d"),
    ClinicianKind.NURSE: ("护士", "护师", "nurse", "điều dưỡng", "y tá", "n"),
}
LISTS = {
    "deceased": ("死亡", "deceased", "death", "tử vong", "đã mất"),
    "dispute": ("纠纷", "dispute", "tranh chấp"),
    "do_not_disturb": ("勿扰", "免打扰", "do not disturb", "do_not_disturb", "không làm phiền"),
    "invalid_contact": ("无效联系方式", "invalid contact", "invalid_contact", "liên lạc không hợp lệ"),
}


def _lookup(
    table: (
        dict[str, tuple[str, ...]]
        | dict[Sex, tuple[str, ...]]
        | dict[EncounterKind, tuple[str, ...]]
        | dict[ClinicianKind, tuple[str, ...]]
    ),
    cell: Cell,
    problem: Problem,
) -> object:
    key = text(cell).casefold()
    for value, names in table.items():
        if key in names:
            return value
    raise RowProblem(problem)


def parse_sex(cell: Cell) -> Sex:
    return _lookup(SEXES, cell, Problem.BAD_SEX)  # type: ignore[return-value]


def parse_language(cell: Cell) -> str:
    return _lookup(LANGUAGES, cell, Problem.BAD_LANGUAGE)  # type: ignore[return-value]


def parse_kind(cell: Cell) -> EncounterKind:
    return _lookup(KINDS, cell, Problem.BAD_KIND)  # type: ignore[return-value]


def parse_clinician_kind(cell: Cell) -> ClinicianKind:
    return _lookup(CLINICIAN_KINDS, cell, Problem.BAD_CLINICIAN_KIND)  # type: ignore[return-value]


def parse_org_code(cell: Cell) -> str:
    """The hospital's own code for a department, ward or clinician, as the admin console accepts it."""
    value = text(cell)
    if not ORG_CODE.fullmatch(value):
        raise RowProblem(Problem.BAD_CODE)
    return value


ACTIVE: dict[str, tuple[str, ...]] = {
    "yes": ("是", "启用", "在职", "有效", "y", "yes", "true", "1", "active", "có", "hoạt động", "đang làm"),
    "no": ("否", "停用", "离职", "无效", "n", "no", "false", "0", "inactive", "không", "ngừng", "nghỉ việc"),
}
_LIST = re.compile(r"[,;，；|、\s]+")
_ROLES = re.compile(r"[,;，；|、/]+")


def parse_active(cell: Cell) -> bool:
    return _lookup(ACTIVE, cell, Problem.BAD_ACTIVE) == "yes"


def parse_username(cell: Cell) -> str:
    value = text(cell).lower()
    if not USERNAME.fullmatch(value):
        raise RowProblem(Problem.BAD_USERNAME)
    return value


def parse_role(cell: Cell) -> str:
    """One role as written (a key, or a role's name in any language): resolved against the roles later."""
    value = text(cell)
    if len([part for part in _ROLES.split(value) if part.strip()]) > 1:  # not spaces: "Content editor"
        raise RowProblem(Problem.ONE_ROLE)
    return value


def parse_codes(cell: Cell) -> tuple[str, ...]:
    """Department codes separated by commas, semicolons (either width), '|', '、' or spaces."""
    codes = tuple(dict.fromkeys(c for c in _LIST.split(text(cell)) if c))
    for code in codes:
        if not ORG_CODE.fullmatch(code):
            raise RowProblem(Problem.BAD_CODE)
    return codes


def parse_list(cell: Cell) -> str:
    return _lookup(LISTS, cell, Problem.BAD_LIST)  # type: ignore[return-value]


def parse_email(cell: Cell) -> str:
    """One plain address, normalised as the patient record stores it."""
    try:
        return normalise_email(text(cell))
    except InvalidEmail:
        raise RowProblem(Problem.BAD_EMAIL) from None


def parse_phone(cell: Cell, region: str) -> str:
    """E.164, for a number phonenumbers holds valid in the hospital's region (or with its country code)."""
    try:
        number = phonenumbers.parse(text(cell), region)
    except phonenumbers.NumberParseException:
        raise RowProblem(Problem.BAD_PHONE) from None
    if not phonenumbers.is_valid_number(number):
        raise RowProblem(Problem.BAD_PHONE)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# ICD-10 and its national extensions (China's clinical version adds '.x00'-style suffixes)
_ICD = re.compile(r"[A-Z][0-9]{2}(?:\.[0-9A-Z]{1,4}(?:[+*][0-9A-Z.]{1,6})?)?", re.IGNORECASE)


def parse_icd_codes(cell: Cell) -> tuple[str, ...]:
    """Codes separated by commas, semicolons (half or full width), '|' or spaces; the primary first."""
    codes = [c for c in re.split(r"[,;，；|、\s]+", text(cell)) if c]
    for code in codes:
        if not _ICD.fullmatch(code):
            raise RowProblem(Problem.BAD_ICD)
    return tuple(code[0].upper() + code[1:] for code in codes)
