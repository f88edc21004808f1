"""TS.* commands on raw RESP: option quirks, error texts and reply shapes (reference §2–3)."""

import pytest

CHUNK = "CHUNK_SIZE value must be a multiple of 8 in the range [48 .. 1048576]"
UPSERT = b"-ERR TSDB: Error at upsert, update is not supported when DUPLICATE_POLICY is set to BLOCK mode\r\n"  # noqa: E501


def test_create_options_are_searched(c, db):
    assert c("TS.CREATE", "k", "RETENTION", "1000", "LABELS", "A", "B", "CHUNK_SIZE", "128",
             "DUPLICATE_POLICY", "last", "FOO") == b"+OK\r\n"
    info = db.info("k")
    assert info["retention_msecs"] == 1000
    assert info["chunk_size"] == 128
    assert info["duplicate_policy"] == "last"
    assert info["labels"] == {"A": "B", "CHUNK_SIZE": "128", "DUPLICATE_POLICY": "last"}
    assert c("TS.CREATE", "k") == b"-ERR TSDB: key already exists\r\n"


def test_create_labels_quirks(c, db):
    c("TS.CREATE", "odd", "labels", "a", "1", "b")
    assert db.info("odd")["labels"] == {"a": "1"}
    c("TS.CREATE", "none", "LABELS")
    assert db.info("none")["labels"] == {}


@pytest.mark.parametrize(("args", "error"), [
    (("RETENTION", "-1"), "Couldn't parse RETENTION"),
    (("RETENTION", "x"), "Couldn't parse RETENTION"),
    (("RETENTION",), "Couldn't parse RETENTION"),
    (("CHUNK_SIZE", "100"), CHUNK),
    (("CHUNK_SIZE", "8"), CHUNK),
    (("DUPLICATE_POLICY", "nope"), "Unknown DUPLICATE_POLICY"),
    (("ENCODING", "zip"), "unknown ENCODING parameter"),
    (("IGNORE", "1"), "Couldn't parse IGNORE"),
    (("IGNORE", "-1", "1"), "IGNORE arguments cannot be negative"),
])
def test_create_errors(c, args, error):
    assert c("TS.CREATE", "k", *args) == f"-ERR TSDB: {error}\r\n".encode()


def test_alter(c, db):
    c("TS.CREATE", "k", "LABELS", "a", "1")
    assert c("TS.ALTER", "k", "RETENTION", "5", "ENCODING", "x") == b"+OK\r\n"
    assert db.info("k")["retention_msecs"] == 5
    assert db.info("k")["labels"] == {"a": "1"}
    c("TS.ALTER", "k", "LABELS")
    assert db.info("k")["labels"] == {}
    assert c("TS.ALTER", "nope", "RETENTION", "1") == b"-ERR TSDB: the key does not exist\r\n"


def test_add_errors_in_redis_order(c):
    assert c("TS.ADD", "k", "abc", "1") == b"-ERR TSDB: invalid timestamp\r\n"
    assert c("TS.ADD", "k", "abc", "x") == b"-ERR TSDB: invalid value\r\n"
    assert c("TS.ADD", "k", "-1", "1") == (
        b"-ERR TSDB: invalid timestamp, must be a nonnegative integer\r\n")
    assert c("TS.ADD", "k", "1", "1", "RETENTION", "x") == (
        b"-ERR TSDB: Couldn't parse RETENTION\r\n")
    assert c("TS.ADD", "k", "1", "inf") == b"-ERR TSDB: invalid value\r\n"


def test_add_with_options_creates_and_on_duplicate(c, db):
    assert c("TS.ADD", "k", "10", "1", "LABELS", "zone", "A", "ON_DUPLICATE", "sum") == b":10\r\n"
    assert db.info("k")["labels"] == {"zone": "A", "ON_DUPLICATE": "sum"}
    assert db.info("k")["duplicate_policy"] is None  # ON_DUPLICATE ignored when creating
    assert c("TS.ADD", "k", "10", "2") == UPSERT
    assert c("TS.ADD", "k", "10", "2", "ON_DUPLICATE", "SUM") == b":10\r\n"
    assert c("TS.ADD", "k", "10", "2", "ON_DUPLICATE", "bad") == (
        b"-ERR TSDB: Unknown DUPLICATE_POLICY\r\n")
    # creation options are ignored on an existing key, even invalid ones
    assert c("TS.ADD", "k", "11", "1", "RETENTION", "x") == b":11\r\n"
    assert db.range("k", "-", "+") == [(10, 3.0), (11, 1.0)]


