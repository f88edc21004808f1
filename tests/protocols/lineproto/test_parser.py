"""Line protocol parser: raw bytes in, ParsedBatch out; both paths must agree on every body."""

import math
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensorium.errors import InvalidArgument
from sensorium.protocols.lineproto import LineError, parse
from sensorium.protocols.lineproto import parser as lp

DEFAULT_MS = 1_700_000_000_000


def both(body: bytes, precision: str = "ns", default_ts_ms: int = DEFAULT_MS):
    """parse(body), after checking that the slow path alone gives exactly the same batch."""
    batch = parse(body, precision, default_ts_ms)
    unit = lp._unit(precision)
    step = max(unit.ns // 1_000_000, 1)
    slow = lp._parse(body, unit, default_ts_ms - default_ts_ms % step, fast=False)
    assert same(batch, slow)
    return batch


def same(a, b) -> bool:
    assert a.keys.tolist() == b.keys.tolist()
    assert a.ts_ms.tolist() == b.ts_ms.tolist()
    assert a.values.view(np.int64).tolist() == b.values.view(np.int64).tolist()  # bit for bit
    assert a.errors == b.errors
    assert a.lines == b.lines
    assert dict(a.labels) == dict(b.labels)
    assert a.keys.dtype == object and a.ts_ms.dtype == np.int64 and a.values.dtype == np.float64
    return True


def rows(batch):
    return list(zip(batch.keys.tolist(), batch.ts_ms.tolist(), batch.values.tolist(),
                    strict=True))


def errors(batch):
    return [str(e) for e in batch.errors]


def check(body: bytes, expected_rows, expected_errors=(), **kw):
    batch = both(body, **kw)
    assert rows(batch) == list(expected_rows)
    assert errors(batch) == list(expected_errors)
    return batch


# -- the basics -------------------------------------------------------------------------------
def test_one_point_one_field():
    b = check(b"temperature,sensor_id=s1,zone=A value=21.5 1700000000123456789\n",
              [("temperature,sensor_id=s1,zone=A:value", 1_700_000_000_123, 21.5)])
    assert b.lines == 1
    assert b.labels["temperature,sensor_id=s1,zone=A:value"] == {
        "sensor_id": "s1", "zone": "A", "_measurement": "temperature", "_field": "value"}


def test_each_field_is_a_series_in_line_order():
    check(b"env,room=k temp=21.5,hum=40i,door=true,count=7u 1000000000\n",
          [("env,room=k:temp", 1000, 21.5), ("env,room=k:hum", 1000, 40.0),
           ("env,room=k:door", 1000, 1.0), ("env,room=k:count", 1000, 7.0)])


def test_no_tags():
    b = check(b"temperature value=1 5000000\n", [("temperature:value", 5, 1.0)])
    assert b.labels["temperature:value"] == {"_measurement": "temperature", "_field": "value"}


def test_tags_are_sorted_by_key_in_the_key_and_labels():
    b = check(b"m,zone=A,b=2,sensor_id=s1 v=1 0\nm,sensor_id=s1,b=2,zone=A v=2 0\n",
              [("m,b=2,sensor_id=s1,zone=A:v", 0, 1.0), ("m,b=2,sensor_id=s1,zone=A:v", 0, 2.0)])
    assert list(b.labels) == ["m,b=2,sensor_id=s1,zone=A:v"]
    assert b.labels["m,b=2,sensor_id=s1,zone=A:v"] == {
        "b": "2", "sensor_id": "s1", "zone": "A", "_measurement": "m", "_field": "v"}


def test_tag_order_compares_whole_keys():
    check(b"m,ab=1,aa=2,a=3 v=1 0\n", [("m,a=3,aa=2,ab=1:v", 0, 1.0)])


def test_missing_timestamp_takes_the_default():
    check(b"m v=1\nm v=2 3000000\n", [("m:v", DEFAULT_MS, 1.0), ("m:v", 3, 2.0)])


def test_default_time_is_truncated_to_the_precision_like_influxdb():
    check(b"m v=1\n", [("m:v", 1_700_000_000_000, 1.0)], precision="s",
          default_ts_ms=1_700_000_000_999)
    check(b"m v=1\n", [("m:v", 1_699_999_980_000, 1.0)], precision="m",
          default_ts_ms=1_700_000_000_999)


def test_default_time_is_now_when_not_given():
    import time
    before = time.time_ns() // 1_000_000
    batch = parse(b"m v=1\n")
    assert before <= int(batch.ts_ms[0]) <= time.time_ns() // 1_000_000


@pytest.mark.parametrize("text, value", [
    ("1", 1.0), ("-1.5", -1.5), ("1.", 1.0), (".5", 0.5), ("-.5", -0.5), ("1e3", 1000.0),
    ("1E-3", 0.001), ("-1.5e+2", -150.0), ("007", 7.0),
    ("1.7976931348623157e308", 1.7976931348623157e308),
    ("1e-400", 0.0), ("-0", -0.0), ("12i", 12.0), ("-12i", -12.0), ("-0i", 0.0),
    ("9223372036854775807i", 9.223372036854775807e18), ("-9223372036854775808i", -2.0**63),
    ("12u", 12.0), ("18446744073709551615u", 1.8446744073709552e19),
    ("t", 1.0), ("T", 1.0), ("true", 1.0), ("True", 1.0), ("TRUE", 1.0),
    ("f", 0.0), ("F", 0.0), ("false", 0.0), ("False", 0.0), ("FALSE", 0.0),
])
def test_field_values(text, value):
    b = check(f"m v={text} 0\n".encode(), [("m:v", 0, value)])
    assert math.copysign(1, b.values[0]) == math.copysign(1, value)


@pytest.mark.parametrize("text", ["abc", "1.2.3", "1e", "--1", "+1", "nan", "NaN", "inf", "-inf",
                                  "Infinity", "0x10", "1_000", "tru", "yes", "1ii", "1.5i", "i",
                                  "u", "-", ".", "e5", "1e5i", "0x10i", "0x10u", "+1i", "1f",
                                  "1d", "٣"])
def test_invalid_field_values(text):
    check(f"m v={text} 0\nm v=1 0\n".encode(), [("m:v", 0, 1.0)],
          [f"line 1: invalid field value {text!r} for field 'v'"])


@pytest.mark.parametrize("text", ["1e309", "-1e309", "9223372036854775808i",
                                  "-9223372036854775809i", "18446744073709551616u",
                                  "99999999999999999999999i"])
def test_field_values_out_of_range(text):
    check(f"m v={text} 0\n".encode(), [],
          [f"line 1: value {text!r} of field 'v' out of range"])


def test_negative_unsigned_is_invalid():
    check(b"m v=-1u 0\n", [], ["line 1: invalid field value '-1u' for field 'v'"])


# -- precisions -------------------------------------------------------------------------------
@pytest.mark.parametrize("precision, ts, ms", [
    ("ns", 1_700_000_000_123_456_789, 1_700_000_000_123), ("n", 1_700_000_000_123_456_789,
                                                          1_700_000_000_123),
    ("us", 1_700_000_000_123_456, 1_700_000_000_123), ("u", 1_700_000_000_123_456,
                                                      1_700_000_000_123),
    ("ms", 1_700_000_000_123, 1_700_000_000_123),
    ("s", 1_700_000_000, 1_700_000_000_000),
    ("m", 28_333_333, 1_699_999_980_000),
    ("h", 472_222, 1_699_999_200_000),
    ("ns", -1, -1), ("ns", -1_000_001, -2), ("us", -1, -1), ("s", -2, -2000), ("ns", 0, 0),
])
def test_precisions_convert_to_ms_by_floor_division(precision, ts, ms):
    check(f"m v=1 {ts}\n".encode(), [("m:v", ms, 1.0)], precision=precision)


def test_precision_sets():
    assert lp.PRECISIONS == {"ns", "us", "ms", "s"}
    assert lp.V1_PRECISIONS == {"n", "u", "ms", "s", "m", "h"}


def test_unknown_precision_raises():
    with pytest.raises(InvalidArgument, match="invalid precision 'x'"):
        parse(b"m v=1 0\n", precision="x")


@pytest.mark.parametrize("precision, ts", [
    ("ns", 2**63 - 1), ("ns", -(2**63)), ("ns", 2**63), ("ns", 10**30),
    ("us", 9_223_372_036_854_776), ("ms", -9_223_372_036_855), ("s", 9_223_372_037),
    ("m", 153_722_868), ("h", -2_562_048),
])
def test_timestamps_out_of_range(precision, ts):
    check(f"m v=1 {ts}\nm v=1 0\n".encode(), [("m:v", 0, 1.0)],
          [f"line 1: timestamp '{ts}' out of range for precision '{precision}'"],
          precision=precision)


@pytest.mark.parametrize("precision, ts", [
    ("ns", 2**63 - 2), ("ns", -(2**63) + 2), ("us", 9_223_372_036_854_775),
    ("s", -9_223_372_036), ("h", 2_562_047),
])
def test_timestamps_at_the_edge_of_the_range(precision, ts):
    unit = lp._unit(precision)
    ms = ts * unit.ns // 1_000_000
    check(f"m v=1 {ts}\n".encode(), [("m:v", ms, 1.0)], precision=precision)


@pytest.mark.parametrize("ts", ["12x", "1.5", "0x10", "+5", "1e9", "-", "--1", "١٢"])
def test_invalid_timestamps(ts):
    check(f"m v=1 {ts}\n".encode(), [], [f"line 1: invalid timestamp {ts!r}"])


# -- lines, whitespace, comments --------------------------------------------------------------
def test_empty_body():
    b = check(b"", [])
    assert b.lines == 0 and len(b.labels) == 0 and b.keys.shape == (0,)


def test_only_blank_lines_and_comments():
    b = check(b"\n\n# a comment, with = signs and \"quotes\"\n   \n  # indented comment\r\n", [])
    assert b.lines == 0


def test_blank_lines_and_comments_count_in_line_numbers():
    b = check(b"# header\n\nm v=1 0\n\nm v=oops 0\n#\nm v=2 0",
              [("m:v", 0, 1.0), ("m:v", 0, 2.0)],
              ["line 5: invalid field value 'oops' for field 'v'"])
    assert b.lines == 3


def test_crlf_line_endings():
    check(b"m v=1 1000000\r\nm,t=a v=2\r\nm v=3 3000000 \r\n", [
        ("m:v", 1, 1.0), ("m,t=a:v", DEFAULT_MS, 2.0), ("m:v", 3, 3.0)])


def test_no_newline_at_the_end():
    check(b"m v=1 0\nm v=2 0", [("m:v", 0, 1.0), ("m:v", 0, 2.0)])


def test_leading_trailing_and_repeated_spaces():
    check(b"  m v=1 0\n\tm v=2 0\nm   v=3    0   \nm v=4 \nm,t=a  v=5\n", [
        ("m:v", 0, 1.0), ("m:v", 0, 2.0), ("m:v", 0, 3.0), ("m:v", DEFAULT_MS, 4.0),
        ("m,t=a:v", DEFAULT_MS, 5.0)])


def test_comment_must_start_the_line():
    check(b"m v=1 0 # not a comment\n", [],
          ["line 1: unexpected text after timestamp: '# not a comment'"])


def test_very_long_lines():
    tags = ",".join(f"t{i:04d}=v{i}" for i in range(2000))
    fields = ",".join(f"f{i:04d}={i}.5" for i in range(3000))
    body = f"m,{tags} {fields} 5000000\n".encode() * 2
    assert len(body) > 100_000
    b = both(body)
    assert len(b.keys) == 6000 and not b.errors
    key = f"m,{tags}:f2999"
    assert b.keys[2999] == key and b.values[2999] == 2999.5 and b.ts_ms[2999] == 5
    assert b.labels[key]["t1999"] == "v1999" and len(b.labels[key]) == 2002


def test_long_string_value():
    check(b'm msg="' + b"x" * 200_000 + b'",v=1 0\n', [("m:v", 0, 1.0)])


def test_unicode_names():
    b = check("température,capteur=salle_à_manger,зона=Б valeur=21.5,温度=3 0\n".encode(), [
        ("température,capteur=salle_à_manger,зона=Б:valeur", 0, 21.5),
        ("température,capteur=salle_à_manger,зона=Б:温度", 0, 3.0)])
    assert b.labels["température,capteur=salle_à_manger,зона=Б:温度"] == {
        "capteur": "salle_à_manger", "зона": "Б", "_measurement": "température", "_field": "温度"}


def test_invalid_utf8_rejects_only_its_line():
    check(b"m v=1 0\nm,t=\xff\xfe v=2 0\nm v=3 0\n", [("m:v", 0, 1.0), ("m:v", 0, 3.0)],
          ["line 2: invalid UTF-8"])


def test_control_characters_are_part_of_names():
    check(b"m\tx,t=a\x01b v=1 0\n", [("m\tx,t=a\x01b:v", 0, 1.0)])


# -- escaping ---------------------------------------------------------------------------------
@pytest.mark.parametrize("line, key, labels", [
    (rb"my\ meas\,ure,t=a v=1 0", "my meas,ure,t=a:v", {"t": "a", "_measurement": "my meas,ure"}),
    (rb"m=x v=1 0", "m=x:v", {"_measurement": "m=x"}),
    (rb"m\=x v=1 0", r"m\=x:v", {"_measurement": r"m\=x"}),
    (rb"m,t\ k\,e\=y=v\ a\,l\=ue f=1 0", "m,t k,e=y=v a,l=ue:f",
     {"t k,e=y": "v a,l=ue", "_measurement": "m"}),
    (rb"m f\ i\,e\=ld=1 0", "m:f i,e=ld", {"_measurement": "m", "_field": "f i,e=ld"}),
    (rb"m,t=a\b v=1 0", r"m,t=a\b:v", {"t": r"a\b", "_measurement": "m"}),
    (rb"m,t=a\\b v=1 0", r"m,t=a\\b:v", {"t": r"a\\b", "_measurement": "m"}),
    (rb"m,t=a\\,u\=b v=1 0", r"m,t=a\,u=b:v", {"t": r"a\,u=b", "_measurement": "m"}),
    (rb"m\\ x v=1 0", r"m\ x:v", {"_measurement": r"m\ x"}),
    (rb"m,t=\"q\" v=1 0", r'm,t=\"q\":v', {"t": r"\"q\"", "_measurement": "m"}),
    (rb'm,t="q" v=1 0', 'm,t="q":v', {"t": '"q"', "_measurement": "m"}),
    (rb'm"x v=1 0', 'm"x:v', {"_measurement": 'm"x'}),
    (rb"m,t=a v\=1=2 0", "m,t=a:v=1", {"t": "a", "_measurement": "m", "_field": "v=1"}),
    (rb"#m v=1 0", None, None),
    (rb"\#m v=1 0", r"\#m:v", {"_measurement": r"\#m"}),
])
def test_escapes_in_names(line, key, labels):
    b = both(line + b"\n")
    assert not b.errors
    if key is None:
        assert not len(b.keys)
        return
    assert b.keys.tolist() == [key]
    assert labels.items() <= b.labels[key].items()


@pytest.mark.parametrize("value", [r'""', r'"a b,c=d"', r'"say \"hi\""', r'"back\\slash"',
                                   r'"odd \q escape"', r'"ends with \\"', '"tab\there"',
                                   '"unicode ✓"', r'"1.5"', r'"t"'])
def test_string_fields_are_skipped_when_there_are_numbers(value):
    check(f"m,t=a s={value},v=1,s2={value} 1000000\n".encode(), [("m,t=a:v", 1, 1.0)])


def test_string_only_lines_are_rejected():
    check(b'm,t=a status="ok" 0\nm s="a",u="b" 0\nm v=1 0\n', [("m:v", 0, 1.0)],
          ["line 1: field 'status' is a string; Sensorium stores numbers",
           "line 2: field 's' is a string; Sensorium stores numbers"])


def test_a_string_may_span_lines():
    b = check(b'm v=1,msg="first\nsecond, v=3 4\n# third\n" 1000000\nm v=2 2000000\n',
              [("m:v", 1, 1.0), ("m:v", 2, 2.0)])
    assert b.lines == 2


def test_an_unterminated_string_spoils_only_its_line():
    check(b'm v=1,msg="open 0\nm v=2 0\nm v=3 0\n', [("m:v", 0, 2.0), ("m:v", 0, 3.0)],
          ["line 1: unterminated string value for field 'msg'"])


def test_an_unterminated_string_closed_later_swallows_the_lines_between():
    # As in InfluxDB: the next quote closes the string; what follows it is then wrong.
    check(b'm v=1,msg="open 0\nm v=2 0\nm s="x" 0\nm v=4 0\n', [("m:v", 0, 4.0)],
          ["line 1: unexpected character 'x' after value of field 'msg'"])


# -- errors -----------------------------------------------------------------------------------
@pytest.mark.parametrize("line, message", [
    ("m", "missing field set"),
    ("m,t=a", "missing field set"),
    ("m ", "missing field set"),
    ("m,t=a ", "missing field set"),
    (",t=a v=1", "missing measurement"),
    (" ,t=a v=1", "missing measurement"),
    ("m, v=1", "missing tag key"),
    ("m,=a v=1", "missing tag key"),
    ("m,t=a,,u=b v=1", "missing tag key"),
    ("m,t v=1", "missing '=' after tag key 't'"),
    ("m,t= v=1", "missing value for tag 't'"),
    ("m,t=a=b v=1", "unescaped '=' in value of tag 't'"),
    (r"m,t=a\\,u=b v=1", "unescaped '=' in value of tag 't'"),  # '\\' is no escape
    ("m,t=a,t=b v=1", "duplicate tag 't'"),
    ("m,t=b,t=a v=1", "duplicate tag 't'"),
    ("m,_field=x v=1", "tag key '_field' is reserved"),
    ("m,a=1,_measurement=x v=1", "tag key '_measurement' is reserved"),
    ("m =1", "missing field key"),
    ("m v=1,", "missing field key"),
    ("m v=1,=2", "missing field key"),
    ("m v=1,,w=2", "missing field key"),
    ("m v", "missing '=' after field key 'v'"),
    ("m v=1,w", "missing '=' after field key 'w'"),
    ("m v=", "missing value for field 'v'"),
    ("m v=,w=1", "missing value for field 'v'"),
    ("m v= 1", "missing value for field 'v'"),
    ("m v=1=2", "invalid field value '1=2' for field 'v'"),
    ('m v="a"b', "unexpected character 'b' after value of field 'v'"),
    ("m v=1 12x", "invalid timestamp '12x'"),
    ("m v=1 1,2", "invalid timestamp '1,2'"),
    ("m v=1 1 2", "unexpected text after timestamp: '2'"),
    ("m v=1 w=2 3", "invalid timestamp 'w=2'"),
    ("m,t=a b v=1 0", "missing '=' after field key 'b'"),
])
def test_error_messages(line, message):
    check(f"m v=0 0\n{line}\nm v=2 0\n".encode(), [("m:v", 0, 0.0), ("m:v", 0, 2.0)],
          [f"line 2: {message}"])


def test_good_lines_are_kept_around_bad_ones_and_errors_are_in_line_order():
    body = b'm v=1 0\nm v=x 0\nm,b=1,a=2 v=3 0\n m v= 0\nm s="only" 0\nm v=6 0\nm v=7 9x\n'
    b = check(body, [("m:v", 0, 1.0), ("m,a=2,b=1:v", 0, 3.0), ("m:v", 0, 6.0)],
              ["line 2: invalid field value 'x' for field 'v'",
               "line 4: missing value for field 'v'",
               "line 5: field 's' is a string; Sensorium stores numbers",
               "line 7: invalid timestamp '9x'"])
    assert b.lines == 7
    assert b.errors[0] == LineError(2, "invalid field value 'x' for field 'v'")


def test_one_bad_field_rejects_the_whole_line():
    check(b"m a=1,b=x,c=3 0\n", [], ["line 1: invalid field value 'x' for field 'b'"])


def test_repeated_field_gives_two_rows():
    check(b"m v=1,v=2 0\n", [("m:v", 0, 1.0), ("m:v", 0, 2.0)])


# -- labels mapping ---------------------------------------------------------------------------
def test_labels_is_a_lazy_read_only_mapping_of_the_distinct_keys():
    b = both(b"m,t=a v=1,w=2 0\nm,t=a v=3 0\nm,t=\\ b v=4 0\n")
    assert len(b.labels) == 3
    assert list(b.labels) == ["m,t=a:v", "m,t=a:w", "m,t= b:v"]
    assert "m,t=a:w" in b.labels and "nope" not in b.labels
    assert b.labels.get("nope") is None
    assert b.labels["m,t= b:v"] == {"t": " b", "_measurement": "m", "_field": "v"}
    with pytest.raises(KeyError):
        b.labels["nope"]
    with pytest.raises(TypeError):
        b.labels["x"] = {}  # type: ignore[index]


# -- fast path ---------------------------------------------------------------------------------
def fast_rejects(body: bytes) -> list[int]:
    """Lines (1-based) the fast path leaves to the slow path."""
    lines = lp._Lines(body)
    todo = np.flatnonzero(lines.plain)
    return (lp._fast(lines, todo, lp._unit("ns"), 0).rejected + 1).tolist()


def uniform_body(n: int = 50) -> bytes:
    return b"".join(b"env,sensor_id=s%03d,zone=%s temp=%d.5,hum=%di,ok=t %d\n"
                    % (i, b"AB"[i % 2:i % 2 + 1], i, i, i * 10**6) for i in range(n))


def test_the_fast_path_takes_plain_lines():
    assert fast_rejects(uniform_body()) == []
    assert fast_rejects(b"m v=1\nm,t=a v=1,w=2i 5\n#c\n\nm,z=1,a=2 v=t 0\r\nm v=1e5 0\n") == []
    assert fast_rejects(b"m v=1 0 \nm  v=1\nm v=oops\nm,t=a,t=b v=1\nm v=1 1x\nm v=1\n") == [
        1, 2, 3, 4, 5]


def test_uniform_and_mixed_batches_agree():
    body = uniform_body()
    mixed = body + b"other v=1\n"
    assert lp._uniform_layout(lp._Lines(body), np.arange(50)) is not None
    a, b = both(body), both(mixed)
    assert rows(a) == rows(b)[:-1]
    assert dict(a.labels).items() <= dict(b.labels).items()


def test_unsorted_tags_in_bulk():
    body = b"".join(b"w,zone=%d,city=c%d,a=1 v=%d %d\n" % (i % 3, i, i, i) for i in range(40))
    b = both(body)
    assert b.keys[7] == "w,a=1,city=c7,zone=1:v"
    assert b.labels["w,a=1,city=c7,zone=1:v"]["city"] == "c7"
    assert fast_rejects(body) == []


# -- properties --------------------------------------------------------------------------------
_NAME_CHARS = st.characters(codec="utf-8", exclude_characters="\n\r")
_SPECIAL = st.sampled_from([",", " ", "=", "\\", '"', "#", "\t", "é", "_", ":"])


@st.composite
def names(draw, escapes: str, min_size: int = 1) -> str:
    """A raw name: plain or full of characters that need escaping (never ending with '\\')."""
    chars = st.one_of(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789_"), _SPECIAL,
                      _NAME_CHARS)
    name = "".join(draw(st.lists(chars, min_size=min_size, max_size=8)))
    return name.rstrip("\\") or "x"


def escape(name: str, chars: str) -> str:
    return "".join("\\" + c if c in chars else c for c in name)


def number_text(draw, kind: str) -> tuple[str, float]:
    if kind == "float":
        x = draw(st.floats(allow_nan=False, allow_infinity=False, width=64))
        text = draw(st.sampled_from([repr(x), f"{x:.3f}", f"{x:e}", f"{x:.0f}"]))
        return text, float(text)
    if kind == "int":
        n = draw(st.integers(-(2**63), 2**63 - 1))
        return f"{n}i", float(n)
    if kind == "uint":
        n = draw(st.integers(0, 2**64 - 1))
        return f"{n}u", float(n)
    word = draw(st.sampled_from(sorted(lp._TRUE | lp._FALSE)))
    return word, 1.0 if word in lp._TRUE else 0.0


@st.composite
def points(draw, plain: bool = False):
    """(line text, expected rows as (key, ts in ns or None, value), labels by key)."""
    if plain:
        measurement = draw(st.from_regex(r"[a-z][a-z0-9_.:-]{0,10}", fullmatch=True))
        tag_key = st.from_regex(r"[a-zA-Z0-9_.:-]{1,8}", fullmatch=True).filter(
            lambda k: k not in lp.RESERVED_TAG_KEYS)
        tag_value = st.from_regex(r"[a-zA-Z0-9_.:é-]{1,8}", fullmatch=True)
        field_key = st.from_regex(r"[a-zA-Z0-9_.:-]{1,8}", fullmatch=True)
    else:
        measurement = draw(names(", ").filter(lambda m: m[0] not in "#\t"))
        tag_key = names(",= ").filter(lambda k: k not in lp.RESERVED_TAG_KEYS)
        tag_value = names(",= ")
        field_key = names(",= ")
    tags = draw(st.dictionaries(tag_key, tag_value, max_size=4))
    fields = draw(st.lists(st.tuples(field_key, st.sampled_from(
        ["float", "float", "int", "uint", "bool"] + ([] if plain else ["string"]))),
        min_size=1, max_size=4, unique_by=lambda f: f[0]))
    if all(kind == "string" for _, kind in fields):
        fields[0] = (fields[0][0], "float")
    tag_items = draw(st.permutations(list(tags.items())))
    text = escape(measurement, ", ") + "".join(
        f",{escape(k, ',= ')}={escape(v, ',= ')}" for k, v in tag_items)
    series = measurement + "".join(f",{k}={v}" for k, v in sorted(tags.items()))
    parts, expected, labels = [], [], {}
    for key, kind in fields:
        if kind == "string":
            s = draw(st.text(st.one_of(_NAME_CHARS, st.sampled_from('"\\\n, =')), max_size=10))
            quoted = escape(s.replace("\\", "\\\\"), '"')  # \ → \\, then " → \"
            parts.append(f'{escape(key, ",= ")}="{quoted}"')
            continue
        value_text, value = number_text(draw, kind)
        parts.append(f"{escape(key, ',= ')}={value_text}")
        expected.append((f"{series}:{key}", value))
        labels[f"{series}:{key}"] = {**tags, "_measurement": measurement, "_field": key}
    ts = draw(st.none() | st.integers(-(2**63) + 2, 2**63 - 2))
    text += " " + ",".join(parts) + ("" if ts is None else f" {ts}")
    return text, [(k, ts, v) for k, v in expected], labels


@st.composite
def bodies(draw, plain: bool = False):
    pts = draw(st.lists(points(plain=plain), max_size=12))
    lines, expected, labels = [], [], {}
    for text, rows_, lab in pts:
        if not plain:
            lines += draw(st.lists(st.sampled_from(["", "# comment", "  "]), max_size=1))
        lines.append(text + draw(st.sampled_from(["", "\r"] if plain else ["", "\r", " "])))
        expected += rows_
        for k, v in lab.items():
            labels.setdefault(k, v)
    return "\n".join(lines).encode(), expected, labels, len(pts)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies())
