"""Tiers = re-aggregated raw: rollup destinations against a pure-Python reference (hypothesis).

A random scenario drives one raw series ``r`` through the public API (``add`` with and without
ON_DUPLICATE, columnar ``madd`` mixed with a noise series, range deletes, checkpoints,
close/reopen), with rules ``r → t1:<agg>`` (bucket b1) for every aggregator and
``t1:* → t2:<agg>`` (bucket b2 = k·b1) built either before the data or later (backfill). A
plain dict ``ts → value`` models the raw series (RedisTimeSeries duplicate policies), and
``reference`` computes each aggregator over it with no numpy, no states and no merging.

Closed buckets follow RedisTimeSeries (reference §7): a tier's latest bucket stays open until a
sample of a later bucket *arrives* in its source. For ``t1`` the arrivals are raw samples, so
its open bucket is the bucket of the highest timestamp ever written (a delete does not reopen
anything). For ``t2`` the arrivals are ``t1`` buckets being closed with data, in order or by a
late revision. Every bucket ``range(dest)`` reports must equal the reference over the raw
series' current samples, and every closed bucket with data must be reported. Cases the
properties once caught have minimal reproductions at the end.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sensorium
from sensorium.errors import DuplicateSample

AGGS = ("avg", "sum", "min", "max", "range", "count", "first", "last",
        "std.p", "std.s", "var.p", "var.s", "twa")
POLICIES = ("last", "first", "min", "max", "sum", "block")
WINDOW = (0, 2**62)  # what "-" and "+" mean


# -- the reference ---------------------------------------------------------------------------
def bucket_of(ts: int, dur: int, align: int) -> int:
    align %= dur
    return (ts - align) // dur * dur + align


def reference(agg: str, series: list[tuple[int, float]], start: int, dur: int,
              window: tuple[int, int] = WINDOW) -> float | None:
    """``agg`` over the samples of ``series`` (sorted) in bucket [start, start+dur) ∩ window.

    twa follows RedisTimeSeries (reference §4): the trapezoid area over the window, extended to
    the window edges towards the nearest samples outside the window, over its length. None for
    a bucket without samples.
    """
    lo, hi = max(start, window[0]), min(start + dur - 1, window[1])
    inside = [(t, v) for t, v in series if lo <= t <= hi]
    if not inside:
        return None
    vs = [v for _, v in inside]
    n = len(vs)
    mean = sum(vs) / n
    m2 = sum((v - mean) ** 2 for v in vs)
    simple = {
        "avg": mean, "sum": sum(vs), "min": min(vs), "max": max(vs),
        "range": max(vs) - min(vs), "count": float(n), "first": vs[0], "last": vs[-1],
        "var.p": m2 / n, "std.p": math.sqrt(m2 / n),
        "var.s": m2 / (n - 1) if n > 1 else 0.0,
        "std.s": math.sqrt(m2 / (n - 1)) if n > 1 else 0.0,
    }
    if agg != "twa":
        return simple[agg]
    ws, we = max(start, window[0]), min(start + dur, window[1])
    prev = [(t, v) for t, v in series if t < inside[0][0]]
    nxt = [(t, v) for t, v in series if t > inside[-1][0]]
    pairs = zip(inside, inside[1:], strict=False)
    area = sum((t1 - t0) * (v0 + v1) / 2 for (t0, v0), (t1, v1) in pairs)
    (ft, fv), (lt, lv) = inside[0], inside[-1]
    begin, end = ft, lt
    if prev and ft > ws:
        pt, pv = prev[-1]
        at_ws = pv + (fv - pv) * (ws - pt) / (ft - pt)
        area += (ft - ws) * (at_ws + fv) / 2
        begin = ws
    if nxt and lt < we:
        nt, nv = nxt[0]
        at_we = lv + (nv - lv) * (we - lt) / (nt - lt)
        area += (we - lt) * (lv + at_we) / 2
        end = we
    return area / (end - begin) if end > begin else mean


def stamp(bucket: int) -> int:
    """A tier stores a bucket that starts before 0 at 0 (RedisTimeSeries' normalisation)."""
    return max(bucket, 0)


def buckets(series: list[tuple[int, float]], dur: int, align: int) -> list[int]:
    return sorted({bucket_of(t, dur, align) for t, _ in series})


def close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def assert_rows(got: list[tuple[int, float]], want: dict[int, float], what: str) -> None:
    assert [t for t, _ in got] == sorted(want), f"{what}: buckets {got} != {want}"
    for t, v in got:
        assert close(v, want[t]), f"{what}: bucket {t} is {v}, reference {want[t]}"


def check_raw_aggregation(db: sensorium.Database, series: list[tuple[int, float]], dur: int,
                          align: int, window: tuple[int, int]) -> None:
    """``range(r, lo, hi, AGGREGATION a dur, ALIGN align)`` for every aggregator."""
    for a in AGGS:
        lo, hi = window
        got = db.range("r", lo, hi, aggregation_type=a, bucket_size_msec=dur, align=align)
        want = {b: reference(a, series, b, dur, (lo, hi))
                for b in buckets([s for s in series if lo <= s[0] <= hi], dur, align)}
        assert_rows(got, want, f"range(r, {lo}, {hi}, {a}, {dur}, align={align})")


# -- the raw-series model ----------------------------------------------------------------------
@dataclass
class RawModel:
    """One raw series under RedisTimeSeries write semantics (no retention)."""

    policy: str
    samples: dict[int, float] = field(default_factory=dict)

    def write(self, ts: int, v: float, policy: str | None = None) -> bool:
        """Applies one row; False if BLOCK refused it."""
        if ts not in self.samples:
            self.samples[ts] = v
            return True
        old = self.samples[ts]
        p = policy or self.policy
        if p == "block":
            return False
        self.samples[ts] = {"last": v, "first": old, "min": min(old, v), "max": max(old, v),
                            "sum": old + v}[p]
        return True

    def delete(self, lo: int, hi: int) -> int:
        doomed = [t for t in self.samples if lo <= t <= hi]
        for t in doomed:
            del self.samples[t]
        return len(doomed)

    def sorted(self) -> list[tuple[int, float]]:
        return sorted(self.samples.items())


# -- scenarios ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    policy: str
    b1: int
    k: int
    align1: int
    align2_steps: int
    rules_at: int
    ops: list[tuple]
    aggs1: tuple[str, ...] = AGGS
    aggs2: tuple[str, ...] = AGGS

    @property
    def b2(self) -> int:
        return self.b1 * self.k

    @property
    def align2(self) -> int:
        return self.align1 + self.align2_steps * self.b1


values = st.integers(-12, 12).map(lambda i: i / 4)  # exact in binary: sums are exact


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    b1 = draw(st.sampled_from([1, 2, 3, 5]))
    k = draw(st.sampled_from([2, 3, 4]))
    ts = st.integers(0, b1 * k * 7)
    op = st.one_of(
        st.tuples(st.just("add"), ts, values, st.sampled_from([None, *POLICIES])),
        st.tuples(st.just("madd"), st.lists(
            st.tuples(st.sampled_from(["r", "r", "r", "n"]), ts, values), min_size=1,
            max_size=8)),
        st.tuples(st.just("delete"), ts, st.integers(0, b1 * k * 2)),
        st.tuples(st.just("checkpoint")),
        st.tuples(st.just("reopen")),
    )
    ops = draw(st.lists(op, max_size=16))
    return Scenario(
        policy=draw(st.sampled_from(POLICIES)), b1=b1, k=k,
        align1=draw(st.integers(0, b1 - 1)), align2_steps=draw(st.integers(0, k - 1)),
        rules_at=draw(st.integers(0, len(ops))), ops=ops,
        aggs1=tuple(draw(st.lists(st.sampled_from(AGGS), min_size=1, max_size=4, unique=True))),
        aggs2=tuple(draw(st.lists(st.sampled_from(AGGS), min_size=1, max_size=4, unique=True))))


class Run:
    """Plays a scenario against a real database in a temporary directory and the model."""

    def __init__(self, sc: Scenario, tiers: int) -> None:
        self.sc, self.tiers = sc, tiers
        self.dir = tempfile.mkdtemp(prefix="sensorium-prop-")
        self.db = self._open()
        self.db.create("r", duplicate_policy=sc.policy)
        self.db.create("n")
        for a in sc.aggs1:
            self.db.create(f"t1:{a}")
        for a in sc.aggs2:
            self.db.create(f"t2:{a}")
        self.model = RawModel(sc.policy)
        self.hw1: int | None = None  # highest raw timestamp the t1 stream has seen arrive
        self.hw2: int | None = None  # highest t1 bucket the t2 stream has seen arrive
        self.rules = False

    def _open(self) -> sensorium.Database:
        return sensorium.open(self.dir, background=False, fsync="none")

    def close(self) -> None:
        try:
            self.db.close()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def play(self) -> None:
        for i, op in enumerate(self.sc.ops):
            if i == self.sc.rules_at:
                self.create_rules()
            self.apply(op)
            self.track()
        if self.sc.rules_at >= len(self.sc.ops):
            self.create_rules()

    def create_rules(self) -> None:
        sc = self.sc
        for a in sc.aggs1:
            self.db.createrule("r", f"t1:{a}", a, sc.b1, sc.align1)
        if self.tiers > 1:
            for i, a in enumerate(sc.aggs2):  # each t2 reads some t1: the stream is what counts
                self.db.createrule(f"t1:{sc.aggs1[i % len(sc.aggs1)]}", f"t2:{a}", a, sc.b2,
                                   sc.align2)
        self.rules = True
        # A backfilled stream has seen every current sample arrive.
        self.hw1 = max(self.model.samples, default=None)
        self.hw2 = None
        self.track()

    def track(self) -> None:
        """t2's arrivals: t1 buckets that are closed and hold data after this operation."""
        if not self.rules or self.hw1 is None:
            return
        sc = self.sc
        open1 = bucket_of(self.hw1, sc.b1, sc.align1)
        closed = [b for b in buckets(self.model.sorted(), sc.b1, sc.align1) if b < open1]
        if closed:
            self.hw2 = max(closed[-1], self.hw2 if self.hw2 is not None else closed[-1])

    def arrived(self, ts: int) -> None:
        if self.rules:
            self.hw1 = ts if self.hw1 is None else max(self.hw1, ts)

    def apply(self, op: tuple) -> None:
        db, model = self.db, self.model
        kind = op[0]
        if kind == "add":
            _, ts, v, on_dup = op
            try:
                db.add("r", ts, v, on_duplicate=on_dup)
            except DuplicateSample:
                assert not model.write(ts, v, on_dup), "engine refused a legal write"
            else:
                assert model.write(ts, v, on_dup), "engine took a BLOCKed duplicate"
                self.arrived(ts)
        elif kind == "madd":
            rows = op[1]
            res = db.madd([k for k, _, _ in rows], [t for _, t, _ in rows],
                          [v for _, _, v in rows])
            for (key, ts, v), status in zip(rows, res.status.tolist(), strict=True):
                if key != "r":
                    assert status in (0, 5)
                    continue
                ok = model.write(ts, v)
                assert (status == 0) == ok, f"row {(ts, v)}: status {status}, model {ok}"
                if ok:
                    self.arrived(ts)
        elif kind == "delete":
            _, lo, span = op
            assert db.delete("r", lo, lo + span) == model.delete(lo, lo + span)
        elif kind == "checkpoint":
            db.checkpoint()
        elif kind == "reopen":
            db.close()
            self.db = self._open()

    # -- checks ---------------------------------------------------------------------------
    def check_raw(self) -> None:
        got = self.db.range("r", "-", "+")
        assert got == self.model.sorted()

    def check_tier1(self) -> None:
        sc = self.sc
        series = self.model.sorted()
        all_b = buckets(series, sc.b1, sc.align1)
        open1 = bucket_of(self.hw1, sc.b1, sc.align1) if self.hw1 is not None else None
        closed = [b for b in all_b if open1 is not None and b < open1]
        for a in sc.aggs1:
            want = {stamp(b): reference(a, series, b, sc.b1) for b in closed}
            assert_rows(self.db.range(f"t1:{a}", "-", "+"), want, f"t1:{a}")
            # LATEST adds the open bucket, computed from the raw samples in it.
            want = {stamp(b): reference(a, series, b, sc.b1) for b in closed}
            if open1 in all_b:
                want[stamp(open1)] = reference(a, series, open1, sc.b1)
            assert_rows(self.db.range(f"t1:{a}", "-", "+", latest=True), want,
                        f"t1:{a} LATEST")

    def check_tier1_merged(self) -> None:
        """A tier aggregated over multiples of its bucket merges states: exact answers."""
        sc = self.sc
        if self.hw1 is None:
            return
        open1 = bucket_of(self.hw1, sc.b1, sc.align1)
        visible = [(t, v) for t, v in self.model.sorted() if t < open1]
        for a in AGGS:
            got = self.db.range(f"t1:{sc.aggs1[0]}", "-", "+", aggregation_type=a,
                                bucket_size_msec=sc.b2, align=sc.align2)
            want = {b: reference(a, visible, b, sc.b2)
                    for b in buckets(visible, sc.b2, sc.align2)}
            assert_rows(got, want, f"range(t1:{sc.aggs1[0]}, {a}, {sc.b2})")

    def check_tier2(self) -> None:
        sc = self.sc
        series = self.model.sorted()
        open2 = bucket_of(self.hw2, sc.b2, sc.align2) if self.hw2 is not None else None
        closed = [b for b in buckets(series, sc.b2, sc.align2)
                  if open2 is not None and b < open2]
        for a in sc.aggs2:
            want = {stamp(b): reference(a, series, b, sc.b2) for b in closed}
            assert_rows(self.db.range(f"t2:{a}", "-", "+"), want, f"t2:{a}")


def run_scenario(sc: Scenario, tiers: int) -> None:
    run = Run(sc, tiers)
    try:
        run.play()
        run.check_raw()
        run.check_tier1()
        run.check_tier1_merged()
        if tiers > 1:
            run.check_tier2()
        run.db.close()  # a clean restart shows the same
        run.db = run._open()
        run.check_raw()
        run.check_tier1()
        if tiers > 1:
            run.check_tier2()
    finally:
        run.close()


SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(scenarios())
def test_one_tier_equals_reaggregated_raw(sc):
    run_scenario(sc, tiers=1)


@SETTINGS
@given(scenarios())
def test_chained_tiers_equal_reaggregated_raw(sc):
    run_scenario(sc, tiers=2)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 60), values), max_size=30),
    st.sampled_from([1, 2, 3, 7, 10]),
    st.integers(0, 9),
    st.integers(0, 70),
    st.integers(0, 70),
)
def test_raw_range_aggregation_equals_reference(samples, dur, align, lo, span):
    d = tempfile.mkdtemp(prefix="sensorium-prop-")
    try:
        with sensorium.open(d, background=False, fsync="none") as db:
            model = RawModel("last")
            db.create("r", duplicate_policy="last")
            if samples:
                db.madd(["r"] * len(samples), [t for t, _ in samples], [v for _, v in samples])
            for t, v in samples:
                model.write(t, v)
            series = model.sorted()
            assert db.range("r", "-", "+") == series
            check_raw_aggregation(db, series, dur, align, (lo, lo + span))
            check_raw_aggregation(db, series, dur, align, WINDOW)
    finally:
        shutil.rmtree(d, ignore_errors=True)