def test_add_star_timestamp(c, db):
    import time
    before = int(time.time() * 1000)
    ts = int(c("TS.ADD", "k", "*", "1")[1:-2])
    assert before <= ts <= int(time.time() * 1000)


def test_ignore_filter(c, db):
    c("TS.CREATE", "k", "DUPLICATE_POLICY", "LAST", "IGNORE", "10", "0.5")
    assert c("TS.ADD", "k", "100", "1") == b":100\r\n"
    assert c("TS.ADD", "k", "105", "1.2") == b":100\r\n"  # dropped: reply is the max ts
    assert c.pipeline([("TS.ADD", "k", "106", "1.1"), ("TS.ADD", "k", "200", "5"),
                       ("TS.MADD", "k", "201", "5.1")]) == b":100\r\n:200\r\n*1\r\n:200\r\n"
    assert db.range("k", "-", "+") == [(100, 1.0), (200, 5.0)]


def test_madd(c, db):
    db.create("a")
    out = c("TS.MADD", "a", "1", "1", "a", "1", "2", "nope", "1", "1", "a", "x", "1",
            "a", "2", "x", "nope", "x", "x")
    assert out == (b"*6\r\n:1\r\n" + UPSERT + b"-ERR TSDB: the key is not a TSDB key\r\n"
                   b"-ERR TSDB: invalid timestamp\r\n-ERR TSDB: invalid value\r\n"
                   b"-ERR TSDB: the key is not a TSDB key\r\n")


def test_incrby_decrby(c, db):
    assert c("TS.INCRBY", "k", "5", "TIMESTAMP", "10", "LABELS", "a", "b") == b":10\r\n"
    assert c("TS.INCRBY", "k", "2.5", "TIMESTAMP", "10") == b":10\r\n"
    assert c("TS.DECRBY", "k", "1", "TIMESTAMP", "20") == b":20\r\n"
    assert db.range("k", "-", "+") == [(10, 7.5), (20, 6.5)]
    assert db.info("k")["labels"] == {"a": "b"}
    assert c("TS.INCRBY", "k", "1", "TIMESTAMP", "5") == (
        b"-ERR TSDB: timestamp must be equal to or higher than the maximum existing timestamp\r\n")
    assert c("TS.INCRBY", "k", "x") == b"-ERR TSDB: invalid increase/decrease value\r\n"
    assert c("TS.DECRBY", "new", "3", "TIMESTAMP", "1") == b":1\r\n"
    assert db.get("new") == (1, -3.0)
    assert c("TS.INCRBY", "k", "1", "TIMESTAMP") == b"-ERR TSDB: invalid timestamp\r\n"


def test_del(c, db):
    c.pipeline([("TS.ADD", "k", str(t), "1") for t in range(1, 6)])
    assert c("TS.DEL", "k", "2", "3") == b":2\r\n"
    assert c("TS.DEL", "k", "100", "0") == b":0\r\n"
    assert c("TS.DEL", "k", "-", "+") == b":3\r\n"
    assert c("TS.DEL", "k", "x", "+") == b"-ERR TSDB: wrong fromTimestamp\r\n"
    assert c("TS.DEL", "k", "1", "-5") == b"-ERR TSDB: wrong toTimestamp\r\n"
    assert c("TS.DEL", "nope", "1", "2") == b"-ERR TSDB: the key does not exist\r\n"


