"""RESP codec on raw bytes: request framing, inline commands, protocol errors, encoding."""

import pytest

from sensorium.protocols.resp.codec import (
    Error,
    Raw,
    RequestParser,
    RespSet,
    Simple,
    Verbatim,
    args,
    encode,
    encode_samples,
    format_value,
    split_inline,
)


def frame(*args: str) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def test_parses_pipelined_commands():
    p = RequestParser()
    cmds, err = p.feed(frame("TS.ADD", "k", "1", "2.5") + frame("PING"))
    assert err is None
    assert cmds == [[b"TS.ADD", b"k", b"1", b"2.5"], [b"PING"]]


@pytest.mark.parametrize("cut", [1, 3, 5, 9, 17, 22])
def test_truncated_frames_complete_later(cut):
    data = frame("TS.ADD", "key", "1", "2") + frame("ECHO", "x")
    p = RequestParser()
    first, err = p.feed(data[:cut])
    assert err is None and first == []
    rest, err = p.feed(data[cut:])
    assert err is None and rest == [[b"TS.ADD", b"key", b"1", b"2"], [b"ECHO", b"x"]]


def test_byte_by_byte():
    data = frame("TS.MADD", "a", "1", "1", "b", "2", "2")
    p = RequestParser()
    got = []
    for i in range(len(data)):
        cmds, err = p.feed(data[i : i + 1])
        assert err is None
        got += cmds
    assert got == [[b"TS.MADD", b"a", b"1", b"1", b"b", b"2", b"2"]]


def test_binary_keys_survive_as_surrogates():
    p = RequestParser()
    cmds, _ = p.feed(b"*2\r\n$3\r\nGET\r\n$2\r\n\xff\x00\r\n")
    assert cmds[0][1] == b"\xff\x00"
    assert args(cmds[0])[1].encode("utf-8", "surrogateescape") == b"\xff\x00"


def test_inline_commands():
    p = RequestParser()
    cmds, err = p.feed(b'PING\r\nECHO "hello world"\r\n\r\nSET \'a b\' "x\\ny"\n')
    assert err is None
    assert cmds == [[b"PING"], [b"ECHO", b"hello world"], [b"SET", b"a b", b"x\ny"]]


def test_inline_then_multibulk_and_partial_inline():
    p = RequestParser()
    cmds, _ = p.feed(b"PI")
    assert cmds == []
    cmds, _ = p.feed(b"NG\r\n" + frame("ECHO", "a"))
    assert cmds == [[b"PING"], [b"ECHO", b"a"]]
    cmds, err = p.feed(b"PING\r\n")  # after RESP, a non-"*" byte is a protocol error
    assert cmds == [] and str(err) == "expected '$', got 'P'"


@pytest.mark.parametrize(("data", "message"), [
    (b"*abc\r\n", "invalid multibulk length"),
    (b"*3000000000\r\n", "invalid multibulk length"),
    (b"*1\r\n$x\r\n", "invalid bulk length"),
    (b"*2\r\n$4\r\nECHO\r\nXYZ\r\n", "expected '$', got 'X'"),
    (b"*1\r\n:5\r\n", "expected '$', got ':'"),
    (b'ECHO "unbalanced\r\n', "unbalanced quotes in request"),
    (b"x" * (70 * 1024), "too big inline request"),
])
def test_protocol_errors(data, message):
    cmds, err = RequestParser().feed(data)
    if message.startswith("expected '$'") and err is None:
        from sensorium.protocols.resp.codec import ProtocolError, check_args
        with pytest.raises(ProtocolError, match=message.replace("$", r"\$")):
            for c in cmds:
                check_args(c)
        return
    assert err is not None and str(err) == message


def test_commands_before_a_protocol_error_are_returned():
    cmds, err = RequestParser().feed(frame("PING") + b"*zz\r\n")
    assert cmds == [[b"PING"]]
    assert str(err) == "invalid multibulk length"


def test_empty_and_null_arrays_are_ignored():
    cmds, err = RequestParser().feed(b"*0\r\n*-1\r\n" + frame("PING"))
    assert err is None and cmds == [[b"PING"]]


def test_large_count_waits_for_data():
    p = RequestParser()
    cmds, err = p.feed(b"*10000000\r\n$1\r\na\r\n")
    assert cmds == [] and err is None


def test_huge_count_is_refused_even_split_across_reads():
    p = RequestParser()
    assert p.feed(b"*1\r\n$4\r\nPING\r\n*12345") == ([[b"PING"]], None)
    cmds, err = p.feed(b"6789\r\n")
    assert cmds == [] and str(err) == "invalid multibulk length"


def test_split_inline_hex_escape():
    assert split_inline(b'"\\x41\\x42" x') == [b"AB", b"x"]
    assert split_inline(b"   ") == []


@pytest.mark.parametrize(("value", "text"), [
    (0.1, "1E-1"), (0.25, "2.5E-1"), (0.9, "9E-1"), (1.0, "1"), (12.5, "12.5"),
    (1e15, "1000000000000000"), (1e16, "1E16"), (-0.0, "-0"), (0.0, "0"),
    (float("nan"), "NaN"), (0.30000000000000004, "3.0000000000000004E-1"), (-0.5, "-5E-1"),
    (1.5e300, "1.5E300"), (123.0, "123"),
])
def test_sample_value_format_resp2(value, text):
    assert format_value(value) == text


def test_encode_resp2_and_resp3():
    value = {Simple("a"): [1, "x", None, 2.5, True], "s": RespSet(["k"])}
    assert encode(value, 2) == (b"*4\r\n+a\r\n*5\r\n:1\r\n$1\r\nx\r\n$-1\r\n+2.5\r\n:1\r\n"
                                b"$1\r\ns\r\n*1\r\n$1\r\nk\r\n")
    assert encode(value, 3) == (b"%2\r\n+a\r\n*5\r\n:1\r\n$1\r\nx\r\n_\r\n,2.5\r\n#t\r\n"
                                b"$1\r\ns\r\n~1\r\n$1\r\nk\r\n")


def test_encode_special_types():
    assert encode(Error("ERR bad\r\nthing"), 2) == b"-ERR bad  thing\r\n"
    assert encode(Verbatim("hi"), 3) == b"=6\r\ntxt:hi\r\n"
    assert encode(Verbatim("hi"), 2) == b"$2\r\nhi\r\n"
    assert encode(Raw(b":1\r\n"), 2) == b":1\r\n"
    assert encode(b"\x00", 2) == b"$1\r\n\x00\r\n"
    with pytest.raises(TypeError):
        encode(object(), 2)


def test_encode_samples():
    assert encode_samples([(1, 0.1), (2, 3.0)], 2) == (
        b"*2\r\n*2\r\n:1\r\n+1E-1\r\n*2\r\n:2\r\n+3\r\n")
    assert encode_samples([(1, 0.1)], 3) == b"*1\r\n*2\r\n:1\r\n,0.1\r\n"
    assert encode_samples([], 3) == b"*0\r\n"
