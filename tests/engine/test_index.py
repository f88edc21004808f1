"""Label index: filter parsing, the RedisTimeSeries matcher table, postings upkeep."""

from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensorium.engine import index as index_mod
from sensorium.engine.index import (
    LabelIndex,
    Matcher,
    matchers_from_dict,
    parse_filter,
    parse_filters,
)
from sensorium.errors import InvalidArgument, SeriesNotFound

SERIES = {
    0: {"zone": "A", "type": "temperature"},
    1: {"zone": "A", "type": "humidity"},
    2: {"zone": "B", "type": "temperature", "fw": "1.2"},
    3: {"zone": "C", "fw": "1.3"},
    4: {"type": "temperature"},
    5: {},
    6: {"zone": "A", "room": "c d", "expr": "x=y"},
}


@pytest.fixture
def idx() -> LabelIndex:
    index = LabelIndex()
    for sid, labels in SERIES.items():
        index.add(sid, labels)
    return index


def select(index: LabelIndex, exprs: list[str]) -> list[int]:
    got = index.select(parse_filters(exprs))
    assert got.dtype == np.int32
    return got.tolist()


# -- parsing ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("expr", "matcher"), [
    ("zone=A", Matcher("zone", "=", ("A",))),
    ("zone!=A", Matcher("zone", "!=", ("A",))),
    ("zone=", Matcher("zone", "=", ("",))),
    ("zone!=", Matcher("zone", "!=", ("",))),
    ("zone=(A,B)", Matcher("zone", "=", ("A", "B"))),
    ("zone!=(A,B)", Matcher("zone", "!=", ("A", "B"))),
    ("zone=(A)", Matcher("zone", "=", ("A",))),
    ("room=c d", Matcher("room", "=", ("c d",))),
    ("expr=x=y", Matcher("expr", "=", ("x=y",))),
    ("expr!=x!=y", Matcher("expr", "!=", ("x!=y",))),
    ("expr==", Matcher("expr", "=", ("=",))),
    ('room="c d"', Matcher("room", "=", ('"c d"',))),  # quotes are kept, as in RTS 1.12
    ("zone=A)", Matcher("zone", "=", ("A)",))),
])
def test_parse_filter(expr: str, matcher: Matcher) -> None:
    assert parse_filter(expr) == matcher


@pytest.mark.parametrize("expr", ["zone", "", "=A", "!=A", "!=", "=", "zone=(", "zone=(A,B",
                                  "zone=()", "zone!=()", "zone=(A,)", "zone=(,A)"])
def test_parse_filter_refuses(expr: str) -> None:
    with pytest.raises(InvalidArgument, match="^failed parsing labels$"):
        parse_filter(expr)


@pytest.mark.parametrize("expr", ["zone=A", "zone!=A", "zone=", "zone!=", "zone=(A,B)",
                                  "zone!=(A,B)", "room=c d"])
def test_matcher_str_round_trips(expr: str) -> None:
    assert str(parse_filter(expr)) == expr


@pytest.mark.parametrize(("expr", "positive"), [
    ("zone=A", True), ("zone=(A,B)", True), ("zone!=A", False), ("zone=", False),
    ("zone!=", False), ("zone!=(A,B)", False),
])
def test_positive(expr: str, positive: bool) -> None:
    assert parse_filter(expr).positive is positive


@pytest.mark.parametrize(("name", "op", "values"), [
    ("", "=", ("A",)), ("zone", "~", ("A",)), ("zone", "=", ()), ("zone", "=", ("A", "")),
    ("zone", "=", ["A"]),
])
def test_matcher_validates(name: str, op: str, values: tuple[str, ...]) -> None:
    with pytest.raises(InvalidArgument):
        Matcher(name, op, values)


@pytest.mark.parametrize("exprs", [[], ["zone!=A"], ["zone="], ["zone!="], ["zone!=(A,B)"],
                                   ["zone!=A", "type=", "fw!="]])
def test_parse_filters_needs_a_positive_matcher(exprs: list[str]) -> None:
    with pytest.raises(InvalidArgument, match="^please provide at least one matcher$"):
        parse_filters(exprs)


def test_parse_filters_reports_unparsable_before_missing_matcher() -> None:
    with pytest.raises(InvalidArgument, match="^failed parsing labels$"):
        parse_filters(["zone!=A", "bogus"])


def test_parse_filters_takes_a_bare_string_as_one_expression() -> None:
    assert parse_filters("zone=A") == [Matcher("zone", "=", ("A",))]


def test_matchers_from_dict() -> None:
    assert matchers_from_dict({"zone": "A", "type": "t"}) == [
        Matcher("zone", "=", ("A",)), Matcher("type", "=", ("t",))]
    assert matchers_from_dict({"zone": "A", "fw": ""})[1] == parse_filter("fw=")
    for bad in ({}, {"fw": ""}):
        with pytest.raises(InvalidArgument, match="^please provide at least one matcher$"):
            matchers_from_dict(bad)