def test_rules(c, db):
    db.create("src")
    db.create("dst")
    assert c("TS.CREATERULE", "src", "dst", "AGGREGATION", "avg", "10") == b"+OK\r\n"
    assert c("TS.CREATERULE", "src", "src", "AGGREGATION", "avg", "10") == (
        b"-ERR TSDB: the source key and destination key should be different\r\n")
    assert c("TS.CREATERULE", "src", "dst", "AGGREGATION", "nope", "10") == (
        b"-ERR TSDB: Unknown aggregation type\r\n")
    assert c("TS.CREATERULE", "src", "dst", "AGGREGATION", "avg", "0") == (
        b"-ERR TSDB: bucketDuration must be greater than zero\r\n")
    assert c("TS.CREATERULE", "src", "dst", "AGGREGATION", "avg", "10", "-1") == (
        b"-ERR TSDB: Couldn't parse alignTimestamp\r\n")
    assert c("TS.CREATERULE", "src", "nope", "AGGREGATION", "avg", "10") == (
        b"-ERR TSDB: the key does not exist\r\n")
    c.pipeline([("TS.ADD", "src", str(t), str(t)) for t in (1, 5, 12)])
    assert c("TS.RANGE", "dst", "-", "+") == b"*1\r\n*2\r\n:0\r\n+3\r\n"
    assert c("TS.GET", "dst", "LATEST") == b"*2\r\n:10\r\n+12\r\n"
    assert c("TS.DELETERULE", "src", "dst") == b"+OK\r\n"
    assert c("TS.DELETERULE", "src", "dst") == b"-ERR TSDB: compaction rule does not exist\r\n"


@pytest.fixture
def stock(c):
    c.pipeline([("TS.ADD", "stock", str(t), str(v)) for t, v in
                ((1000, 100), (1010, 110), (1020, 120), (2000, 200), (2010, 210), (2020, 220))])
    return c


def test_range_and_aggregation(stock):
    c = stock
    assert c("TS.RANGE", "stock", "-", "+", "COUNT", "2") == (
        b"*2\r\n*2\r\n:1000\r\n+100\r\n*2\r\n:1010\r\n+110\r\n")
    assert c("TS.REVRANGE", "stock", "-", "+", "count", "1") == b"*1\r\n*2\r\n:2020\r\n+220\r\n"
    assert c("TS.RANGE", "stock", "-", "+", "AGGREGATION", "min", "20") == (
        b"*4\r\n*2\r\n:1000\r\n+100\r\n*2\r\n:1020\r\n+120\r\n"
        b"*2\r\n:2000\r\n+200\r\n*2\r\n:2020\r\n+220\r\n")
    assert c("TS.RANGE", "stock", "-", "+", "ALIGN", "10", "AGGREGATION", "min", "20") == (
        b"*4\r\n*2\r\n:990\r\n+100\r\n*2\r\n:1010\r\n+110\r\n*2\r\n:1990\r\n+200\r\n"
        b"*2\r\n:2010\r\n+210\r\n")
    assert c("TS.RANGE", "stock", "1005", "+", "FILTER_BY_VALUE", "100", "150",
             "FILTER_BY_TS", "1010", "1020", "2000") == (
        b"*2\r\n*2\r\n:1010\r\n+110\r\n*2\r\n:1020\r\n+120\r\n")
    assert c("TS.RANGE", "stock", "100", "0") == b"*0\r\n"
    assert c("TS.RANGE", "stock", "-", "+", "AGGREGATION", "avg", "1000",
             "BUCKETTIMESTAMP", "mid") == b"*2\r\n*2\r\n:1500\r\n+110\r\n*2\r\n:2500\r\n+210\r\n"


@pytest.mark.parametrize(("args", "error"), [
    (("x", "+"), "wrong fromTimestamp"),
    (("-", "x"), "wrong toTimestamp"),
    (("-", "+", "COUNT"), "COUNT argument is missing"),
    (("-", "+", "COUNT", "0"), "Invalid COUNT value"),
    (("-", "+", "AGGREGATION", "avg"), "Couldn't parse AGGREGATION"),
    (("-", "+", "AGGREGATION", "foo", "10"), "Unknown aggregation type"),
    (("-", "+", "AGGREGATION", "avg", "0"), "bucketDuration must be greater than zero"),
    (("-", "+", "ALIGN", "5"), "ALIGN parameter can only be used with AGGREGATION"),
    (("-", "+", "ALIGN", "start", "AGGREGATION", "avg", "10"),
     "start alignment can only be used with explicit start timestamp"),
    (("-", "+", "ALIGN", "x", "AGGREGATION", "avg", "10"), "unknown ALIGN parameter"),
    (("-", "+", "AGGREGATION", "avg", "10", "BUCKETTIMESTAMP", "x"),
     "unknown BUCKETTIMESTAMP parameter"),
    (("-", "+", "FILTER_BY_VALUE", "1"), "FILTER_BY_VALUE one or more arguments are missing"),
    (("-", "+", "FILTER_BY_VALUE", "x", "2"), "Couldn't parse MIN"),
    (("-", "+", "FILTER_BY_TS"), "FILTER_BY_TS one or more arguments are missing"),
])
def test_range_errors(stock, args, error):
    assert stock("TS.RANGE", "stock", *args) == f"-ERR TSDB: {error}\r\n".encode()


