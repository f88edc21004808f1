"""Connection-level behaviour: errors, arity, auth, HELLO, MULTI/EXEC, CLIENT, keys."""

import pytest

from sensorium.protocols.resp.session import ServerState, execute_jobs

from .conftest import Client


def test_ping_echo(c):
    assert c("PING") == b"+PONG\r\n"
    assert c("PING", "hi") == b"$2\r\nhi\r\n"
    assert c("ECHO", "x") == b"$1\r\nx\r\n"
    assert c("ping", "a", "b") == b"-ERR wrong number of arguments for 'ping' command\r\n"


def test_unknown_command_text(c):
    assert c("FOO", "a", "b") == (
        b"-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n")
    assert c("FOO") == b"-ERR unknown command 'FOO', with args beginning with: \r\n"
    long = c("FOO", "x" * 300)
    assert long.startswith(b"-ERR unknown command 'FOO', with args beginning with: 'xxx")
    assert len(long) < 220


@pytest.mark.parametrize(("args", "name"), [
    (("TS.ADD", "k", "1"), "ts.add"), (("ts.add",), "ts.add"), (("TS.CREATE",), "ts.create"),
    (("TS.MADD", "k", "1"), "ts.madd"), (("TS.MADD", "k", "1", "2", "x"), "ts.madd"),
    (("TS.DEL", "k", "1"), "ts.del"), (("TS.RANGE", "k", "-"), "ts.range"),
    (("TS.GET", "k", "LATEST", "x"), "ts.get"), (("TS.INFO",), "ts.info"),
    (("TS.CREATERULE", "a", "b", "AGGREGATION", "avg"), "ts.createrule"),
    (("TS.MGET", "x"), "ts.mget"), (("TS.MRANGE", "-", "+", "a=b"), "ts.mrange"),
    (("SELECT",), "select"), (("TYPE",), "type"), (("DEL",), "del"),
])
def test_wrong_arity(c, args, name):
    assert c(*args) == f"-ERR wrong number of arguments for '{name}' command\r\n".encode()


def test_protocol_error_closes_after_earlier_replies(c):
    out = c.raw(b"*1\r\n$4\r\nPING\r\n*x\r\n")
    assert out == b"+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n"
    assert c.closed


def test_non_bulk_argument_is_a_protocol_error(c):
    assert c.raw(b"*2\r\n$4\r\nECHO\r\n:1\r\n") == b"-ERR Protocol error: expected '$', got ':'\r\n"
    assert c.closed


def test_non_bulk_argument_in_a_write_batch(c):
    ok = b"*4\r\n$6\r\nTS.ADD\r\n$1\r\nk\r\n$1\r\n1\r\n$1\r\n1\r\n"
    bad = b"*4\r\n$6\r\nTS.ADD\r\n$1\r\nk\r\n:2\r\n$1\r\n1\r\n"
    assert c.raw(ok + bad + ok) == b":1\r\n-ERR Protocol error: expected '$', got ':'\r\n"
    assert c.closed


def test_inline_commands(c):
    assert c.raw(b"PING\r\nECHO hi\r\n") == b"+PONG\r\n$2\r\nhi\r\n"
    assert c.raw(b"garbage \xff\r\n").startswith(b"-ERR unknown command 'garbage'")


def test_hello_switches_protocol(c):
    reply = c("HELLO", "3")
    assert reply.startswith(b"%7\r\n$6\r\nserver\r\n")
    assert b"$5\r\nproto\r\n:3\r\n" in reply
    assert c("HELLO", "2").startswith(b"*14\r\n")
    assert c("HELLO", "4") == b"-NOPROTO unsupported protocol version\r\n"
    assert c("HELLO", "x") == b"-ERR Protocol version is not an integer or out of range\r\n"
    assert c("HELLO", "3", "FOO") == b"-ERR Syntax error in HELLO option 'FOO'\r\n"
    assert c.session.proto == 2


def test_select(c):
    assert c("SELECT", "0") == b"+OK\r\n"
    assert c("SELECT", "1") == b"-ERR DB index is out of range\r\n"
    assert c("SELECT", "x") == b"-ERR value is not an integer or out of range\r\n"