# -- the reference table (§9), one row per form, then combinations ----------------------------
@pytest.mark.parametrize(("exprs", "sids"), [
    (["zone=A"], [0, 1, 6]),
    (["zone=Z"], []),
    (["nosuch=1"], []),
    (["type=temperature", "zone!=A"], [2, 4]),  # 4 has no zone: included
    (["type=temperature", "zone="], [4]),
    (["type=temperature", "zone!="], [0, 2]),
    (["zone=(A,B)"], [0, 1, 2, 6]),
    (["zone=(A,Z)"], [0, 1, 6]),
    (["type=(temperature,humidity)", "zone!=(A,C)"], [2, 4]),
    (["zone=A", "type=temperature"], [0]),
    (["zone=A", "zone=B"], []),
    (["zone=(A,B)", "zone=(B,C)"], [2]),
    (["zone=(A,B)", "type!=(humidity,pressure)"], [0, 2, 6]),
    (["type=temperature", "zone!=A", "fw!="], [2]),
    (["type=temperature", "zone!=B", "fw="], [0, 4]),
    (["zone=A", "nosuch="], [0, 1, 6]),
    (["zone=A", "nosuch!="], []),
    (["zone=A", "nosuch!=x"], [0, 1, 6]),
    (["zone=A", "zone!=A"], []),
    (["room=c d"], [6]),
    (["expr=x=y"], [6]),
    (["zone=(A,C)", "fw!=1.3", "room="], [0, 1]),
])
def test_select(idx: LabelIndex, exprs: list[str], sids: list[int]) -> None:
    assert select(idx, exprs) == sids


def test_select_from_dict(idx: LabelIndex) -> None:
    assert idx.select(matchers_from_dict({"zone": "A", "type": "temperature"})).tolist() == [0]


def test_select_without_positive_matcher_scans_everything(idx: LabelIndex) -> None:
    # parse_filters refuses this query; the index still answers it (e.g. for internal use).
    got = idx.select([parse_filter("zone!=(A,B)"), parse_filter("type=")])
    assert got.tolist() == [3, 5]
    assert idx.select([]).tolist() == sorted(SERIES)


@pytest.mark.parametrize("ratio", [0, 10**9])  # set operations / per-candidate lookups
def test_presence_and_absence_take_either_path(ratio: int) -> None:
    index = LabelIndex()
    for sid in range(100):
        labels = {"zone": "AB"[sid % 2], "few": "xyz"[sid % 3]}
        if sid % 5:
            labels["id"] = f"dev{sid}"  # many distinct values
        index.add(sid, labels)
    with mock.patch.object(index_mod, "_LOOKUP_VALUES_PER_CANDIDATE", ratio):
        assert select(index, ["zone=A", "id="]) == list(range(0, 100, 10))
        assert select(index, ["zone=A", "id!="]) == [s for s in range(0, 100, 2) if s % 5]
        assert select(index, ["zone=A", "few!="]) == list(range(0, 100, 2))
        assert select(index, ["zone=A", "few="]) == []


# -- upkeep -----------------------------------------------------------------------------------
def test_remove(idx: LabelIndex) -> None:
    idx.remove(2)
    assert len(idx) == len(SERIES) - 1 and 2 not in idx
    assert select(idx, ["zone=(A,B)"]) == [0, 1, 6]
    assert idx.label_values("zone") == ["A", "C"]
    idx.remove(3)
    assert "fw" not in idx.label_names()  # emptied postings are dropped
    assert select(idx, ["zone=C"]) == []
    idx.remove(3)  # unknown sid: no-op
    assert len(idx) == len(SERIES) - 2
    with pytest.raises(SeriesNotFound):
        idx.labels(3)


def test_set_labels_reindexes(idx: LabelIndex) -> None:
    idx.set_labels(0, {"zone": "B", "fw": "2.0"})
    assert idx.labels(0) == {"zone": "B", "fw": "2.0"}
    assert select(idx, ["zone=A"]) == [1, 6]
    assert select(idx, ["zone=B"]) == [0, 2]
    assert select(idx, ["type=temperature", "zone!="]) == [2]
    assert select(idx, ["fw=2.0"]) == [0]
    idx.set_labels(9, {"zone": "A"})  # unknown sid: indexed
    assert select(idx, ["zone=A"]) == [1, 6, 9]
    assert len(idx) == len(SERIES) + 1


def test_add_of_a_known_sid_replaces(idx: LabelIndex) -> None:
    idx.add(1, {"zone": "C"})
    assert select(idx, ["zone=A"]) == [0, 6]
    assert select(idx, ["zone=C"]) == [1, 3]
    assert idx.label_values("type") == ["temperature"]
    assert len(idx) == len(SERIES)


def test_labels_are_copies(idx: LabelIndex) -> None:
    source = {"zone": "D"}
    idx.add(7, source)
    source["zone"] = "E"
    idx.labels(7)["zone"] = "F"
    assert idx.labels(7) == {"zone": "D"}
    assert select(idx, ["zone=D"]) == [7]