def test_range_missing_key(c):
    assert c("TS.RANGE", "nope", "-", "+") == b"-ERR TSDB: the key does not exist\r\n"
    assert c("TS.GET", "nope") == b"-ERR TSDB: the key does not exist\r\n"
    assert c("TS.INFO", "nope") == b"-ERR TSDB: the key does not exist\r\n"


def test_resp3_doubles(stock, c3):
    assert c3("TS.RANGE", "stock", "-", "+", "COUNT", "1") == b"*1\r\n*2\r\n:1000\r\n,100\r\n"
    assert c3("TS.GET", "stock") == b"*2\r\n:2020\r\n,220\r\n"


def test_get_empty(c, db):
    db.create("e")
    assert c("TS.GET", "e") == b"*0\r\n"


@pytest.fixture
def labelled(c, db):
    db.create("a", labels={"zone": "A", "type": "t"})
    db.create("b", labels={"zone": "B", "type": "t"})
    db.create("c", labels={"zone": "A"})
    c.pipeline([("TS.MADD", "a", "1", "1", "b", "1", "2", "c", "1", "3", "a", "2", "0.5")])
    return c


def test_mget_resp2(labelled):
    c = labelled
    assert c("TS.MGET", "FILTER", "zone=A") == (
        b"*2\r\n*3\r\n$1\r\na\r\n*0\r\n*2\r\n:2\r\n+5E-1\r\n*3\r\n$1\r\nc\r\n*0\r\n*2\r\n:1\r\n+3\r\n")
    assert c("TS.MGET", "WITHLABELS", "FILTER", "type=t", "zone!=A") == (
        b"*1\r\n*3\r\n$1\r\nb\r\n*2\r\n*2\r\n$4\r\nzone\r\n$1\r\nB\r\n"
        b"*2\r\n$4\r\ntype\r\n$1\r\nt\r\n*2\r\n:1\r\n+2\r\n")
    assert c("TS.MGET", "SELECTED_LABELS", "type", "FILTER", "zone=A") == (
        b"*2\r\n*3\r\n$1\r\na\r\n*1\r\n*2\r\n$4\r\ntype\r\n$1\r\nt\r\n*2\r\n:2\r\n+5E-1\r\n"
        b"*3\r\n$1\r\nc\r\n*1\r\n*2\r\n$4\r\ntype\r\n$-1\r\n*2\r\n:1\r\n+3\r\n")
    assert c("TS.MGET", "WITHLABELS", "SELECTED_LABELS", "x", "FILTER", "zone=A") == (
        b"-ERR TSDB: cannot accept WITHLABELS and SELECT_LABELS together\r\n")
    assert c("TS.MGET", "WITHLABELS", "zone=A") == (
        b"-ERR wrong number of arguments for 'ts.mget' command\r\n")
    assert c("TS.MGET", "FILTER", "zone") == b"-ERR TSDB: failed parsing labels\r\n"
    assert c("TS.MGET", "FILTER", "zone!=A") == (
        b"-ERR TSDB: please provide at least one matcher\r\n")


def test_mget_resp3(labelled, c3):
    assert c3("TS.MGET", "WITHLABELS", "FILTER", "zone=B") == (
        b"%1\r\n$1\r\nb\r\n*2\r\n%2\r\n$4\r\nzone\r\n$1\r\nB\r\n$4\r\ntype\r\n$1\r\nt\r\n"
        b"*2\r\n:1\r\n,2\r\n")