def test_property_any_valid_body_parses_to_its_points(case):
    body, expected, labels, n = case
    b = both(body)
    assert b.errors == [] and b.lines == n
    want = [(k, DEFAULT_MS if ts is None else ts // 1_000_000, v) for k, ts, v in expected]
    got = rows(b)
    assert [r[:2] for r in got] == [w[:2] for w in want]
    assert all(g[2] == w[2] and math.copysign(1, g[2]) == math.copysign(1, w[2])
               for g, w in zip(got, want, strict=True))
    for key in b.keys.tolist():
        assert b.labels[key] == labels[key]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies(plain=True))
def test_property_the_fast_path_takes_every_plain_valid_line(case):
    body, expected, _, n = case
    assert fast_rejects(body) == []
    assert len(both(body).keys) == len(expected)


_SOUP = st.text(st.sampled_from("m v=1,t a\\\"#\r\n .e-+i0u9x_é"), max_size=60)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_SOUP, st.sampled_from(["ns", "s", "h"]))
def test_property_both_paths_agree_on_any_bytes(text, precision):
    both(text.encode(), precision)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(["1", "0", ".", "-", "+", "e", "E", "i", "u", "x", "t", "f",
                                 "n", "a", "9"]), min_size=1, max_size=8).map("".join),
       st.sampled_from(["", " 5", " -5", " 0x5", " +5", " 05"]))
def test_property_both_paths_agree_on_number_like_values(value, ts):
    both(f"m,t=a v={value}{ts}\nm,t=b v=1 0\n".encode())


def test_values_are_float64_bit_patterns_of_python_floats():
    b = both(b"m v=0.1 0\nm v=3.141592653589793 0\nm v=2.2250738585072014e-308 0\n")
    assert [struct.pack("<d", v) for v in b.values] == [
        struct.pack("<d", x) for x in (0.1, 3.141592653589793, 2.2250738585072014e-308)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(points(plain=True), st.integers(2, 8), st.integers(0, 7), st.integers(0, 200),
       st.sampled_from(["", " ", ",", "=", "\r", "x", "\\", '"', "  ", ",,", "=="]),
       st.booleans())
def test_property_uniform_batches_with_one_line_spoiled(point, n, which, at, insert, cut):
    """Same-shaped lines take the table layout; one edited line must not fool it."""
    text = point[0]
    lines = [text] * n
    line = lines[which % n]
    at %= len(line) + 1
    lines[which % n] = line[:at] + insert + line[at + cut:]
    both("\n".join(lines).encode())
