"""redis-py pipelines (transaction=False and True) of plain and refused writes: each reply in
order equals the one the same command gets alone (the scanned fast path against the
one-command path), under RESP2 and RESP3."""

import pytest
import redis

from tests.protocols.resp.resp_server import RespServer


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with RespServer(tmp_path_factory.mktemp("resp") / "data") as srv:
        yield srv


def commands(prefix: str, transaction: bool) -> list[tuple[str, ...]]:
    k = f"{prefix}:k"
    cmds: list[tuple[str, ...]] = [("TS.CREATE", f"{prefix}:b", "DUPLICATE_POLICY", "BLOCK")]
    cmds += [("TS.ADD", f"{k}{i % 4}", str(1000 + i), f"{i / 8}") for i in range(400)]
    cmds += [
        ("TS.ADD", f"{k}x", "5", "1", "LABELS", "sensor", "s1"),
        ("TS.ADD", f"{k}0", "6", "2", "ON_DUPLICATE", "LAST"),
        *([] if transaction else [("TS.ADD", f"{k}0", "7")]),  # in MULTI: EXECABORT
        ("TS.ADD", f"{k}0", "t", "1"),
        ("TS.ADD", f"{k}0", "8", "v"),
        ("TS.ADD", f"{prefix}:b", "1", "1"),
        ("TS.ADD", f"{prefix}:b", "1", "2"),
        ("TS.MADD", f"{k}1", "9", "1", f"{prefix}:none", "9", "1"),
    ]
    cmds += [("TS.MADD", f"{k}{i % 4}", str(5000 + i), "2", f"{k}x", str(10 + i), "3")
             for i in range(200)]
    return cmds


def run(r: redis.Redis, cmds: list[tuple[str, ...]], transaction: bool | None) -> list[object]:
    if transaction is None:  # one command at a time
        out: list[object] = []
        for cmd in cmds:
            try:
                out.append(r.execute_command(*cmd))
            except redis.ResponseError as exc:
                out.append(exc)
        return out
    p = r.pipeline(transaction=transaction)
    for cmd in cmds:
        p.execute_command(*cmd)
    return p.execute(raise_on_error=False)


def normal(replies: object) -> object:
    if isinstance(replies, list):
        return [normal(x) for x in replies]
    return f"error: {replies}" if isinstance(replies, Exception) else replies


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("transaction", [False, True])
def test_pipeline_replies_equal_single_commands(server, protocol, transaction):
    r = redis.Redis(port=server.port, protocol=protocol, decode_responses=True)
    name = f"p{protocol}{int(transaction)}"
    piped = run(r, commands(name, transaction), transaction)
    alone = run(r, commands(f"{name}s", transaction), None)
    assert normal(piped) == normal(alone)
    # arity (not in MULTI, where it discards the transaction), timestamp, value, BLOCK
    assert sum(isinstance(x, Exception) for x in piped) == (3 if transaction else 4)
    for key in ("k0", "k1", "kx", "b"):
        assert r.execute_command("TS.RANGE", f"{name}:{key}", "-", "+") == \
            r.execute_command("TS.RANGE", f"{name}s:{key}", "-", "+")
    r.close()