def test_mrange_shapes(labelled, c3):
    c = labelled
    assert c("TS.MRANGE", "-", "+", "FILTER", "zone=B") == (
        b"*1\r\n*3\r\n$1\r\nb\r\n*0\r\n*1\r\n*2\r\n:1\r\n+2\r\n")
    assert c3("TS.MRANGE", "-", "+", "AGGREGATION", "max", "10", "FILTER", "zone=B") == (
        b"%1\r\n$1\r\nb\r\n*3\r\n%0\r\n%1\r\n$11\r\naggregators\r\n*1\r\n$3\r\nmax\r\n"
        b"*1\r\n*2\r\n:0\r\n,2\r\n")
    assert c("TS.MREVRANGE", "-", "+", "COUNT", "1", "FILTER", "zone=A") == (
        b"*2\r\n*3\r\n$1\r\na\r\n*0\r\n*1\r\n*2\r\n:2\r\n+5E-1\r\n"
        b"*3\r\n$1\r\nc\r\n*0\r\n*1\r\n*2\r\n:1\r\n+3\r\n")


def test_mrange_groupby(labelled, c3):
    c = labelled
    assert c("TS.MRANGE", "-", "+", "WITHLABELS", "FILTER", "type=t", "GROUPBY", "type",
             "REDUCE", "max") == (
        b"*1\r\n*3\r\n$6\r\ntype=t\r\n*3\r\n*2\r\n$4\r\ntype\r\n$1\r\nt\r\n"
        b"*2\r\n$11\r\n__reducer__\r\n$3\r\nmax\r\n*2\r\n$10\r\n__source__\r\n$3\r\na,b\r\n"
        b"*2\r\n*2\r\n:1\r\n+2\r\n*2\r\n:2\r\n+5E-1\r\n")
    assert c3("TS.MRANGE", "-", "+", "FILTER", "type=t", "GROUPBY", "type", "REDUCE",
              "sum") == (
        b"%1\r\n$6\r\ntype=t\r\n*4\r\n%0\r\n%1\r\n$8\r\nreducers\r\n*1\r\n$3\r\nsum\r\n"
        b"%1\r\n$7\r\nsources\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n"
        b"*2\r\n*2\r\n:1\r\n,3\r\n*2\r\n:2\r\n,0.5\r\n")
    assert c("TS.MRANGE", "-", "+", "FILTER", "type=t", "GROUPBY", "type", "REDUCE",
             "first") == b"-ERR TSDB: Invalid reducer type\r\n"
    assert c("TS.MRANGE", "-", "+", "FILTER", "type=t", "GROUPBY", "type") == (
        b"-ERR wrong number of arguments for 'ts.mrange' command\r\n")
    assert c("TS.MRANGE", "-", "+", "GROUPBY", "type", "REDUCE", "max", "FILTER", "type=t") == (
        b"-ERR TSDB: GROUPBY should always come after filter\r\n")


def test_info_shapes(c, c3, db):
    db.create("src", labels={"a": "1"}, duplicate_policy="last")
    db.create("dst")
    db.createrule("src", "dst", "avg", 60000)
    c("TS.ADD", "src", "5", "1")
    out = c("TS.INFO", "src", "DEBUG")
    assert out.startswith(b"*28\r\n+totalSamples\r\n:1\r\n+memoryUsage\r\n")
    assert b"+duplicatePolicy\r\n+last\r\n+labels\r\n*1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n" in out
    assert (b"+sourceKey\r\n$-1\r\n+rules\r\n*1\r\n*4\r\n$3\r\ndst\r\n:60000\r\n+AVG\r\n:0\r\n"
            in out)
    out3 = c3("TS.INFO", "src")
    assert out3.startswith(b"%14\r\n+totalSamples\r\n:1\r\n")
    assert b"+labels\r\n%1\r\n$1\r\na\r\n$1\r\n1\r\n" in out3
    assert b"+rules\r\n%1\r\n$3\r\ndst\r\n*3\r\n:60000\r\n+AVG\r\n:0\r\n" in out3
    assert b"+sourceKey\r\n$3\r\nsrc\r\n" in c("TS.INFO", "dst")


def test_queryindex(labelled, c3):
    assert labelled("TS.QUERYINDEX", "zone=A") == b"*2\r\n$1\r\na\r\n$1\r\nc\r\n"
    assert c3("TS.QUERYINDEX", "zone=(A,B)", "type=t") == b"~2\r\n$1\r\na\r\n$1\r\nb\r\n"