# -- cases the properties found (fixed while this suite was written: now regressions) ----------
@pytest.fixture
def db(tmp_path):
    with sensorium.open(str(tmp_path / "data"), background=False) as database:
        yield database


def chained(db: sensorium.Database) -> None:
    for key in ("r", "t1", "t2"):
        db.create(key)
    db.createrule("r", "t1", "sum", 10)
    db.createrule("t1", "t2", "sum", 100)


def test_late_write_into_a_t1_bucket_before_t2_has_an_open_bucket(db):
    """Was: ValueError from min() of an empty bucket list in rollup._recompute."""
    chained(db)
    db.add("r", 15, 1.0)
    db.add("r", 5, 1.0)  # late: t1 [0,10) is revised; t2 has no open bucket yet
    assert db.range("t1", "-", "+") == [(0, 1.0)]
    # LATEST: t2's open bucket plus t1's open one (sample 15), i.e. every raw sample in it
    assert db.range("t2", "-", "+", latest=True) == [(0, 2.0)]


def test_database_with_such_a_write_in_its_log_opens(tmp_path):
    """Was: replay raised the same ValueError, so after kill -9 the database never opened."""
    live = sensorium.open(str(tmp_path / "live"), background=False)
    try:
        chained(live)
        live.add("r", 15, 1.0)
        live.add("r", 5, 1.0)
        shutil.copytree(str(tmp_path / "live"), str(tmp_path / "crashed"))  # = kill -9
    finally:
        live.close()
    with sensorium.open(str(tmp_path / "crashed"), background=False) as db:
        assert db.range("r", "-", "+") == [(5, 1.0), (15, 1.0)]
        assert db.range("t1", "-", "+") == [(0, 1.0)]