def test_auth_without_password(c):
    assert c("AUTH", "x").startswith(b"-ERR AUTH <password> called without any password")
    assert c("AUTH", "default", "x") == b"+OK\r\n"
    assert c("AUTH", "bob", "x").startswith(b"-WRONGPASS")


def test_password(db):
    c = Client(ServerState(db, password="s3cret"))
    assert c("PING") == b"-NOAUTH Authentication required.\r\n"
    assert c("TS.ADD", "k", "1", "1") == b"-NOAUTH Authentication required.\r\n"
    assert c("HELLO", "3").startswith(b"-NOAUTH HELLO must be called")
    assert c("AUTH", "nope") == (
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n")
    assert c("HELLO", "3", "AUTH", "default", "s3cret", "SETNAME", "me").startswith(b"%7")
    assert c("TS.ADD", "k", "1", "1") == b":1\r\n"
    assert c("CLIENT", "GETNAME") == b"$2\r\nme\r\n"
    assert c("RESET") == b"+RESET\r\n"
    assert c("PING") == b"-NOAUTH Authentication required.\r\n"
    assert c("AUTH", "default", "s3cret") == b"+OK\r\n"
    assert c("PING") == b"+PONG\r\n"
    assert db.keys() == ["k"]


def test_client_commands(c, state):
    assert c("CLIENT", "SETNAME", "a b").startswith(b"-ERR Client names cannot contain")
    assert c("CLIENT", "SETNAME", "app") == b"+OK\r\n"
    assert c("CLIENT", "GETNAME") == b"$3\r\napp\r\n"
    assert c("CLIENT", "ID") == f":{c.session.id}\r\n".encode()
    assert c("CLIENT", "SETINFO", "LIB-NAME", "redis-py") == b"+OK\r\n"
    assert c("CLIENT", "SETINFO", "LIB-VER", "8.1.0") == b"+OK\r\n"
    assert c("CLIENT", "SETINFO", "X", "y") == b"-ERR Unrecognized option 'X'\r\n"
    info = c("CLIENT", "INFO")
    assert b"name=app" in info and b"lib-name=redis-py lib-ver=8.1.0" in info
    assert c("CLIENT", "MAINT_NOTIFICATIONS", "ON") == (
        b"-ERR unknown subcommand 'MAINT_NOTIFICATIONS'. Try CLIENT HELP.\r\n")
    other = Client(state)
    assert c("CLIENT", "LIST").count(b"id=") == 2
    other.session.close()


def test_multi_exec(c, db):
    assert c("MULTI") == b"+OK\r\n"
    assert c("MULTI") == b"-ERR MULTI calls can not be nested\r\n"
    assert c("TS.ADD", "k", "1", "1") == b"+QUEUED\r\n"
    assert c("TS.ADD", "k", "2", "2") == b"+QUEUED\r\n"
    assert c("TS.GET", "k") == b"+QUEUED\r\n"
    assert c("TS.ADD", "k", "1", "5") == b"+QUEUED\r\n"
    assert db.keys() == []
    assert c("EXEC") == (b"*4\r\n:1\r\n:2\r\n*2\r\n:2\r\n+2\r\n-ERR TSDB: Error at upsert, "
                         b"update is not supported when DUPLICATE_POLICY is set to BLOCK mode\r\n")
    assert c("EXEC") == b"-ERR EXEC without MULTI\r\n"
    assert c("DISCARD") == b"-ERR DISCARD without MULTI\r\n"


def test_multi_queue_errors_abort_exec(c, db):
    c("MULTI")
    assert c("TS.ADD", "k", "1", "1") == b"+QUEUED\r\n"
    assert c("NOPE").startswith(b"-ERR unknown command 'NOPE'")
    assert c("TS.ADD", "k") == b"-ERR wrong number of arguments for 'ts.add' command\r\n"
    assert c("EXEC") == b"-EXECABORT Transaction discarded because of previous errors.\r\n"
    assert db.keys() == []
    c("MULTI")
    c("TS.ADD", "k", "1", "1")
    assert c("DISCARD") == b"+OK\r\n"
    assert c("EXEC") == b"-ERR EXEC without MULTI\r\n"
    assert db.keys() == []


def test_pipelined_transaction_in_one_read(c3, db):
    out = c3.pipeline([("MULTI",), ("TS.ADD", "k", "1", "0.5"), ("TS.MADD", "k", "2", "1"),
                       ("TS.RANGE", "k", "-", "+"), ("EXEC",)])
    assert out == (b"+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n:1\r\n*1\r\n:2\r\n"
                   b"*2\r\n*2\r\n:1\r\n,0.5\r\n*2\r\n:2\r\n,1\r\n")


def test_quit_stops_processing(c):
    assert c.pipeline([("QUIT",), ("PING",)]) == b"+OK\r\n"
    assert c.closed


def test_key_commands(c, db):
    for k in ("sensor:1", "sensor:2", "other", "s[x]"):
        db.create(k)
    assert c("KEYS", "sensor:*") == b"*2\r\n$8\r\nsensor:1\r\n$8\r\nsensor:2\r\n"
    assert c("KEYS", "s?n*[^1]") == b"*1\r\n$8\r\nsensor:2\r\n"
    assert c("KEYS", "s\\[x\\]") == b"*1\r\n$4\r\ns[x]\r\n"
    assert c("KEYS", "[a-o]*") == b"*1\r\n$5\r\nother\r\n"
    assert c("EXISTS", "other", "other", "nope") == b":2\r\n"
    assert c("TYPE", "other") == b"+TSDB-TYPE\r\n"
    assert c("TYPE", "nope") == b"+none\r\n"
    assert c("DBSIZE") == b":4\r\n"
    assert c("SCAN", "0", "MATCH", "sensor:*") == (
        b"*2\r\n$1\r\n0\r\n*2\r\n$8\r\nsensor:1\r\n$8\r\nsensor:2\r\n")
    assert c("DEL", "sensor:1", "sensor:1", "nope") == b":1\r\n"
    assert c("UNLINK", "sensor:2") == b":1\r\n"
    assert c("FLUSHALL", "BAD") == b"-ERR syntax error\r\n"
    assert c("FLUSHALL") == b"+OK\r\n"
    assert c("DBSIZE") == b":0\r\n"


def test_introspection(c):
    count = int(c("COMMAND", "COUNT")[1:-2])
    assert count >= 40
    assert c("COMMAND", "INFO", "ts.add", "nope").startswith(
        b"*2\r\n*10\r\n$6\r\nts.add\r\n:-4\r\n")
    assert b"summary" in c("COMMAND", "DOCS", "ts.range")
    assert c("COMMAND").startswith(f"*{count}\r\n".encode())
    info = c("INFO")
    assert b"# Server\r\nredis_version:" in info and b"# Keyspace\r\ndb0:keys=0" in info
    assert b"# Modules\r\nmodule:name=timeseries,ver=11214" in c("INFO", "modules")
    assert c("MODULE", "LIST").startswith(b"*1\r\n*8\r\n$4\r\nname\r\n$10\r\ntimeseries\r\n")
    assert c("CONFIG", "GET", "databases") == b"*2\r\n$9\r\ndatabases\r\n$1\r\n1\r\n"
    assert c("TIME").startswith(b"*2\r\n$")


def test_group_commit_of_several_connections(state, db):
    a, b = Client(state), Client(state)
    def cmds(*lines):
        return [line.encode().split() for line in lines]

    jobs = [(a.session, cmds("TS.ADD x 1 1", "TS.ADD x 2 2", "PING")),
            (b.session, cmds("TS.MADD x 3 3 y 1 1", "TS.ADD y 1 1", "TS.MADD y 2 2"))]
    out = execute_jobs(db, jobs)
    assert out[0] == (b":1\r\n:2\r\n+PONG\r\n", False)
    assert out[1] == (b"*2\r\n:3\r\n-ERR TSDB: the key is not a TSDB key\r\n:1\r\n*1\r\n:2\r\n",
                      False)
    assert db.range("x", "-", "+") == [(1, 1.0), (2, 2.0), (3, 3.0)]
