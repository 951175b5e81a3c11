"""The JSON of one text's answer, shared by the HTTP API and ``zhie batch`` (one code path for both).

``ner_json``, ``sentiment_json`` and ``extract_json`` turn a task's result into exactly the object a
route returns for that text; ``dumps`` renders an object as the API's responses are rendered (compact
UTF-8, with ``\\u`` escapes instead of failing where a string holds a lone surrogate).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .schema import Result, result_to_json


def ner_json(entities) -> dict:
    return {"entities": [e.to_dict() for e in entities]}


def sentiment_json(result) -> dict:
    return result.to_dict()


def extract_json(result: Result) -> dict:
    return result_to_json(result)


SERIALIZERS: dict[str, Callable[[Any], dict]] = {"ner": ner_json, "sentiment": sentiment_json, "extract": extract_json}


def dumps(obj) -> str:
    """Compact JSON as the API sends it (starlette's separators, no NaN); a string with a lone surrogate
    is written with ASCII escapes, so it still round-trips and still encodes as UTF-8."""
    s = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        s = json.dumps(obj, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return s
