"""Authored flow files: malformed ones are refused with the flow and step named."""

from __future__ import annotations

from typing import Any

import pytest

from bots.catalog import Catalog, CatalogError
from bots.flows import FlowError, parse_flow
from bots.messages import Choice, Choices, Link, MediaRef, Outbound, Text


def flow(**steps: Any) -> dict[str, Any]:
    return {"id": "f", "version": 1, "start": "a", "steps": steps}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("just text", "must be a mapping"),
        ({"version": 1}, "no id"),
        ({"id": "f", "steps": {}}, "needs version"),
        (flow(b={"say": "x", "end": True}), "start step 'a'"),
        (flow(a={"say": "x", "next": "zzz"}), "f/a: goes to unknown step 'zzz'"),
        (flow(a={"say": "x"}), "f/a: neither asks"),
        (flow(a={"end": True}), "f/a: says nothing"),
        (
            flow(a={"say": "q", "choices": [{"id": "y", "label": "l", "next": "a"}]}),
            "f/a: a question needs a reprompt",
        ),
        (
            flow(
                a={
                    "say": "q",
                    "reprompt": "r",
                    "choices": [
                        {
                            "id": "y",
                            "label": "l",
                            "next": "a",
                            "effects": [{"grant_consent": {"purpose": "spam"}}],
                        }
                    ],
                }
            ),
            "f/a: grant_consent needs a purpose",
        ),
        (
            flow(
                a={
                    "say": "q",
                    "reprompt": "r",
                    "choices": [
                        {
                            "id": "y",
                            "label": "l",
                            "next": "a",
                            "effects": [{"delete_patient": {"purpose": "care"}}],
                        }
                    ],
                }
            ),
            "unknown effect 'delete_patient'",
        ),
    ],
)
def test_malformed_flow_is_refused_naming_the_problem(data: Any, message: str) -> None:
    with pytest.raises(FlowError, match=message.replace("(", r"\(")):
        parse_flow(data)


def test_catalog_reports_missing_translations_by_language() -> None:
    catalog = Catalog.merge({"en": {"a": "A", "b": "B"}, "zh-CN": {"a": "甲"}, "vi": {"a": "A", "b": "B"}})
    with pytest.raises(CatalogError, match="zh-CN: missing b"):
        catalog.check_complete({"a", "b"})


def test_catalog_refuses_non_text_messages() -> None:
    with pytest.raises(CatalogError, match="'a' is not text"):
        Catalog.merge({"en": {"a": 5}})


def test_outbound_parts_round_trip_through_json() -> None:
    out = Outbound(
        (
            Text("hi"),
            Choices((Choice("yes", "Yes"),)),
            Link("https://x/q/1", "Form"),
            MediaRef("https://x/a.png", "image/png"),
        )
    )
    assert Outbound.from_json(out.to_json()) == out
    assert out.text == "hi"


def test_outbound_rejects_unknown_part_types() -> None:
    with pytest.raises(ValueError, match="unknown outbound part type 'video'"):
        Outbound.from_json([{"type": "video"}])