def test_label_names_and_values(idx: LabelIndex) -> None:
    assert idx.label_names() == ["expr", "fw", "room", "type", "zone"]
    assert idx.label_names([0, 3, 99]) == ["fw", "type", "zone"]  # unknown sids skipped
    assert idx.label_names(np.array([4, 5], np.int32)) == ["type"]
    assert idx.label_values("zone") == ["A", "B", "C"]
    assert idx.label_values("zone", np.array([1, 3, 4], np.int32)) == ["A", "C"]
    assert idx.label_values("nosuch") == []
    assert idx.label_names([]) == []


@pytest.mark.parametrize("ratio", [0, 10**9])
def test_empty_value_is_no_label(ratio: int) -> None:
    index = LabelIndex()
    index.add(0, {"zone": "A", "fw": ""})
    index.add(1, {"zone": "A", "fw": "1"})
    assert index.labels(0) == {"zone": "A", "fw": ""}
    with mock.patch.object(index_mod, "_LOOKUP_VALUES_PER_CANDIDATE", ratio):
        assert select(index, ["zone=A", "fw="]) == [0]
        assert select(index, ["zone=A", "fw!="]) == [1]
    assert index.label_values("fw") == ["1"] and index.label_names([0]) == ["zone"]
    index.remove(0)
    assert select(index, ["zone=A"]) == [1]


# -- property: index == a naive evaluation of the reference table ----------------------------
NAMES = ["a", "b", "c", "d"]
VALUES = ["x", "y", "z", "x y", "=w"]
KINDS = ["eq", "neq", "absent", "present", "in", "notin"]


def naive(labels: dict[str, str], kind: str, name: str, values: list[str]) -> bool:
    """RedisTimeSeries §9, row by row."""
    has = name in labels
    if kind == "eq":
        return has and labels[name] == values[0]
    if kind == "neq":
        return not (has and labels[name] == values[0])
    if kind == "absent":
        return not has
    if kind == "present":
        return has
    if kind == "in":
        return has and labels[name] in values
    return not (has and labels[name] in values)  # notin


def render(kind: str, name: str, values: list[str]) -> str:
    return {
        "eq": f"{name}={values[0]}", "neq": f"{name}!={values[0]}",
        "absent": f"{name}=", "present": f"{name}!=",
        "in": f"{name}=({','.join(values)})", "notin": f"{name}!=({','.join(values)})",
    }[kind]


label_sets = st.dictionaries(st.sampled_from(NAMES), st.sampled_from(VALUES), max_size=4)
ops = st.lists(st.tuples(st.sampled_from(["add", "set", "remove"]), st.integers(0, 15),
                         label_sets), max_size=40)
terms = st.lists(st.tuples(st.sampled_from(KINDS), st.sampled_from(NAMES),
                           st.lists(st.sampled_from(VALUES), min_size=1, max_size=3)),
                 min_size=1, max_size=4)


@settings(max_examples=300, deadline=None)
@given(ops, terms)
def test_select_equals_naive_evaluation(history: list, query: list) -> None:
    index, model = LabelIndex(), {}
    for op, sid, labels in history:
        if op == "remove":
            index.remove(sid)
            model.pop(sid, None)
        else:
            (index.add if op == "add" else index.set_labels)(sid, labels)
            model[sid] = dict(labels)
    exprs = [render(*t) for t in query]
    want = [s for s in sorted(model) if all(naive(model[s], *t) for t in query)]
    if any(kind in ("eq", "in") for kind, _, _ in query):
        matchers = parse_filters(exprs)
    else:
        with pytest.raises(InvalidArgument, match="at least one matcher"):
            parse_filters(exprs)
        matchers = [parse_filter(e) for e in exprs]
    for ratio in (0, 10**9):
        with mock.patch.object(index_mod, "_LOOKUP_VALUES_PER_CANDIDATE", ratio):
            assert index.select(matchers).tolist() == want
    assert len(index) == len(model)
    assert index.label_names() == sorted({n for labels in model.values() for n in labels})
    for name in NAMES:
        assert index.label_values(name) == sorted(
            {labels[name] for labels in model.values() if name in labels})


def test_add_many_equals_add() -> None:
    rows = [(3, {"zone": "A", "t": "x"}), (5, {"zone": "B"}), (7, {"zone": "A", "fw": ""})]
    one, many = LabelIndex(), LabelIndex()
    one.add(5, {"zone": "Z"})
    many.add(5, {"zone": "Z"})
    for sid, labels in rows:
        one.add(sid, labels)
    many.add_many([sid for sid, _ in rows], [labels for _, labels in rows])
    cases = (["zone=A"], ["zone=Z"], ["zone!=A", "zone=(A,B)"], ["t=x"], ["zone=(A,B,Z)", "fw="])
    for filters in cases:
        assert select(one, filters) == select(many, filters)
    assert one.label_values("zone") == many.label_values("zone") == ["A", "B"]
