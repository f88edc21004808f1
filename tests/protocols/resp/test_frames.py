"""frames.py on raw bytes: the vectorised scan frames and converts exactly like hiredis and
the command path (``ingest.from_commands``), however the stream is cut into reads."""

import hiredis
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensorium.protocols.resp import frames, ingest
from sensorium.protocols.resp.codec import RequestParser
from sensorium.protocols.resp.frames import Writes


def frame(*args: bytes | str) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a.encode() if isinstance(a, str) else a
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


@pytest.fixture
def scan_always(monkeypatch):
    """Scan every run, however short (the default leaves short reads to hiredis)."""
    monkeypatch.setattr(frames, "SCAN_MIN_BYTES", 0)


def reference(data: bytes) -> list[list[bytes]]:
    r = hiredis.Reader()
    r.feed(data)
    return [c for c in iter(r.gets, False) if c]


def parse(data: bytes, cuts: list[int] = ()) -> tuple[list[object], list[list[bytes]]]:
    """Feeds ``data`` cut at ``cuts``; returns the requests and them expanded to commands."""
    p = RequestParser()
    out: list[object] = []
    last = 0
    for cut in [*cuts, len(data)]:
        got, err = p.feed(data[last:cut])
        assert err is None
        out += got
        last = cut
    cmds = [c for item in out for c in (item.commands() if isinstance(item, Writes)
                                         else [item])]
    return out, cmds


def columns(w: Writes) -> tuple:
    keys = [w.keys[i] for i in w.key_index.tolist()]
    ok = w.ts_status == 0
    sizes = [0] * w.n_cmds if w.sizes is None else w.sizes
    return (keys, sizes, (w.ts * ok).tolist(), w.ts_status.tolist(), w.star.tolist(),
            w.value_ok.tolist(), np.where(w.value_ok, w.values, 0).tolist(),
            np.signbit(np.where(w.value_ok, w.values, 0)).tolist())


def check_columns(items: list[object]) -> None:
    """Every scanned run has the columns the command path builds from its commands."""
    for item in items:
        if isinstance(item, Writes):
            assert columns(item) == columns(ingest.from_commands(item.commands()))


MIXED = [
    frame("TS.ADD", "k1", "1700000000000", "20.5"),
    frame("ts.add", "k2", "*", "-0"),
    frame("TS.MADD", "k1", "2", "1e3", "k3", "01", "5.", "k\r\n4", "3", ".5"),
    frame("TS.ADD", "k1", "3", "4", "LABELS", "a", "b"),
    frame("PING"),
    frame("Ts.Add", b"\xff\x00bin", "18446744073709551616", "nan"),
    frame("TS.ADD", "k1", "-5", "+3"),
    frame("TS.ADD", "k1", "99999999999999999", "12345678.5"),
    frame("TS.MADD", "k1", "4"),
    frame("TS.ADD", "k5", "12", "0.000001"),
]


def test_scan_equals_hiredis_and_columns_equal_the_command_path(scan_always):
    data = b"".join(MIXED * 3)
    items, cmds = parse(data)
    assert cmds == reference(data)
    assert any(isinstance(i, Writes) for i in items)
    check_columns(items)


def test_every_split_point(scan_always):
    data = b"".join(MIXED)
    want = reference(data)
    for cut in range(1, len(data)):
        items, cmds = parse(data, [cut])
        assert cmds == want, cut
        check_columns(items)


