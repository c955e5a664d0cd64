"""Which column holds which field: the kinds of import, their fields, and the header names hospitals use
for them in Chinese, Vietnamese and English; a saved mapping (per source) is tried first."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum


class ImportKind(StrEnum):
    PATIENTS = "patients"
    ENCOUNTERS = "encounters"
    EXCLUSIONS = "exclusions"
    DEPARTMENTS = "departments"
    WARDS = "wards"
    CLINICIANS = "clinicians"
    STAFF = "staff"  # staff accounts, through the admin console's verbs

    @property
    def organisation(self) -> bool:
        """Departments, wards and clinicians: entries of the hospital's organisation, keyed by the
        hospital's own code, applied through the admin console's verbs."""
        return self in {ImportKind.DEPARTMENTS, ImportKind.WARDS, ImportKind.CLINICIANS}


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    required: bool
    headers: tuple[str, ...]  # known names, any language; compared normalised


IDENTIFIER = (
    "病案号",
    "病历号",
    "患者编号",
    "病人ID",
    "患者ID",
    "登记号",
    "Mã bệnh nhân",
    "Mã BN",
    "Mã hồ sơ",
    "Số hồ sơ",
    "Patient ID",
    "Patient identifier",
    "MRN",
    "Identifier",
    "ID",
)
DEPARTMENT_CODE = ("科室代码", "科室编码", "科室编号", "Mã khoa", "Department code", "Dept code")
WARD_CODE = ("病区代码", "病区编码", "病区编号", "Mã buồng", "Mã khoa phòng", "Ward code")
CLINICIAN_CODE = (
    "工号",
    "医生工号",
    "职工号",
    "医师代码",
    "医生代码",
    "人员编码",
    "Mã nhân viên",
    "Mã bác sĩ",
    "Staff number",
    "Doctor code",
    "Clinician code",
    "Code",
)
# A name column in one language; a plain "name" column is in the hospital's default language.
NAME_ZH = ("中文名称", "中文名", "名称(中文)", "Tên tiếng Trung", "Chinese name", "Name (zh-CN)", "Name (zh)")
NAME_VI = ("越南语名称", "越南文名称", "Tên tiếng Việt", "Vietnamese name", "Name (vi)")
NAME_EN = ("英文名称", "英文名", "Tên tiếng Anh", "English name", "Name (en)")


def _names(plain: tuple[str, ...]) -> tuple[Field, ...]:
    return (
        Field("name", False, plain),
        Field("name_zh-CN", False, NAME_ZH),
        Field("name_vi", False, NAME_VI),
        Field("name_en", False, NAME_EN),
    )


AUTHORITY = ("发放机构", "标识来源", "来源系统", "Nơi cấp", "Hệ thống", "Assigning authority", "Authority")
FIELDS: dict[ImportKind, tuple[Field, ...]] = {
    ImportKind.PATIENTS: (
        Field("identifier", True, IDENTIFIER),
        Field("authority", False, AUTHORITY),
        Field(
            "name",
            True,
            (
                "姓名",
                "患者姓名",
                "病人姓名",
                "Họ tên",
                "Họ và tên",
                "Tên bệnh nhân",
                "Name",
                "Patient name",
                "Full name",
            ),
        ),
        Field("birth_date", False, ("出生日期", "生日", "Ngày sinh", "Birth date", "Date of birth", "DOB")),
        Field("sex", False, ("性别", "Giới tính", "Giới", "Sex", "Gender")),
        Field(
            "phone",
            False,
            (
                "手机号",
                "手机",
                "电话",
                "联系电话",
                "手机号码",
                "Số điện thoại",
                "Điện thoại",
                "SĐT",
                "Phone",
                "Mobile",
                "Telephone",
            ),
        ),
        Field("language", False, ("语言", "Ngôn ngữ", "Language")),
        Field(
            "email",
            False,
            ("电子邮箱", "邮箱", "电子邮件", "Email", "E-mail", "Thư điện tử", "Địa chỉ email"),
        ),
    ),
    ImportKind.ENCOUNTERS: (
        Field("patient_identifier", True, IDENTIFIER),
        Field("authority", False, AUTHORITY),
        Field(
            "visit_number",
            True,
            (
                "就诊号",
                "住院号",
                "门诊号",
                "就诊流水号",
                "住院流水号",
                "Số vào viện",
                "Mã đợt khám",
                "Mã lượt khám",
                "Visit number",
                "Encounter ID",
                "Visit ID",
            ),
        ),
        Field(
            "kind",
            False,
            ("就诊类型", "就诊类别", "Loại khám", "Loại lượt khám", "Visit type", "Encounter type", "Kind"),
        ),
        Field(
            "department",
            False,
            ("科室代码", "科室编码", "科室", "Mã khoa", "Khoa", "Department code", "Department"),
        ),
        Field("ward", False, ("病区代码", "病区编码", "病区", "Mã buồng", "Buồng bệnh", "Ward code", "Ward")),
        Field(
            "admitted_at",
            True,
            (
                "入院时间",
                "入院日期",
                "就诊时间",
                "就诊日期",
                "Ngày vào viện",
                "Thời gian vào viện",
                "Ngày khám",
                "Admission time",
                "Admitted",
                "Visit date",
            ),
        ),
        Field(
            "discharged_at",
            False,
            ("出院时间", "出院日期", "Ngày ra viện", "Thời gian ra viện", "Discharge time", "Discharged"),
        ),
        Field(
            "diagnoses",
            False,
            (
                "诊断编码",
                "出院诊断编码",
                "诊断",
                "ICD-10",
                "ICD10",
                "Mã ICD",
                "Mã chẩn đoán",
                "Chẩn đoán",
                "Diagnosis codes",
                "Diagnoses",
                "Diagnosis",
            ),
        ),
    ),
    ImportKind.EXCLUSIONS: (
        Field("identifier", True, IDENTIFIER),
        Field("authority", False, AUTHORITY),
        Field(
            "date", False, ("死亡日期", "日期", "Ngày mất", "Ngày tử vong", "Ngày", "Date of death", "Date")
        ),
        Field("list", False, ("名单", "名单类型", "Danh sách", "List")),
    ),
    ImportKind.DEPARTMENTS: (
        Field("code", True, (*DEPARTMENT_CODE, "代码", "编码", "Mã", "Code")),
        *_names(
            ("科室名称", "科室", "名称", "Tên khoa", "Khoa", "Tên", "Department name", "Department", "Name")
        ),
    ),
    ImportKind.WARDS: (
        Field("code", True, (*WARD_CODE, "代码", "编码", "Mã", "Code")),
        Field("department", True, (*DEPARTMENT_CODE, "所属科室", "科室", "Khoa", "Department")),
        *_names(("病区名称", "病区", "名称", "Tên buồng", "Buồng bệnh", "Tên", "Ward name", "Ward", "Name")),
    ),
    ImportKind.CLINICIANS: (
        Field("code", True, CLINICIAN_CODE),
        Field("department", True, (*DEPARTMENT_CODE, "所属科室", "科室", "Khoa", "Department")),
        Field("clinician_kind", False, ("人员类别", "类别", "岗位", "Loại", "Chức vụ", "Role", "Kind")),
        Field("title", False, ("职称", "Chức danh", "Học hàm", "Title")),
        *_names(("姓名", "医生姓名", "名称", "Họ tên", "Họ và tên", "Tên", "Name", "Full name")),
    ),
    ImportKind.STAFF: (
        Field(
            "username",
            True,
            ("用户名", "登录名", "账号", "账户", "Tên đăng nhập", "Tài khoản", "Username", "Login"),
        ),
        *_names(("姓名", "显示名称", "名称", "Họ tên", "Họ và tên", "Tên hiển thị", "Display name", "Name")),
        Field("role", True, ("角色", "岗位角色", "Vai trò", "Role", "Roles")),
        Field(
            "departments",
            False,
            (
                "科室代码",
                "所属科室",
                "科室",
                "Mã khoa",
                "Khoa",
                "Department codes",
                "Departments",
                "Department",
            ),
        ),
        Field(
            "email",
            False,
            ("电子邮箱", "邮箱", "电子邮件", "Email", "E-mail", "Thư điện tử", "Địa chỉ email"),
        ),
        Field(
            "phone",
            False,
            ("手机号", "手机", "手机号码", "Số điện thoại", "Di động", "SĐT", "Mobile", "Phone"),
        ),
        Field(
            "active",
            False,
            ("启用", "是否启用", "状态", "在职", "Hoạt động", "Trạng thái", "Active", "Status"),
        ),
        Field("language", False, ("语言", "Ngôn ngữ", "Language")),
    ),
}


def normalise_header(text: str) -> str:
    """Width-folded, case-folded, without spaces, punctuation or a BOM: '患者 姓名：' == '患者姓名'."""
    text = unicodedata.normalize("NFKC", text).replace("\ufeff", "").casefold()
    return re.sub(r"[\s\W_]+", "", text)


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """Field name -> column index, and the required fields no column was found for."""

    columns: dict[str, int]
    missing: tuple[str, ...]

    def as_headers(self, headers: Sequence[str]) -> dict[str, str]:
        """The mapping to save for the source: field -> header text as this file wrote it."""
        return {name: headers[index] for name, index in self.columns.items()}


def match_columns(
    kind: ImportKind, headers: Sequence[str], saved: Mapping[str, str] | None = None
) -> ColumnMap:
    """Each field's column: the saved mapping's header first, then the known names in their order."""
    normalised = [normalise_header(h) for h in headers]
    taken: set[int] = set()
    columns: dict[str, int] = {}
    for field in FIELDS[kind]:
        candidates = [saved[field.name]] if saved and saved.get(field.name) else []
        candidates += list(field.headers)
        for candidate in candidates:
            key = normalise_header(candidate)
            index = next((i for i, h in enumerate(normalised) if h == key and i not in taken), None)
            if index is not None:
                columns[field.name] = index
                taken.add(index)
                break
    missing = tuple(f.name for f in FIELDS[kind] if f.required and f.name not in columns)
    return ColumnMap(columns, missing)
