"""Import of published FHIR forms: what real forms contain is taken in, every change is reported, the
scoring and CareLoop's clinical rules survive, and what cannot be imported is refused with a reason."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from questionnaires.fhir import Imported, ImportRefused, import_published, to_fhir_questionnaire
from questionnaires.fhir_calculated import recognise_sum, sum_expression
from questionnaires.fhir_report import NoteCode, NoteKind, render_text
from questionnaires.loader import DefinitionError, parse_questionnaire
from questionnaires.model import ItemType, Questionnaire, Severity
from questionnaires.scoring import evaluate
from tests.questionnaires.published_forms import (
    HL7,
    branching_form,
    lhc_phq2,
    lhc_phq9,
    old_gad7,
)

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 1_000_000


def reference(name: str) -> Questionnaire:
    path = ROOT / "content" / "questionnaires" / f"{name}.yaml"
    if not path.exists():  # a reference only, not in the library
        path = ROOT / "content" / "questionnaires" / "instruments" / f"{name}.yaml"
    return parse_questionnaire(yaml.safe_load(path.read_text(encoding="utf-8")))


REFERENCES = {name: reference(name) for name in ("phq9", "gad7", "phq2")}


def imported(data: Any, *, lang: str = "en", accept: bool = False) -> Imported:
    return import_published(
        json.dumps(data), default_language=lang, max_bytes=LIMIT, references=REFERENCES, accept_rules=accept
    )


def codes(result: Imported) -> set[NoteCode]:
    return {n.code for n in result.report.notes}


PHQ9_ITEM9 = "/44260-8"


def phq9_answers(item9: str = "LA6568-5", others: str = "LA6569-3") -> dict[str, Any]:
    links = ["/44250-9", "/44255-8", "/44259-0", "/44254-1", "/44251-7", "/44258-2", "/44252-5", "/44253-3"]
    return {link: others for link in links} | {PHQ9_ITEM9: item9}


# --- the LHC-Forms PHQ-9 ----------------------------------------------------------------------------


def test_a_published_phq9_imports_with_defaults_and_says_so() -> None:
    result = imported(lhc_phq9())
    q, report = result.questionnaire, result.report
    assert (q.id, q.version, report.language) == ("44249_1_x", 1, "en")
    assert report.source_id == "44249-1-x" and report.loinc == "44249-1"
    assert report.missing_languages == ("zh-CN", "vi")
    assert q.title["zh-CN"] == q.title["en"] == "PHQ-9 quick depression assessment panel"
    expected = {
        NoteCode.LANGUAGE_DEFAULTED,
        NoteCode.IDENTITY_TAKEN,
        NoteCode.VERSION_NUMBERED,
        NoteCode.LANGUAGE_MISSING,
        NoteCode.VARIABLE_NAME,
        NoteCode.TOTAL_RECOGNISED,
    }
    assert expected <= codes(result)


def test_the_published_total_becomes_a_score_and_is_never_asked() -> None:
    q = imported(lhc_phq9()).questionnaire
    assert [s.id for s in q.scores] == ["/44261-6"]
    assert len(q.scores[0].items) == 9
    assert "/44261-6" not in {i.id for i in q.walk()}
    assert [i.type for i in q.answerable()].count(ItemType.DROPDOWN) == 9
    answers = phq9_answers(others="LA6571-9", item9="LA6571-9")
    assert evaluate(q, answers).scores == {"/44261-6": 27}


def test_both_weight_extensions_score_options_and_keep_their_loinc_codings() -> None:
    q = imported(lhc_phq9()).questionnaire
    for link in ("/44250-9", "/44255-8"):  # ordinalValue, itemWeight
        option = q.item(link).option("LA6571-9")
        assert option is not None and option.score == 3
        assert option.coding is not None and option.coding.system == "http://loinc.org"
    assert q.item(PHQ9_ITEM9).codes[0].code == "44260-8"
    assert q.codes[0].code == "44249-1"


def test_the_help_text_of_the_total_is_not_lost_silently() -> None:
    result = imported(lhc_phq9())
    assert any(n.where == "/44261-6" and n.code is NoteCode.TOTAL_RECOGNISED for n in result.report.notes)


def test_phq9_rules_are_offered_not_added() -> None:
    result = imported(lhc_phq9())
    q = result.questionnaire
    assert q.rules == () and all(not s.bands for s in q.scores)
    offered = {o.id: o for o in result.report.offered}
    assert offered["self_harm_thoughts"].severity == "urgent"
    assert offered["self_harm_thoughts"].condition == "/44260-8 != LA6568-5"
    assert offered["/44261-6:severe"].severity == "urgent"
    assert not result.report.rules_accepted
    dropped = [n for n in result.report.of(NoteKind.DROPPED) if n.code is NoteCode.RULE_WITHOUT_ITEM]
    assert [(n.params["rule"], n.params["subject"]) for n in dropped] == [
        ("active_suicidal_intent", "phq9_9_intent")  # CareLoop's own extra question
    ]


def test_accepted_phq9_rules_flag_item_9_above_not_at_all_as_urgent() -> None:
    result = imported(lhc_phq9(), accept=True)
    q = result.questionnaire
    assert result.report.rules_accepted and q.kind.value == "screening"
    calm = evaluate(q, phq9_answers())
    assert calm.worst is None and calm.scores["/44261-6"] == 8
    urgent = evaluate(q, phq9_answers(item9="LA6569-3"))
    assert [(f.code, f.severity) for f in urgent.findings] == [("self_harm_thoughts", Severity.URGENT)]
    assert urgent.findings[0].items == (PHQ9_ITEM9,)
    severe = evaluate(q, phq9_answers(others="LA6571-9", item9="LA6568-5"))
    assert severe.bands["/44261-6"].code == "severe" and severe.worst is Severity.URGENT


def test_without_the_reference_nothing_is_offered() -> None:
    result = import_published(json.dumps(lhc_phq9()), default_language="en", max_bytes=LIMIT)
    assert result.report.offered == () and NoteCode.RULES_OFFERED not in codes(result)


def test_a_form_missing_a_scored_item_gets_no_offer() -> None:
    data = lhc_phq9()
    group = data["item"][0]["item"]
    data["item"][0]["item"] = [i for i in group if i["linkId"] != "/44253-3"]
    total = data["item"][0]["item"][-2]
    total["extension"] = [e for e in total["extension"] if "44253-3" not in json.dumps(e)]
    result = imported(data)
    assert result.report.offered == ()
    assert NoteCode.INSTRUMENT_UNMATCHED in codes(result)


# --- GAD-7 with the older extension -------------------------------------------------------------------


def test_old_gad7_reads_co_value_scores_and_a_plain_sum() -> None:
    result = imported(old_gad7(), accept=True)
    q = result.questionnaire
    assert (q.id, result.report.language, result.report.source_version) == ("gad_7", "en", "1.0")
    assert {NoteCode.SCORE_FROM_OLD_EXTENSION, NoteCode.LANGUAGE_NARROWED} <= codes(result)
    old = [n for n in result.report.notes if n.code is NoteCode.SCORE_FROM_OLD_EXTENSION]
    assert len(old) == 7  # one per item, not one per option
    everything = {i.id: "LA6571-9" for i in q.answerable()}
    evaluation = evaluate(q, everything)
    assert evaluation.scores == {"70274-6": 21} and evaluation.bands["70274-6"].code == "severe"


def test_a_positive_phq2_screen_is_offered_and_raises_a_finding_once_accepted() -> None:
    offered = imported(lhc_phq2())
    assert [(o.id, o.severity) for o in offered.report.offered] == [
        ("/55758-7:negative", ""),
        ("/55758-7:positive", "normal"),
    ]
    q = imported(lhc_phq2(), accept=True).questionnaire
    answers = {"/44250-9": "LA6570-1", "/44255-8": "LA6569-3"}
    evaluation = evaluate(q, answers)
    assert evaluation.scores == {"/55758-7": 3}
    assert [(f.code, f.severity) for f in evaluation.findings] == [("/55758-7:positive", Severity.NORMAL)]


def test_every_instrument_has_a_reference_with_a_total_of_its_size() -> None:
    from questionnaires.fhir_instruments import INSTRUMENTS

    for instrument in INSTRUMENTS.values():
        totals = [s for s in REFERENCES[instrument.reference].scores if len(s.items) == len(instrument.items)]
        assert len(totals) == 1 and totals[0].bands, instrument.name


# --- the hand-made branching form -------------------------------------------------------------------


def test_value_sets_values_branches_and_groups_are_taken_in() -> None:
    result = imported(branching_form(), lang="en")
    q = result.questionnaire
    assert result.report.language == "vi" and result.report.missing_languages == ("zh-CN", "en")
    red = q.item("red")
    assert [(o.code, o.score, o.text["vi"]) for o in red.options] == [("Y", 1, "Có"), ("N", 0, "Không")]
    assert dict(red.options[0].text) == {"zh-CN": "有", "vi": "Có", "en": "Yes"}  # from designations
    assert red.options[1].text["en"] == "Không"  # no designation: the source text stands in
    assert [o.code for o in q.item("since").options] == ["1", "2", "3"]
    how = q.item("how")
    assert how.type is ItemType.SINGLE_CHOICE and how.enable_any
    assert [(c.item, c.value) for c in how.enable_when] == [("red", "Y"), ("since", "3")]
    assert q.item("wound").type is ItemType.GROUP and not q.item("wound").required


def test_a_calculation_that_is_not_a_sum_becomes_display_text_with_a_warning() -> None:
    result = imported(branching_form())
    q = result.questionnaire
    assert q.item("bmi").type is ItemType.DISPLAY
    assert "bmi" not in {i.id for i in q.answerable()}
    assert not q.item("note").enable_when
    warned = {n.code: n for n in result.report.of(NoteKind.WARNING)}
    assert warned[NoteCode.CALCULATION_DISPLAYED].where == "bmi"
    assert NoteCode.NUMERIC_STRING in warned


def test_an_item_without_text_is_named_by_its_code() -> None:
    data = lhc_phq9()
    data["item"][0].pop("text")
    result = imported(data)
    assert result.questionnaire.item("/44249-1").text["en"] == "PHQ-9 quick depression assessment panel"
    assert NoteCode.TEXT_FROM_CODE in codes(result)
    data["item"][0].pop("code")
    with pytest.raises(DefinitionError, match="/44249-1: expected texts"):
        imported(data)


def test_a_read_only_item_with_an_unknown_calculation_is_never_asked() -> None:
    data = lhc_phq9()
    total = data["item"][0]["item"][-2]
    total["extension"][-1]["url"] = "http://example.org/StructureDefinition/calculated-value"
    result = imported(data)
    assert result.questionnaire.item("/44261-6").type is ItemType.DISPLAY
    assert NoteCode.READ_ONLY_DISPLAYED in {n.code for n in result.report.of(NoteKind.WARNING)}
    assert len(result.questionnaire.answerable()) == 10


def test_the_report_reads_as_text() -> None:
    text = render_text(imported(lhc_phq9()).report)
    assert "Imported 44249_1_x v1" in text
    assert "offered, not added (use --accept-rules)" in text
    assert "[urgent] self_harm_thoughts: when /44260-8 != LA6568-5" in text


# --- identity, version, language ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected_id", "source"),
    [
        (lambda d: None, "44249_1_x", "id"),
        (lambda d: (d.pop("id"), d.update(url="http://loinc.org/q/PHQ9|2.1")), "phq9", "url"),
        (lambda d: d.pop("id"), "loinc_44249_1", "LOINC code"),
    ],
)
def test_identity_comes_from_id_url_or_loinc_code(change: Any, expected_id: str, source: str) -> None:
    data = lhc_phq9()
    change(data)
    result = imported(data)
    assert result.questionnaire.id == expected_id
    note = next(n for n in result.report.notes if n.code is NoteCode.IDENTITY_TAKEN)
    assert note.params["source"] == source


def test_no_identity_at_all_is_refused() -> None:
    data = lhc_phq9()
    data.pop("id"), data.pop("code")
    with pytest.raises(ImportRefused, match="no id, url or LOINC code"):
        imported(data)


@pytest.mark.parametrize(
    ("given", "version", "noted"), [("7", 7, False), ("2.0.1", 1, True), (None, 1, True)]
)
def test_versions(given: str | None, version: int, noted: bool) -> None:
    data = lhc_phq9()
    if given is not None:
        data["version"] = given
    result = imported(data)
    assert result.questionnaire.version == version
    assert (NoteCode.VERSION_NUMBERED in codes(result)) is noted


@pytest.mark.parametrize(
    ("given", "lang"), [("zh", "zh-CN"), ("ZH-cn", "zh-CN"), ("vi-VN", "vi"), ("en", "en")]
)
def test_languages_are_matched_to_careloops(given: str, lang: str) -> None:
    data = lhc_phq9() | {"language": given}
    assert imported(data, lang="vi").report.language == lang


def test_a_language_careloop_does_not_serve_is_refused() -> None:
    with pytest.raises(ImportRefused, match="'de'"):
        imported(lhc_phq9() | {"language": "de"})


def test_missing_languages_stay_missing_through_export_and_import() -> None:
    q = imported(lhc_phq9(), lang="en").questionnaire
    assert q.languages == ("en",) and q.missing_languages == ("zh-CN", "vi")
    exported = to_fhir_questionnaire(q, "vi")  # not written in vi: exported in en, without stand-ins
    assert exported["language"] == "en" and '"valueCode": "zh-CN"' not in json.dumps(exported)
    again = imported(exported)
    assert again.report.missing_languages == ("zh-CN", "vi") and again.questionnaire == q


def test_a_form_in_all_three_languages_has_none_missing() -> None:
    q = REFERENCES["phq9"]
    again = imported(to_fhir_questionnaire(q, "zh-CN"))
    assert again.report.missing_languages == () and again.questionnaire.languages == q.languages


# --- bad files -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("{not json", "not JSON"),
        (json.dumps({"resourceType": "Patient"}), "expected a FHIR Questionnaire, got 'Patient'"),
        (json.dumps([1, 2]), "got 'list'"),
        (json.dumps({"resourceType": "Bundle", "entry": []}), "holds 0 Questionnaires"),
        (b"\xff\xfe", "not JSON"),
    ],
)
def test_files_that_are_not_questionnaires_are_refused(raw: str | bytes, expected: str) -> None:
    with pytest.raises(ImportRefused, match=expected):
        import_published(raw, default_language="en", max_bytes=LIMIT)


def test_a_bundle_with_one_questionnaire_is_read() -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": old_gad7()}]}
    assert imported(bundle).questionnaire.id == "gad_7"


def test_an_oversized_file_is_refused_before_it_is_parsed() -> None:
    with pytest.raises(ImportRefused, match="the largest accepted is 100 bytes"):
        import_published(json.dumps(lhc_phq9()), default_language="en", max_bytes=100)


def test_an_external_value_set_is_refused_naming_the_item() -> None:
    data = branching_form()
    data["item"][0]["item"][0]["answerValueSet"] = "http://loinc.org/vs/LL361-7"
    with pytest.raises(
        ImportRefused, match=re.escape("red: answerValueSet http://loinc.org/vs/LL361-7 is not contained")
    ):
        imported(data)


def test_what_careloop_cannot_ask_is_refused_naming_the_item() -> None:
    data = branching_form()
    data["item"][1]["type"] = "attachment"
    with pytest.raises(DefinitionError, match="weight: item type attachment is not supported"):
        imported(data)


def test_a_fractional_option_score_is_dropped_and_reported() -> None:
    data = branching_form()
    concept = data["contained"][0]["compose"]["include"][0]["concept"][0]
    concept["extension"][0]["valueDecimal"] = 0.5
    result = imported(data)
    assert result.questionnaire.item("red").option("Y").score is None  # type: ignore[union-attr]
    assert NoteCode.SCORE_NOT_WHOLE in codes(result)


def test_several_conditions_without_behaviour_default_to_all_with_a_warning() -> None:
    data = branching_form()
    data["item"][0]["item"][2].pop("enableBehavior")
    result = imported(data)
    assert not result.questionnaire.item("how").enable_any
    assert NoteCode.BEHAVIOUR_DEFAULTED in codes(result)


# --- sums ----------------------------------------------------------------------------------------------

W = "%resource.item.where(linkId='{}').answer.value.ordinal()"


@pytest.mark.parametrize(
    ("expression", "variables", "items"),
    [
        ("%a + %b", {"a": W.format("x"), "b": W.format("y")}, ("x", "y")),
        (f"{W.format('x')} + {W.format('y')}", {}, ("x", "y")),
        (
            "iif(%any, iif(%a.exists(), %a, 0) + iif(%b.exists(), %b, 0), {})",
            {"any": "%a.exists() or %b.exists()", "a": W.format("x"), "b": W.format("y")},
            ("x", "y"),
        ),
        ("%a", {"a": "%resource.item.where(linkId='n').answer.value"}, ("n",)),
    ],
)
def test_sums_of_weights_are_recognised(
    expression: str, variables: dict[str, str], items: tuple[str, ...]
) -> None:
    found = recognise_sum(expression, variables, numeric=["n"])
    assert found is not None and found.items == items


@pytest.mark.parametrize(
    ("expression", "variables"),
    [
        ("%a * %b", {"a": W.format("x"), "b": W.format("y")}),
        ("%a + %a", {"a": W.format("x")}),
        ("%a + %c", {"a": W.format("x")}),
        ("%a + 1", {"a": W.format("x")}),
        ("%a", {"a": "%resource.item.where(linkId='x').answer.value"}),  # a coded answer, not a number
        ("iif(%a.exists(), %b, 0)", {"a": W.format("x"), "b": W.format("y")}),
        ("iif(%any, %a, {})", {"any": "%z.exists()", "a": W.format("x")}),
        ("(%a + %b", {"a": W.format("x"), "b": W.format("y")}),
        ("%resource.repeat(item).answer.value.ordinal().sum()", {}),
    ],
)
def test_anything_else_is_not_a_sum(expression: str, variables: dict[str, str]) -> None:
    assert recognise_sum(expression, variables) is None


def test_careloops_exported_sum_is_recognised_by_its_import() -> None:
    variables, total = sum_expression([("x", True), ("n", False)])
    named = {v["valueExpression"]["name"]: v["valueExpression"]["expression"] for v in variables}  # type: ignore[index]
    found = recognise_sum(total, named, numeric=["n"])
    assert found is not None and found.items == ("x", "n")


def test_a_total_that_is_not_a_sum_is_shown_as_text_and_careloops_total_offered() -> None:
    data = lhc_phq9()
    total = data["item"][0]["item"][-2]
    total["extension"][-1]["valueExpression"]["expression"] = "%a.power(2)"
    result = imported(data)
    assert result.questionnaire.item("/44261-6").type is ItemType.DISPLAY
    assert result.questionnaire.scores == ()
    assert result.report.offered[0].id.startswith("phq9_total:")  # the total is offered as a new score


# --- export, then import: the same meaning --------------------------------------------------------


def test_export_carries_loinc_codes_and_the_total_in_standard_form() -> None:
    q = imported(lhc_phq9(), accept=True).questionnaire
    data = to_fhir_questionnaire(q, "en")
    assert data["code"][0]["code"] == "44249-1"
    group = data["item"][0]["item"]
    item9 = next(i for i in group if i["linkId"] == PHQ9_ITEM9)
    assert item9["code"][0] == {"system": "http://loinc.org", "code": "44260-8", "display": PHQ9_DISPLAY}
    assert item9["answerOption"][0]["valueCoding"]["system"] == "http://loinc.org"
    total = next(i for i in data["item"] if i.get("readOnly"))
    calculated = next(e for e in total["extension"] if e["url"].endswith("calculatedExpression"))
    assert calculated["valueExpression"]["expression"].startswith(
        "iif(%answered, iif(%s1.exists(), %s1, 0) +"
    )


PHQ9_DISPLAY = "Thoughts that you would be better off dead, or of hurting yourself in some way"


@pytest.mark.parametrize("name", ["phq9", "gad7"])
def test_careloops_own_instruments_round_trip_with_scoring_and_rules(name: str) -> None:
    q = REFERENCES[name]
    again = import_published(
        json.dumps(to_fhir_questionnaire(q, "vi")), default_language="en", max_bytes=LIMIT
    ).questionnaire
    assert again == q


def test_an_imported_form_round_trips_with_its_accepted_rules() -> None:
    q = imported(lhc_phq9(), accept=True).questionnaire
    again = imported(to_fhir_questionnaire(q, "en")).questionnaire
    assert again == q
    for answers in (phq9_answers(), phq9_answers(item9="LA6570-1"), phq9_answers(others="LA6571-9")):
        assert evaluate(again, answers) == evaluate(q, answers)


def test_the_total_is_exported_as_a_calculated_item_under_its_own_link() -> None:
    q = imported(lhc_phq9()).questionnaire
    assert to_fhir_questionnaire(q, "en")["item"][-1]["linkId"] == "/44261-6"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.update(item="not a list"), "questionnaire: item: Input should be a valid list"),
        (lambda d: d["item"][0]["item"].append("text"), "item 12 under /44249-1: Invalid JSON"),
        (
            lambda d: d["item"][0]["item"][0].pop("linkId"),
            "item 1 under /44249-1 (text 'Little interest or pleasure in doing thi'): linkId: Value",
        ),
        (lambda d: d["item"][0]["item"][0].update(answerOption=[{}]), "/44250-9"),
        (
            lambda d: d.update(contained=[{"resourceType": "ValueSet"}]),
            "questionnaire: contained.0.status: Value for the field 'status' is required",
        ),
    ],
)
def test_malformed_forms_are_refused_before_they_are_rewritten(change: Any, expected: str) -> None:
    data = lhc_phq9()
    change(data)
    with pytest.raises(DefinitionError, match=re.escape(expected)):
        imported(data)


def test_option_scores_that_disagree_are_refused() -> None:
    data = old_gad7()
    data["item"][0]["answerOption"][1]["extension"] = [{"url": HL7 + "ordinalValue", "valueDecimal": 2}]
    with pytest.raises(
        DefinitionError, match=re.escape("69725-0/LA6569-3: the option's scores disagree (1, 2)")
    ):
        imported(data)
