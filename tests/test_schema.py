"""Extraction schemas: every form users write today parses to the same tree; bad ones name the node."""

import pytest

from conftest import BRIEF_SCHEMA
from zhie.tasks.schema import SchemaError, Span, parse_schema, result_from_json, result_to_json, result_tuples


def test_siamese_form():
    s = parse_schema(BRIEF_SCHEMA)
    assert [n.name for n in s.roots] == ["产品名称", "芯片型号", "功能", "价格", "属性词"]
    assert [c.name for c in s.roots[-1].children] == ["情感词"]
    assert s.depth == 2 and s.size == 6
    assert s.to_json() == BRIEF_SCHEMA


@pytest.mark.parametrize("taskflow, siamese", [
    (["时间", "选手", "赛事名称"], {"时间": None, "选手": None, "赛事名称": None}),
    ({"竞赛名称": ["主办方", "承办方", "已举办次数"]}, {"竞赛名称": {"主办方": None, "承办方": None, "已举办次数": None}}),
    ([{"歌曲名称": ["歌手", "所属专辑"]}, "时间"], {"歌曲名称": {"歌手": None, "所属专辑": None}, "时间": None}),
    ("人物", {"人物": None}),
    ({"评价维度": ["观点词", {"情感倾向": None}]}, {"评价维度": {"观点词": None, "情感倾向": None}}),
])
def test_taskflow_forms_parse_to_the_same_tree(taskflow, siamese):
    assert parse_schema(taskflow).to_json() == siamese == parse_schema(siamese).to_json()


@pytest.mark.parametrize("bad, path, status", [
    ({}, "schema", 400),
    ([], "schema", 400),
    ("  ", "schema", 400),
    (42, "schema", 400),
    ({"人物": 3}, "schema.人物", 400),
    ({"属性词": {"": None}}, "schema.属性词.", 400),
    (["人物", 5], "schema[1]", 400),
    ({"属性词": {"情感词": [True]}}, "schema.属性词.情感词[0]", 400),
    (["人物", "人物"], "schema.人物", 400),
    ({"a" * 65: None}, "schema." + "a" * 65, 400),
    ({"名\n称": None}, "schema.名\n称", 400),
    ({"a": {"b": {"c": {"d": None}}}}, "schema.a.b.c.d", 413),
    ({f"类型{i}": None for i in range(65)}, "schema", 413),
])
def test_bad_schemas_name_the_node_and_status(bad, path, status):
    with pytest.raises(SchemaError) as e:
        parse_schema(bad)
    assert e.value.path == path and e.value.status == status
    assert path in str(e.value)


def test_limits_are_configurable():
    deep = {"a": {"b": {"c": {"d": None}}}}
    assert parse_schema(deep, max_depth=4).depth == 4
    with pytest.raises(SchemaError):
        parse_schema(["x", "y"], max_nodes=1)


def test_result_shape_round_trips_and_counts_nested_tuples():
    r = {"属性词": [Span("信号", 40, 42, 0.91, {"情感词": [Span("强", 42, 43, 0.88)]}), Span("电池续航", 60, 64, 0.7)]}
    js = result_to_json(r)
    assert js == {"属性词": [
        {"text": "信号", "start": 40, "end": 42, "probability": 0.91, "relations": {"情感词": [{"text": "强", "start": 42, "end": 43, "probability": 0.88}]}},
        {"text": "电池续航", "start": 60, "end": 64, "probability": 0.7},
    ]}
    assert result_to_json(result_from_json(js)) == js
    assert result_tuples(r) == {(("属性词",), 40, 42), (("属性词",), 60, 64), (("属性词", "情感词"), 42, 43)}


def test_bad_expected_names_the_span():
    with pytest.raises(ValueError, match=r"expected\.人物\[0\]"):
        result_from_json({"人物": [{"text": "张三"}]})
