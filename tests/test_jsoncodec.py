"""JSON to and from the database: exact whatever the integers' size or the keys' alphabet."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from hub import jsoncodec

VALUES = [
    {"n": 2**63 - 1},
    {"n": 2**64},  # beyond 64 bits: orjson refuses to encode it
    {"n": -(2**70), "nested": {"m": [10**30, 1]}},
    {"n": 123456789012345678901234567890, "f": 3.25},
    {"é": "ü", "日本": ["語", {"Ω": 1}], "emoji 🙂": None},
    {"big": 2**70, "ключ": "значение"},  # both corners at once: json's path
    {"s": "12345678901234567890", "t": True},  # long digits inside text
    [1, "two", 3.5, None, False],
]


@pytest.mark.parametrize("value", VALUES)
def test_round_trip_is_exact(value: Any) -> None:
    text = jsoncodec.dumps(value)
    back = jsoncodec.loads(text)
    assert back == value
    assert jsoncodec.loads(text.encode()) == value  # bytes, as database drivers give them
    assert json.dumps(back, sort_keys=True) == json.dumps(value, sort_keys=True)  # int stays int


@pytest.mark.parametrize("value", VALUES)
def test_output_is_json_other_tools_read_alike(value: Any) -> None:
    assert json.loads(jsoncodec.dumps(value)) == value


def test_big_integers_in_text_decode_exactly() -> None:
    text = '{"id": 98765432109876543210987654321, "neg": -18446744073709551617}'
    assert jsoncodec.loads(text) == {
        "id": 98765432109876543210987654321,
        "neg": -18446744073709551617,
    }


@pytest.mark.parametrize("value", [{"é": "ü"}, {"é": "ü", "n": 2**70}])
def test_text_is_utf8_not_ascii_escaped(value: Any) -> None:
    text = jsoncodec.dumps(value)
    assert "é" in text and "ü" in text and "\\u" not in text


@pytest.mark.parametrize("value", [{1: "a", 2: "b"}, {1: "a", "n": 2**70}])
def test_non_text_keys_become_text_as_json_does(value: dict) -> None:
    assert jsoncodec.loads(jsoncodec.dumps(value)) == json.loads(json.dumps(value))


def test_a_lone_surrogate_escape_is_read() -> None:
    assert jsoncodec.loads('{"s": "\\ud800x"}') == {"s": "\ud800x"}


def test_a_type_only_default_knows_is_encoded_by_it() -> None:
    class Money:
        cents = 1250

    assert jsoncodec.loads(jsoncodec.dumps({"m": Money()}, default=lambda v: v.cents)) == {
        "m": 1250
    }


def _strict(text: str) -> Any:
    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize(
    "value",
    [
        {"n": math.nan},
        {"n": math.inf},
        {"n": math.nan, "big": 2**70},  # the json.dumps path
        {"n": -math.inf, "big": 2**70},
    ],
    ids=["nan", "inf", "nan-with-big-int", "-inf-with-big-int"],
)
def test_nan_and_infinity_never_give_text_that_is_not_json(value: Any) -> None:
    """Validation refuses them in facts, but templates can make one (``'nan' | float``).

    PostgreSQL refuses ``NaN`` in a JSON column, so text like that fails the statement.
    """
    _strict(jsoncodec.dumps(value))


def nested(depth: int, long_digits: bool = False) -> str:
    inner = "12345678901234567890" if long_digits else "1"
    return '{"a":' * depth + inner + "}" * depth


@pytest.mark.parametrize("long_digits", [False, True])  # orjson's path, then json's
@pytest.mark.parametrize("depth", [1_100, 100_000])
def test_a_document_nested_beyond_the_parsers_limit_is_a_value_error(
    depth: int, long_digits: bool
) -> None:
    # orjson refuses more than 1,024 levels; json then raises RecursionError (a 500 in a view)
    with pytest.raises(ValueError, match="nested"):
        jsoncodec.loads(nested(depth, long_digits))


@pytest.mark.parametrize("as_bytes", [False, True])
def test_max_depth_refuses_deeper_documents_and_only_those(as_bytes: bool) -> None:
    def loads(text: str) -> Any:
        return jsoncodec.loads(text.encode() if as_bytes else text, max_depth=64)

    assert loads(nested(64)) == json.loads(nested(64))
    with pytest.raises(ValueError, match="nested more than 64 levels deep"):
        loads(nested(65))
    with pytest.raises(ValueError, match="nested more than 64 levels deep"):
        loads("[" * 65 + "]" * 65)
    # brackets inside strings are text, not depth
    assert loads(json.dumps({"s": "[" * 500})) == {"s": "[" * 500}
    wide = [[{"a": [i]}] for i in range(1_000)]  # many containers, each shallow
    assert loads(json.dumps(wide)) == wide
    assert loads('"text"') == "text"
