"""Extraction schemas: parse the forms users already write, validate them, shape results.

Accepted forms (all become a list of :class:`SchemaNode`):

- SiameseUIE: ``{"产品名称": null, "属性词": {"情感词": null}}`` (a dict; ``null`` is a leaf, a dict
  nests);
- PaddleNLP Taskflow: ``["时间", "选手"]`` (a list of names), ``{"竞赛名称": ["主办方", "承办方"]}`` (a
  dict of lists: relations of each subject), a list mixing names and such dicts, or one name.

A result follows Taskflow's shape, which many consumers already parse::

    {type: [{"text", "start", "end", "probability", "relations": {child: [...]}}]}

``relations`` appears only on spans that have results for child nodes, as in Taskflow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_NAME_CHARS = 64
_BAD_NAME = re.compile(r"[\x00-\x1f\x7f]")


class SchemaError(ValueError):
    """A bad schema: ``path`` names the offending node (``schema.属性词.情感词``); ``status`` is 400 for
    a malformed schema and 413 for one over the depth or node-count limit."""

    def __init__(self, path: str, message: str, status: int = 400):
        super().__init__(f"{path}: {message}")
        self.path, self.message, self.status = path, message, status


@dataclass(frozen=True)
class SchemaNode:
    name: str
    children: tuple["SchemaNode", ...] = ()

    def to_json(self):
        return {c.name: (c.to_json() if c.children else None) for c in self.children}


@dataclass(frozen=True)
class Schema:
    roots: tuple[SchemaNode, ...]

    @property
    def depth(self) -> int:
        def d(n: SchemaNode) -> int:
            return 1 + max((d(c) for c in n.children), default=0)

        return max((d(n) for n in self.roots), default=0)

    @property
    def size(self) -> int:
        def s(n: SchemaNode) -> int:
            return 1 + sum(s(c) for c in n.children)

        return sum(s(n) for n in self.roots)

    def to_json(self) -> dict:
        """The SiameseUIE form."""
        return {n.name: (n.to_json() or None) for n in self.roots}


def _key(path: str, name: str) -> str:
    return f"{path}.{name}"


def _check_name(name, path: str) -> str:
    if not isinstance(name, str):
        raise SchemaError(path, f"a type name must be a string, not {type(name).__name__}")
    if not name.strip():
        raise SchemaError(path, "a type name must not be empty")
    if len(name) > MAX_NAME_CHARS:
        raise SchemaError(path, f"a type name is at most {MAX_NAME_CHARS} characters ({len(name)} given)")
    if _BAD_NAME.search(name):
        raise SchemaError(path, "a type name must not contain control characters")
    return name.strip()


def _nodes(obj, path: str) -> list[SchemaNode]:
    """Children described by ``obj`` (dict, list, string or None) at ``path``."""
    if obj is None:
        return []
    if isinstance(obj, str):
        return [SchemaNode(_check_name(obj, path))]
    if isinstance(obj, dict):
        out = []
        for k, v in obj.items():
            name = _check_name(k, _key(path, str(k)))
            out.append(SchemaNode(name, tuple(_nodes(v, _key(path, name)))))
        return out
    if isinstance(obj, list):
        out = []
        for i, item in enumerate(obj):
            p = f"{path}[{i}]"
            if isinstance(item, (str, dict)):
                out.extend(_nodes(item, p))
            else:
                raise SchemaError(p, f"a list holds type names or objects, not {_kind(item)}")
        return out
    raise SchemaError(path, f"expected null, a type name, an object or a list, not {_kind(obj)}")


def _kind(v) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", type(None): "null", list: "a list", dict: "an object"}.get(type(v), type(v).__name__)


def parse_schema(obj, *, max_depth: int = 3, max_nodes: int = 64, path: str = "schema") -> Schema:
    """Validate and normalise ``obj``; raises :class:`SchemaError` naming the offending node."""
    if isinstance(obj, str) and not obj.strip():
        raise SchemaError(path, "the schema is empty")
    roots = _nodes(obj, path)
    if not roots:
        raise SchemaError(path, "the schema names no type to extract")

    def check(nodes, p: str, level: int) -> None:
        seen: set[str] = set()
        for n in nodes:
            q = _key(p, n.name)
            if n.name in seen:
                raise SchemaError(q, "this type is named twice at the same level")
            seen.add(n.name)
            if level > max_depth:
                raise SchemaError(q, f"the schema nests deeper than {max_depth} levels", 413)
            check(n.children, q, level + 1)

    check(roots, path, 1)
    schema = Schema(tuple(roots))
    if schema.size > max_nodes:
        raise SchemaError(path, f"the schema has {schema.size} nodes, more than the limit of {max_nodes}", 413)
    return schema


@dataclass
class Span:
    """One extracted span: exact code-point offsets into the caller's text."""

    text: str
    start: int
    end: int
    probability: float
    relations: dict[str, list["Span"]] = field(default_factory=dict)

    def to_json(self) -> dict:
        d = {"text": self.text, "start": self.start, "end": self.end, "probability": round(float(self.probability), 4)}
        rel = {k: [s.to_json() for s in v] for k, v in self.relations.items() if v}
        if rel:
            d["relations"] = rel
        return d


Result = dict[str, list[Span]]


def result_to_json(result: Result) -> dict:
    return {k: [s.to_json() for s in v] for k, v in result.items() if v}


def result_from_json(obj: dict, path: str = "expected") -> Result:
    """The inverse of :func:`result_to_json` (for evaluation files); raises ValueError with the path."""
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected an object of type -> list of spans")
    out: Result = {}
    for k, spans in obj.items():
        if not isinstance(spans, list):
            raise ValueError(f"{path}.{k}: expected a list of spans")
        got = []
        for i, s in enumerate(spans):
            p = f"{path}.{k}[{i}]"
            if not isinstance(s, dict) or not {"text", "start", "end"} <= s.keys():
                raise ValueError(f"{p}: a span needs text, start and end")
            got.append(Span(s["text"], int(s["start"]), int(s["end"]), float(s.get("probability", 1.0)),
                            result_from_json(s.get("relations", {}), p + ".relations")))
        out[k] = got
    return out


def result_tuples(result: Result, prefix: tuple[str, ...] = ()) -> set[tuple]:
    """(path of types, start, end) for every span, nested ones with the types above them: what
    ``zhie eval extract`` counts."""
    out: set[tuple] = set()
    for k, spans in result.items():
        for s in spans:
            key = prefix + (k,)
            out.add((key, s.start, s.end))
            out |= result_tuples(s.relations, key)
    return out