def test_a_long_pipeline_split_anywhere_keeps_the_fast_path():
    data = b"".join(frame("TS.ADD", f"s{i % 7}", str(1000 + i), f"{i / 8}") for i in range(600))
    for cut in (1, 5, 17, 1000, len(data) // 2, len(data) - 3):
        items, cmds = parse(data, [cut])
        assert cmds == reference(data)
        assert sum(i.n_cmds for i in items if isinstance(i, Writes)) >= 600 - 200


def test_uniform_run_columns():
    data = b"".join(frame("TS.ADD", f"key:{i % 3}", str(10 + i), str(i / 4)) for i in range(200))
    (w,), _ = parse(data)
    assert w.n_cmds == 200 and w.sizes is None
    assert w.keys == [b"key:0", b"key:1", b"key:2"]
    assert w.ts.tolist() == list(range(10, 210))
    assert w.values.tolist() == [i / 4 for i in range(200)]
    assert w.ok_replies() == b"".join(b":%d\r\n" % t for t in range(10, 210))


def test_madd_replies_are_arrays(scan_always):
    (w,), _ = parse(frame("TS.MADD", "a", "1", "1", "b", "22", "2") + frame("TS.ADD", "a", "3",
                                                                          "3"))
    assert w.sizes == [2, 0]
    assert w.ok_replies() == b"*2\r\n:1\r\n:22\r\n:3\r\n"


def test_a_crlf_in_an_argument_ends_the_run(scan_always):
    data = frame("TS.ADD", "a", "1", "1") + frame("TS.ADD", "a\r\nb", "2", "2") + frame(
        "TS.ADD", "a", "3", "3")
    items, cmds = parse(data)
    assert cmds == reference(data)
    assert isinstance(items[0], Writes) and items[0].n_cmds == 1


@pytest.mark.parametrize("bad", [b"*4\r\n$06\r\nTS.ADD\r\n", b"*4\r\n$6\r\nTS.ADD\r\n$x\r\n",
                                 b"*04\r\n", b"*1\r\n:5\r\n", b"PING\r\n"])
def test_malformed_frames_after_a_run_answer_like_hiredis(scan_always, bad):
    good = frame("TS.ADD", "a", "1", "1")
    p = RequestParser()
    got, err = p.feed(good * 3 + bad + good)
    ref = hiredis.Reader()
    ref.feed(good * 3 + bad + good)
    want: list[object] = []
    try:
        while (cmd := ref.gets()) is not False:
            want.append(cmd)
    except hiredis.ProtocolError:
        assert err is not None
    expanded = [c for i in got for c in (i.commands() if isinstance(i, Writes) else [i])]
    assert expanded == want[: len(expanded)]


def test_huge_count_after_a_run(scan_always):
    got, err = RequestParser().feed(frame("TS.ADD", "a", "1", "1") + b"*123456789\r\n")
    assert len(got) == 1 and str(err) == "invalid multibulk length"


@pytest.mark.parametrize(("text", "ok", "value"), [
    ("0", True, 0.0), ("-0", True, -0.0), ("0.5", True, 0.5), ("20.35", True, 20.35),
    ("12345678", True, 12345678.0), ("1234567.8", True, 1234567.8), ("05", False, 0),
    (".5", False, 0), ("5.", False, 0), ("+3", False, 0), ("-", False, 0), ("", False, 0),
    ("1e3", True, 1000.0), ("0x10", True, 0.0), ("1_0", True, 1.0), ("inf", False, 0),
    ("123456789012.345", True, 123456789012.345), ("0.1000000000000000055511", True, 0.1),
])
def test_values(scan_always, text, ok, value):
    (w,), _ = parse(frame("TS.ADD", "k", "1", text) * 2)
    assert w.value_ok.tolist() == [ok, ok]
    if ok:
        assert w.values[0] == value and np.signbit(w.values[0]) == np.signbit(value)


_TEXT = st.one_of(
    st.sampled_from(["0", "-0", "1", "01", "*", "-1", ".5", "5.", "+3", "1e3", "", "nan",
                     "9223372036854775807", "9223372036854775808", "20.25", "0.5", "-12.75"]),
    st.integers(-10**20, 10**20).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
    st.text("0123456789.-+eE*", max_size=20),
)
_KEY = st.one_of(st.sampled_from(["k", "k2", "key:long:name:0001", "x" * 40]),
                 st.binary(max_size=12).map(lambda b: b.decode("latin-1")))


@st.composite
def _command(draw) -> bytes:
    kind = draw(st.sampled_from(["add", "add", "add", "madd", "other", "options"]))
    if kind == "add":
        return frame(draw(st.sampled_from(["TS.ADD", "ts.add", "Ts.aDd"])),
                     draw(_KEY).encode("latin-1"), draw(_TEXT), draw(_TEXT))
    if kind == "madd":
        rows = draw(st.integers(0, 4))
        args = [a for _ in range(rows) for a in (draw(_KEY).encode("latin-1"), draw(_TEXT),
                                                 draw(_TEXT))]
        return frame("TS.MADD", *args, *draw(st.sampled_from([[], ["x"], ["x", "1"]])))
    if kind == "options":
        return frame("TS.ADD", "k", draw(_TEXT), draw(_TEXT), "ON_DUPLICATE", "LAST")
    return draw(st.sampled_from([frame("PING"), frame("TS.GET", "k"), b"*0\r\n", b"*-1\r\n"]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_command(), min_size=1, max_size=25), st.lists(st.integers(0, 2000),
                                                              max_size=3))
def test_fast_parser_equals_the_general_parser(cmds, cuts):
    data = b"".join(cmds)
    old = frames.SCAN_MIN_BYTES
    frames.SCAN_MIN_BYTES = 0  # hypothesis runs many examples per fixture: patch by hand
    try:
        items, got = parse(data, sorted({c for c in cuts if 0 < c < len(data)}))
    finally:
        frames.SCAN_MIN_BYTES = old
    assert got == reference(data)
    check_columns(items)