def test_t2_bucket_filled_by_a_late_write_is_not_lost(db):
    """Was: a t1 bucket revised after t2's open bucket never reached t2."""
    chained(db)
    for ts in (5, 250, 120, 350):  # 120 is late: t1 [120,130) is revised, t2 is open at 0
        db.add("r", ts, 1.0)
    assert db.range("r", "-", "+") == [(5, 1.0), (120, 1.0), (250, 1.0), (350, 1.0)]
    assert db.range("t2", "-", "+") == [(0, 1.0), (100, 1.0)]


def test_twa_window_interpolates_towards_samples_outside_it(db):
    """Was 3.5: the window was cut at the last sample inside it."""
    for ts, v in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (10, 1.0)]:
        db.add("g", ts, v)
    assert db.range("g", "-", "+", aggregation_type="twa", bucket_size_msec=10)[0] == (0, 4.2)
    # reference §4 [V]: value at 5 interpolated between (3, 8) and (10, 1) → 4.9
    assert db.range("g", 0, 5, aggregation_type="twa", bucket_size_msec=10) == [(0, 4.9)]


def test_tier_bucket_starting_before_epoch_is_stored_at_0(db):
    """Was: stored at -5, where no range reached it."""
    db.create("r")
    db.create("t1")
    db.createrule("r", "t1", "avg", 10, 5)  # buckets [-5, 5), [5, 15), …
    for ts in (1, 20, 40):
        db.add("r", ts, float(ts))
    assert db.range("t1", "-", "+") == [(0, 1.0), (15, 20.0)]


