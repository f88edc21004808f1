"""Malformed and hostile input over real sockets: the server answers like Redis, keeps
running, and data acknowledged before is intact afterwards."""

import socket
import time

import pytest
import redis

from tests.protocols.resp.resp_server import RawClient, RespServer


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with RespServer(tmp_path_factory.mktemp("robust") / "data") as srv:
        r = redis.Redis(port=srv.port, protocol=2)
        r.ts().create("kept", labels={"k": "v"})
        assert r.ts().madd([("kept", t, t / 2) for t in range(1, 101)]) == list(range(1, 101))
        r.close()
        yield srv


@pytest.fixture
def raw(server):
    client = RawClient(server.port)
    yield client
    client.close()


def assert_alive_and_intact(server):
    r = redis.Redis(port=server.port, decode_responses=True)  # redis-py's default: RESP3
    assert r.ping() is True
    assert r.ts().range("kept", "-", "+", count=1000) == [(t, t / 2) for t in range(1, 101)]
    assert r.ts().info("kept").labels == {"k": "v"}
    r.close()


def test_truncated_frames(raw, server):
    data = b"*4\r\n$6\r\nTS.ADD\r\n$5\r\ntrunc\r\n$1\r\n1\r\n$3\r\n2.5\r\n" * 3
    for i in range(0, len(data), 7):  # 7-byte pieces, cutting through every field
        raw.send(data[i : i + 7])
        time.sleep(0.001)
    got = b""
    while got.count(b"\r\n") < 3:
        got += raw.sock.recv(1024)
    assert got == b":1\r\n" + (b"-ERR TSDB: Error at upsert, update is not supported when "
                               b"DUPLICATE_POLICY is set to BLOCK mode\r\n") * 2
    raw.send(b"*2\r\n$6\r\nTS.GET\r\n$5\r\ntr")  # half a frame, then the rest
    time.sleep(0.05)
    raw.send(b"unc\r\n")
    assert raw.read_reply() == b"*2\r\n:1\r\n+2.5\r\n"
    assert_alive_and_intact(server)


@pytest.mark.parametrize(("garbage", "reply"), [
    (b"*abc\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    (b"*1\r\n$-5\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*2\r\n$4\r\nECHO\r\n!garbage\r\n", b"-ERR Protocol error: expected '$', got '!'\r\n"),
    (b"*9999999999999\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    (b'ECHO "open\r\n', b"-ERR Protocol error: unbalanced quotes in request\r\n"),
])
def test_garbage_gets_protocol_error_and_close(raw, server, garbage, reply):
    raw.send(garbage)
    assert raw.read_until_closed() == reply
    assert_alive_and_intact(server)


def test_garbage_after_valid_commands(raw, server):
    raw.send(b"*1\r\n$4\r\nPING\r\n\x00\x01\x02\xff garbage")
    # (Redis would put the raw byte in the message; we show it escaped)
    assert raw.read_until_closed() == (b"+PONG\r\n-ERR Protocol error: expected '$', "
                                       b"got '\\x00'\r\n")
    assert_alive_and_intact(server)


def test_binary_noise_as_first_bytes_is_an_unknown_inline_command(raw, server):
    raw.send(b"\x16\x03\x01\x02\x00garbage\r\n")  # e.g. a TLS hello sent by mistake
    assert raw.read_reply().startswith(b"-ERR unknown command '\x16\x03\x01\x02\x00garbage'")
    assert raw.command("PING") == b"+PONG\r\n"
    assert_alive_and_intact(server)


def test_unknown_commands_and_wrong_arity(raw, server):
    assert raw.command("NOSUCH", "a", "b") == (
        b"-ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' \r\n")
    assert raw.command("TS.ADD", "kept") == (
        b"-ERR wrong number of arguments for 'ts.add' command\r\n")
    assert raw.command("TS.MADD", "kept", "1") == (
        b"-ERR wrong number of arguments for 'ts.madd' command\r\n")
    assert raw.command("PING") == b"+PONG\r\n"
    assert_alive_and_intact(server)


@pytest.mark.parametrize(("args", "reply"), [
    (("TS.ADD", "kept", "abc", "1"), b"-ERR TSDB: invalid timestamp\r\n"),
    (("TS.ADD", "kept", "1000", "abc"), b"-ERR TSDB: invalid value\r\n"),
    (("TS.ADD", "kept", "-5", "1"), b"-ERR TSDB: invalid timestamp, must be a nonnegative "
                                    b"integer\r\n"),
    (("TS.RANGE", "kept", "abc", "+"), b"-ERR TSDB: wrong fromTimestamp\r\n"),
    (("TS.CREATE", "kept"), b"-ERR TSDB: key already exists\r\n"),
    (("TS.INCRBY", "kept", "x"), b"-ERR TSDB: invalid increase/decrease value\r\n"),
])
def test_wrong_types(raw, server, args, reply):
    assert raw.command(*args) == reply
    assert_alive_and_intact(server)


def test_huge_argument_counts(raw, server):
    n = 150_000  # a TS.MADD of 50k samples in one command
    parts = [b"*%d\r\n$7\r\nTS.MADD\r\n" % (3 * (n // 3) + 1)]
    for i in range(n // 3):
        t = b"%d" % (10_000 + i)
        parts.append(b"$4\r\nhuge\r\n$%d\r\n%s\r\n$1\r\n1\r\n" % (len(t), t))
    r = redis.Redis(port=server.port, protocol=2)
    r.ts().create("huge")
    raw.send(b"".join(parts))
    reply = raw.read_reply()
    assert reply.startswith(b"*50000\r\n:10000\r\n") and reply.count(b":") == 50_000
    assert r.ts().info("huge").total_samples == 50_000
    # an announced count far beyond what arrives: the server waits, serving others
    raw2 = RawClient(server.port)
    raw2.send(b"*10000000\r\n$4\r\nPING\r\n")
    assert r.ping() is True
    raw2.close()
    raw3 = RawClient(server.port)  # 9+ digits: refused (a header split across reads too)
    raw3.send(b"*1\r\n$4\r\nPING\r\n*2000")
    time.sleep(0.05)
    raw3.send(b"000000\r\n")
    assert raw3.read_until_closed() == b"+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n"
    raw3.close()
    unknown = ["X"] * 50_000
    with pytest.raises(redis.ResponseError, match="unknown command 'NOPE'"):
        r.execute_command("NOPE", *unknown)
    r.close()
    assert_alive_and_intact(server)


def test_client_disconnects_mid_pipeline(server):
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(b"*4\r\n$6\r\nTS.ADD\r\n$4\r\ngone\r\n$1\r\n1\r\n$1\r\n1\r\n" * 1000
                 + b"*4\r\n$6\r\nTS.A")
    sock.close()
    r = redis.Redis(port=server.port, protocol=2)
    deadline = time.monotonic() + 5
    while not r.exists("gone") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert r.ts().get("gone") == (1, 1.0)
    r.close()
    assert_alive_and_intact(server)


def test_many_connections(server):
    clients = [redis.Redis(port=server.port, protocol=2) for _ in range(50)]
    for i, c in enumerate(clients):
        assert c.ts().add("many", i + 1, i) == i + 1
    for c in clients:
        c.close()
    assert_alive_and_intact(server)
