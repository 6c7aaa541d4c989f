"""The protocol's lines: what parses as an event (and what never raises), how events are
encoded, and how a short call's output folds into one answer."""

from __future__ import annotations

import json

import pytest

from stages.protocol import EventName, encode_event, parse_line
from stages.protocol.answer import summarise_output


def test_a_valid_event_parses_with_its_fields() -> None:
    event = parse_line('{"event": "progress", "current": 3, "total": 9}\n')
    assert event is not None
    assert event.name == EventName.PROGRESS
    assert event.data == {"current": 3, "total": 9}
    assert event.get("current") == 3 and event.get("absent", "x") == "x"


def test_bytes_and_unknown_event_names_are_kept() -> None:
    event = parse_line(b'{"event": "newer_kind", "x": 1}')
    assert event is not None and event.name == "newer_kind" and event.data == {"x": 1}


@pytest.mark.parametrize(
    "line",
    [
        "not json at all",
        '{"event": "progress"',  # cut short
        "[1, 2, 3]",  # JSON, not an object
        '"event"',
        "42",
        "null",
        '{"current": 3}',  # no event
        '{"event": 7}',  # event not a string
        '{"event": null}',
        "",
        "   \n",
        b"\xff\xfe not utf-8",
    ],
)
def test_anything_else_is_none(line: str | bytes) -> None:
    assert parse_line(line) is None


def test_deeply_nested_input_is_none_not_an_exception() -> None:
    assert parse_line("[" * 50_000) is None
    assert parse_line(b"[" * 50_000) is None


def test_encode_event_is_one_strict_json_line() -> None:
    line = encode_event(EventName.METRIC, loss=float("nan"), lr=float("inf"), step=2,
                        extra={"a": float("-inf"), "b": [1.5, float("nan")]})  # fmt: skip
    assert "\n" not in line
    assert json.loads(line) == {
        "event": "metric",
        "loss": None,
        "lr": None,
        "step": 2,
        "extra": {"a": None, "b": [1.5, None]},
    }
    parsed = parse_line(line)
    assert parsed is not None and parsed.name == "metric" and parsed.get("loss") is None


def test_summarise_plain_json_is_its_last_object() -> None:
    text = 'noise\n{"first": 1}\n[1, 2]\n{"kind": "deepcad", "train_available": 10}\n'
    assert summarise_output(text) == {"kind": "deepcad", "train_available": 10}
    assert summarise_output("") == {}
    assert summarise_output("[" * 50_000) == {}


def test_summarise_events_is_the_result_of_a_completed_run() -> None:
    text = "\n".join(
        [
            encode_event("start", stage="render", total=1, unit="models"),
            encode_event("progress", current=1, total=1),
            encode_event("result", model_id="m", images_rendered=3),
            encode_event("done", status="completed"),
        ]
    )
    assert summarise_output(text) == {"model_id": "m", "images_rendered": 3}


def test_summarise_a_failed_run_gives_the_warning_reason_and_the_error() -> None:
    text = "\n".join(
        [
            encode_event("start", stage="render", total=1, unit="models"),
            encode_event("warning", item="m", message="no extrude", reason="no_geometry"),
            encode_event("done", status="failed", error="model m: no_geometry: no extrude"),
        ]
    )
    assert summarise_output(text) == {
        "error": "no_geometry",
        "detail": "model m: no_geometry: no extrude",
    }
    cancelled = summarise_output(encode_event("done", status="cancelled"))
    assert cancelled == {"error": "cancelled", "detail": None}
