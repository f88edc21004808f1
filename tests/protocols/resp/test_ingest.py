"""Batched TS.ADD/TS.MADD: one engine append, replies identical to sequential execution."""

import pytest

from sensorium.protocols.resp import ingest

from .conftest import Client

UPSERT = b"-ERR TSDB: Error at upsert, update is not supported when DUPLICATE_POLICY is set to BLOCK mode\r\n"  # noqa: E501


def sequential(state, cmds):
    """The same commands one read each: no batching across them."""
    c = Client(state)
    return b"".join(c.pipeline([cmd]) for cmd in cmds)


SCENARIOS = {
    "plain adds": [("TS.ADD", "a", str(t), str(t / 4)) for t in range(1, 30)],
    "add creates, madd follows": [("TS.MADD", "n", "1", "1"), ("TS.ADD", "n", "2", "2"),
                                  ("TS.MADD", "n", "3", "3", "n", "2", "9")],
    "duplicates in the batch": [("TS.ADD", "d", "1", "1"), ("TS.ADD", "d", "1", "2"),
                                ("TS.MADD", "d", "1", "3", "d", "2", "4", "d", "2", "5")],
    "bad rows": [("TS.ADD", "b", "x", "1"), ("TS.ADD", "b", "1", "y"), ("TS.ADD", "b", "-1", "1"),
                 ("TS.ADD", "b", "2", "2"), ("TS.MADD", "b", "3", "z", "zz", "1", "1"),
                 ("ts.add", "b", "01", "1"), ("Ts.Add", "b", "4", "1e3")],
    "invalid value does not create": [("TS.ADD", "v", "1", "nan"), ("TS.MADD", "v", "1", "1")],
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_batch_equals_sequential(tmp_path, name):
    import sensorium
    from sensorium.protocols.resp.session import ServerState
    cmds = SCENARIOS[name]
    with sensorium.open(str(tmp_path / "one"), background=False) as db1, \
            sensorium.open(str(tmp_path / "two"), background=False) as db2:
        batched = Client(ServerState(db1)).pipeline(cmds)
        expected = sequential(ServerState(db2), cmds)
        assert batched == expected
        for key in db2.keys():
            assert db1.range(key, "-", "+") == db2.range(key, "-", "+")
        assert db1.keys() == db2.keys()


def test_replies_of_a_mixed_batch(c, db):
    out = c.pipeline([("TS.ADD", "k", "1", "1"), ("TS.MADD", "k", "2", "2", "k", "1", "5"),
                      ("TS.ADD", "k", "*", "3"), ("TS.ADD", "k", "3", "bad")])
    parts = out.split(b"\r\n")
    assert parts[:3] == [b":1", b"*2", b":2"]
    assert out.endswith(b"-ERR TSDB: invalid value\r\n")
    assert UPSERT in out


def test_batch_uses_one_engine_append(c, db, monkeypatch):
    calls = []
    real = db.engine.append

    def spy(*args, **kwargs):
        calls.append(len(args[0]))
        return real(*args, **kwargs)

    monkeypatch.setattr(db.engine, "append", spy)
    c.pipeline([("TS.ADD", f"s{i % 7}", str(i), "1.5") for i in range(500)]
               + [("TS.MADD", "s1", "1000", "1", "s2", "1000", "2")])
    assert calls == [502]


def test_options_break_the_run(c, db):
    out = c.pipeline([("TS.ADD", "k", "1", "1"), ("TS.ADD", "k", "2", "2", "ON_DUPLICATE", "LAST"),
                      ("TS.ADD", "k", "2", "3")])
    assert out == b":1\r\n:2\r\n" + UPSERT


@pytest.mark.parametrize(("cmd", "fast"), [
    ([b"TS.ADD", b"k", b"1", b"1"], True), ([b"ts.add", b"k", b"1", b"1"], True),
    ([b"TS.ADD", b"k", b"1", b"1", b"LABELS"], False), ([b"TS.MADD", b"k", b"1", b"1"], True),
    ([b"TS.MADD", b"k", b"1", b"1", b"k"], False), ([b"TS.GET", b"k"], False),
    ([b"PING"], False), (["TS.ADD", "k", "1", "1"], False),
])
def test_is_fast(cmd, fast):
    assert ingest.is_fast(cmd) is fast


def _mixed_pipeline(prefix: str) -> list[tuple[str, ...]]:
    """Plain writes around every kind of refusal, long enough to be scanned."""
    k = f"{prefix}k"
    cmds: list[tuple[str, ...]] = [("TS.CREATE", f"{prefix}blocked", "DUPLICATE_POLICY", "BLOCK")]
    for i in range(150):
        cmds.append(("TS.ADD", f"{k}{i % 5}", str(1000 + i), f"{i / 4}"))
    cmds += [
        # RETENTION 100: the TS.MADD rows at 10.. judge it as one command after another would.
        ("TS.ADD", f"{k}opt", "5", "1", "RETENTION", "100", "LABELS", "a", "b"),
        ("TS.ADD", f"{k}0", "6", "1", "ON_DUPLICATE", "LAST"),
        ("TS.ADD", f"{k}0"),  # wrong arity
        ("TS.ADD", f"{k}0", "x1", "1"),  # bad timestamp
        ("TS.ADD", f"{k}0", "-3", "1"),  # negative timestamp
        ("TS.ADD", f"{k}0", "7", "abc"),  # bad value
        ("TS.ADD", f"{prefix}blocked", "1", "1"),
        ("TS.ADD", f"{prefix}blocked", "1", "2"),  # duplicate under BLOCK
        ("TS.MADD", f"{k}1", "2000", "1", f"{prefix}missing", "1", "1", f"{k}2", "zz", "1"),
        ("TS.MADD", f"{k}1", "2001"),  # wrong arity
    ]
    for i in range(150):
        cmds.append(("TS.MADD", f"{k}{i % 5}", str(3000 + i), "1.5", f"{k}opt", str(10 + i), "-2"))
    cmds.append(("TS.ADD", f"{k}opt", "20", "1"))  # older than 159 - RETENTION: refused
    cmds.append(("TS.ADD", f"{prefix}blocked", "1", "3"))
    return cmds


@pytest.mark.parametrize("scan_min", [0, None], ids=["every-run-scanned", "default"])
def test_pipeline_replies_equal_one_command_per_read(tmp_path, monkeypatch, scan_min):
    import sensorium
    from sensorium.protocols.resp import frames
    from sensorium.protocols.resp.session import ServerState
    if scan_min is not None:
        monkeypatch.setattr(frames, "SCAN_MIN_BYTES", scan_min)
    cmds = _mixed_pipeline("p:")
    with sensorium.open(str(tmp_path / "one"), background=False) as db1, \
            sensorium.open(str(tmp_path / "two"), background=False) as db2:
        piped = Client(ServerState(db1)).pipeline(cmds)
        expected = sequential(ServerState(db2), cmds)
        assert piped == expected
        assert db1.keys() == db2.keys()
        for key in db2.keys():
            assert db1.range(key, "-", "+") == db2.range(key, "-", "+")
            one, two = db1.info(key), db2.info(key)
            assert (one["retention_msecs"], one["labels"]) == (two["retention_msecs"],
                                                               two["labels"])


def test_pipeline_split_at_every_byte(tmp_path, monkeypatch):
    import sensorium
    from sensorium.protocols.resp import frames
    from sensorium.protocols.resp.session import ServerState
    monkeypatch.setattr(frames, "SCAN_MIN_BYTES", 0)
    cmds = [("TS.ADD", "a", "1", "1"), ("TS.MADD", "a", "2", "2", "b", "1", "1"),
            ("TS.ADD", "a", "3", "x"), ("TS.ADD", "a", "4", "4", "LABELS", "l", "v"),
            ("TS.ADD", "a", "1", "9")]
    data = Client.frames(cmds)
    with sensorium.open(str(tmp_path / "ref"), background=False) as db:
        expected = sequential(ServerState(db), cmds)
    for cut in range(1, len(data)):
        with sensorium.open(str(tmp_path / f"d{cut}"), background=False) as db:
            c = Client(ServerState(db))
            assert c.raw(data[:cut]) + c.raw(data[cut:]) == expected, cut


def test_transaction_of_plain_writes(c, db):
    out = c.pipeline([("MULTI",)] + [("TS.ADD", "t", str(i), "1") for i in range(1, 200)]
                     + [("EXEC",)])
    assert out == (b"+OK\r\n" + b"+QUEUED\r\n" * 199 + b"*199\r\n"
                   + b"".join(b":%d\r\n" % i for i in range(1, 200)))