def test_newest_closed_twa_bucket_uses_the_next_sample(db):
    """The open bucket's first sample ends the newest closed twa bucket, with or without
    LATEST, as the next sample ends a raw twa bucket."""
    db.create("r")
    db.create("t1")
    db.createrule("r", "t1", "twa", 10)
    for ts, v in [(0, 0.0), (5, 10.0), (15, 0.0)]:
        db.add("r", ts, v)
    raw = db.range("r", "-", "+", aggregation_type="twa", bucket_size_msec=10)
    # area 0..5 = 25; 5..10 ends at 5, interpolated toward (15, 0): 37.5; 62.5 / 10
    assert raw[0] == (0, 6.25)
    assert db.range("t1", "-", "+", latest=True)[0] == (0, 6.25)
    assert db.range("t1", "-", "+") == [(0, 6.25)]


def test_backfilled_t2_includes_a_t1_bucket_starting_before_0(db):
    """Was: the backfill read t1's closed states from 0 and missed the bucket at -5."""
    for key in ("r", "t1", "t2"):
        db.create(key)
    db.createrule("r", "t1", "sum", 10, 5)  # buckets [-5, 5), [5, 15), …
    db.add("r", 1, 1.0)
    db.add("r", 12, 1.0)  # closes t1 [-5, 5)
    db.createrule("t1", "t2", "sum", 20, 5)  # backfill: t2 [-15, 5) holds t1 [-5, 5)
    db.add("r", 30, 1.0)  # closes t1 [5, 15) → t2 closes [-15, 5), stored at 0
    assert db.range("t1", "-", "+") == [(0, 1.0), (5, 1.0)]
    assert db.range("t2", "-", "+") == [(0, 1.0)]


def test_twa_tier_of_a_tier_ends_its_newest_bucket_with_the_chains_open_sample(db):
    """Was 0: the next sample after t2's newest closed bucket sits in t1's open bucket (the
    t1 bucket that followed was emptied by a delete), and only t2's own open bucket was
    looked at."""
    for key in ("r", "t1", "t2"):
        db.create(key)
    db.createrule("r", "t1", "max", 2)
    db.createrule("t1", "t2", "twa", 6)
    for ts, v in [(0, 0.0), (17, 0.0), (31, 2.0)]:
        db.add("r", ts, v)
    db.delete("r", 16, 28)
    raw = db.range("r", "-", "+", aggregation_type="twa", bucket_size_msec=6)
    assert raw[0] == (0, pytest.approx(6 / 31))  # (0, 0) toward (31, 2) over [0, 6)
    assert db.range("t2", "-", "+") == [raw[0]]
