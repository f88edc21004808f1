"""Tier policies: named sets of tiers that every matching series gets (write path, set-up).

A policy says what InfluxDB buckets and TimescaleDB continuous-aggregate policies say,
once for many series: keep raw samples this long, and keep these downsampled tiers this
long. The seed's default::

    raw 7 d → 1 min avg/min/max/sum/count, 1 y → 1 h avg/min/max, 5 y → 1 day avg/min/max, ∞

A series whose labels match a policy's filter (RedisTimeSeries filter syntax) gets, for
each tier, a destination series ``<key>:<tier name>`` (labels ``__tier__`` and
``__source__``) and a rule feeding it from the previous tier (raw for the first), so tiers
chain and each is built exactly from the next finer one. A tier keeps whole bucket states,
so every listed aggregator (and every other one but percentiles) is answered exactly from
it; the destination shows the first one. A percentile in the list makes the tier keep
sketches. Policies apply to series when they are created, in the order the policies were
set; the first matching policy wins.

Everything a policy does is logged as ordinary records (series, rules, retention changes),
so replay needs no policy logic; the policies themselves are logged and checkpointed with
shard 0. Applying is idempotent: a series that already has a tier's destination keeps it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidArgument
from ..model import parse_aggregator, parse_duration_ms, percentile_of
from .index import parse_filters

if TYPE_CHECKING:
    from .db import Engine

TIER_LABEL = "__tier__"
SOURCE_LABEL = "__source__"
CHUNK_SERIES = 1_000  # series per commit when a policy is applied to existing series
FOREVER = 2**62  # a retention of 0, for comparisons
_FEW = 256  # fewer new series than this are matched label by label

Progress = Callable[[int, int], None]  # (series done, series in all)

# The seed's default tiers (``preset = "seed"``): raw 7 days → 1 min (1 year) → 1 h (5 years)
# → 1 day (forever).
PRESETS: dict[str, dict[str, Any]] = {
    "seed": {
        "raw_retention": "7d",
        "tiers": [
            {"name": "1m", "bucket": "1min", "retention": "365d",
             "aggregators": ["avg", "min", "max", "sum", "count"]},
            {"name": "1h", "bucket": "1h", "retention": "1825d",
             "aggregators": ["avg", "min", "max"]},
            {"name": "1d", "bucket": "1d", "retention": 0, "aggregators": ["avg", "min", "max"]},
        ],
    },
}


@dataclass(frozen=True, slots=True)
class TierSpec:
    name: str
    bucket_ms: int
    retention_ms: int = 0  # 0 = forever
    aggregators: tuple[str, ...] = ("avg", "min", "max")
    align_ms: int = 0

    @property
    def shape(self) -> tuple[int, int, str, bool]:
        """What the stored tier is made of: changing it means rebuilding the tier."""
        return (self.bucket_ms, self.align_ms, self.aggregators[0], self.sketched)

    @property
    def sketched(self) -> bool:
        return any(percentile_of(a) is not None for a in self.aggregators)


@dataclass(frozen=True, slots=True)
class TierPolicy:
    name: str
    filters: tuple[str, ...]
    tiers: tuple[TierSpec, ...]
    raw_retention_ms: int | None = None  # None = leave the series' own retention

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "filters": list(self.filters),
                "raw_retention_ms": self.raw_retention_ms,
                "tiers": [{"name": t.name, "bucket_ms": t.bucket_ms,
                           "retention_ms": t.retention_ms, "aggregators": list(t.aggregators),
                           "align_ms": t.align_ms} for t in self.tiers]}


def parse_policy(doc: Mapping[str, Any]) -> TierPolicy:
    """A policy from a config table or JSON body; durations as ms or text (``"7d"``).

    Keys: ``name``, ``filter`` (a list of label filters; at least one ``l=v``),
    ``raw_retention`` (optional), ``tiers``: a list of ``{name?, bucket, retention?,
    aggregators?, align?}`` from finest to coarsest; each bucket a multiple of the previous;
    or ``preset = "seed"`` for the seed's raw retention and tiers (keys given win).

    Raises:
        InvalidArgument: naming the offending key.
    """
    doc = dict(doc)
    preset = doc.pop("preset", None)
    if preset is not None:
        if preset not in PRESETS:
            raise InvalidArgument(f"policy: unknown preset {preset!r}; known: {sorted(PRESETS)}")
        doc = {**PRESETS[preset], **doc}
    known = {"name", "filter", "filters", "raw_retention", "raw_retention_ms", "tiers"}
    unknown = set(doc) - known
    if unknown:
        raise InvalidArgument(f"policy: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
    name = doc.get("name")
    if not isinstance(name, str) or not name or ":" in name or "/" in name:
        raise InvalidArgument("policy: name must be a non-empty string without ':' or '/'")
    filters = doc.get("filter", doc.get("filters"))
    if isinstance(filters, str):
        filters = [filters]
    if not isinstance(filters, list) or not filters or \
            not all(isinstance(f, str) for f in filters):
        raise InvalidArgument(f"policy {name}: filter must be a list of label filters "
                              "(e.g. [\"type=temperature\"])")
    parse_filters(filters)  # raises on bad syntax or without a positive matcher
    raw = doc.get("raw_retention", doc.get("raw_retention_ms"))
    raw_ms = None if raw is None else _duration(raw, f"policy {name}: raw_retention", zero=True)
    tiers_doc = doc.get("tiers")
    if not isinstance(tiers_doc, list) or not tiers_doc:
        raise InvalidArgument(f"policy {name}: tiers must be a non-empty list")
    tiers = [_tier(t, name, i) for i, t in enumerate(tiers_doc)]
    names = [t.name for t in tiers]
    if len(set(names)) != len(names):
        raise InvalidArgument(f"policy {name}: tier names must be unique, got {names}")
    for finer, coarser in zip(tiers, tiers[1:], strict=False):
        if coarser.bucket_ms <= finer.bucket_ms or coarser.bucket_ms % finer.bucket_ms or \
                (coarser.align_ms - finer.align_ms) % finer.bucket_ms:
            raise InvalidArgument(
                f"policy {name}: tier {coarser.name} must have a bucket that is a larger "
                f"multiple of tier {finer.name}'s (it is built from it), with its alignment")
        if (coarser.retention_ms or FOREVER) < (finer.retention_ms or FOREVER):
            raise InvalidArgument(
                f"policy {name}: tier {coarser.name} must keep at least as long as tier "
                f"{finer.name} (a coarser tier is what remains when the finer one expires)")
    return TierPolicy(name, tuple(filters), tuple(tiers), raw_ms)


def _tier(doc: Any, policy: str, i: int) -> TierSpec:
    where = f"policy {policy}: tiers[{i}]"
    if not isinstance(doc, Mapping):
        raise InvalidArgument(f"{where} must be a table")
    known = {"name", "bucket", "bucket_ms", "retention", "retention_ms", "aggregators",
             "align", "align_ms"}
    unknown = set(doc) - known
    if unknown:
        raise InvalidArgument(f"{where}: unknown key(s) {sorted(unknown)}")
    bucket = doc.get("bucket", doc.get("bucket_ms"))
    if bucket is None:
        raise InvalidArgument(f"{where}: bucket is required (e.g. \"1m\")")
    bucket_ms = _duration(bucket, f"{where}.bucket")
    retention = doc.get("retention", doc.get("retention_ms", 0))
    retention_ms = _duration(retention, f"{where}.retention", zero=True)
    aggs = doc.get("aggregators", ["avg", "min", "max"])
    if isinstance(aggs, str):
        aggs = [aggs]
    if not isinstance(aggs, list) or not aggs:
        raise InvalidArgument(f"{where}.aggregators must be a non-empty list")
    try:
        aggregators = tuple(parse_aggregator(a) for a in aggs)
    except InvalidArgument:
        raise InvalidArgument(f"{where}.aggregators: unknown aggregator in {aggs}") from None
    align = doc.get("align", doc.get("align_ms", 0))
    align_ms = 0 if align in (0, "0") else _duration(align, f"{where}.align")
    tier_name = doc.get("name") or (bucket if isinstance(bucket, str) else f"{bucket_ms}ms")
    if not isinstance(tier_name, str) or ":" in tier_name:
        raise InvalidArgument(f"{where}.name must be a string without ':'")
    return TierSpec(tier_name, bucket_ms, retention_ms, aggregators, align_ms)


def _duration(value: Any, where: str, zero: bool = False) -> int:
    if isinstance(value, bool):
        raise InvalidArgument(f"{where}: not a duration: {value!r}")
    if isinstance(value, int):
        ms = value
    elif isinstance(value, str):
        if zero and value.strip() in ("0", "forever", "inf"):
            return 0
        try:
            ms = parse_duration_ms(value)
        except ValueError as exc:
            raise InvalidArgument(f"{where}: {exc}") from None
    else:
        raise InvalidArgument(f"{where}: not a duration: {value!r}")
    if ms < 0 or (ms == 0 and not zero):
        raise InvalidArgument(f"{where}: must be positive")
    return int(ms)


def dest_key(key: str, tier: TierSpec) -> str:
    return f"{key}:{tier.name}"


# -- applying (the engine's lock is held; everything is logged as ordinary records) --------
def governed(engine: Engine, sids: np.ndarray) -> dict[str, np.ndarray]:
    """Which of ``sids`` (raw series) each policy governs: the first policy matching wins."""
    out: dict[str, np.ndarray] = {}
    left = np.asarray(sids, np.int64)
    if engine.rules:  # tiers are never governed themselves
        left = left[~np.isin(left, np.fromiter(engine.rules, np.int64, len(engine.rules)))]
    for policy in engine.policies.values():
        if len(left) == 0:
            break
        matchers = parse_filters(list(policy.filters))
        if len(left) <= _FEW:  # a few new series: test their labels, not the whole index
            labels = [engine.registry.get(s).labels for s in left.tolist()]
            mine = left[[all(m.matches(lb) for m in matchers) for lb in labels]]
        else:
            mine = left[np.isin(left, engine.registry.index.select(matchers))]
        if len(mine):
            out[policy.name] = mine
            left = left[~np.isin(left, mine)]
    return out


def apply(engine: Engine, policy: TierPolicy, sids: np.ndarray,
          progress: Progress | None = None) -> int:
    """Gives ``sids`` (governed by ``policy``) its raw retention and missing tiers, in
    commits of ``CHUNK_SERIES`` series (new tiers are backfilled from the finer data).
    Returns how many tier series were created."""
    created = 0
    total = len(sids)
    for at in range(0, total, CHUNK_SERIES):
        chunk = np.asarray(sids[at:at + CHUNK_SERIES], np.int64)
        with engine.batch():
            created += _apply_chunk(engine, policy, chunk)
        if progress is not None:
            progress(min(at + CHUNK_SERIES, total), total)
    return created


def _apply_chunk(engine: Engine, policy: TierPolicy, sids: np.ndarray) -> int:
    reg = engine.registry
    sids = sids[reg.alive[sids]]
    if policy.raw_retention_ms is not None:
        change = sids[reg.retention_ms[sids] != policy.raw_retention_ms]
        if len(change):
            engine.alter_many(change, retention_ms=policy.raw_retention_ms)
    keys = [reg.key(s) for s in sids.tolist()]
    created = 0
    finer = keys  # the source of each series' next tier
    for tier in policy.tiers:
        dests = [dest_key(k, tier) for k in keys]
        new = [i for i, d in enumerate(dests) if d not in reg.by_key]
        if new:
            engine.create_many(
                [dests[i] for i in new],
                [{TIER_LABEL: tier.name, SOURCE_LABEL: keys[i]} for i in new],
                retention_ms=tier.retention_ms,
                shards=[int(reg.shard[sids[i]]) for i in new], apply_policies=False)
            engine.create_rules([finer[i] for i in new], [dests[i] for i in new],
                                tier.aggregators[0], tier.bucket_ms, tier.align_ms,
                                sketch=tier.sketched)
            created += len(new)
        finer = dests
    return created


def retire_tiers(engine: Engine, policy: TierPolicy, names: Sequence[str],
                 sids: np.ndarray) -> None:
    """Deletes the tiers ``names`` of ``sids``, coarsest first (so no tier built on a
    deleted one is turned into plain samples first)."""
    reg = engine.registry
    keys = [reg.key(s) for s in np.asarray(sids).tolist() if reg.alive[s]]
    for tier in reversed(policy.tiers):
        if tier.name not in names:
            continue
        for at in range(0, len(keys), CHUNK_SERIES):
            with engine.batch():
                for key in keys[at:at + CHUNK_SERIES]:
                    dest = dest_key(key, tier)
                    if dest in reg.by_key:
                        engine.delete_series(dest)


def changes(old: TierPolicy, new: TierPolicy) -> tuple[list[str], list[TierSpec]]:
    """Tiers of ``old`` to delete (gone, reshaped, or built on a reshaped one) and tiers of
    ``new`` whose retention alone changed."""
    old_by = {t.name: t for t in old.tiers}
    rebuild = False
    retire: list[str] = []
    retention: list[TierSpec] = []
    for i, tier in enumerate(new.tiers):
        before = old_by.get(tier.name)
        same_place = i < len(old.tiers) and old.tiers[i].name == tier.name
        if rebuild or before is None or not same_place or before.shape != tier.shape:
            rebuild = True
            if before is not None:
                retire.append(tier.name)
        elif before.retention_ms != tier.retention_ms:
            retention.append(tier)
    new_names = {t.name for t in new.tiers}
    retire.extend(t.name for t in old.tiers if t.name not in new_names)
    return retire, retention
