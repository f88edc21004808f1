"""Label index: postings (name=value → series ids) and matcher evaluation (read path).

Filters follow RedisTimeSeries (reference §9); every matcher of a query is ANDed:

    l=v       label l equals v              l!=v      l is not v (series without l included)
    l=        series has no label l         l!=       series has label l, any value
    l=(a,b)   l equals a or b               l!=(a,b)  l is neither a nor b (without l included)

A :class:`Matcher` stores all six forms as ``value-of-l ∈ values`` (op ``=``) or ``∉`` (op
``!=``), where a missing label reads as ``""``; so ``l=`` is ``Matcher(l, "=", ("",))`` and
``l!=`` is ``Matcher(l, "!=", ("",))``. As in Prometheus, a label whose value is ``""`` is the
same as no label: it is kept by :meth:`LabelIndex.labels` but never entered in the postings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from ..errors import InvalidArgument, SeriesNotFound

_NO_MATCHER = "please provide at least one matcher"
_UNPARSABLE = "failed parsing labels"
_ABSENT = ("",)  # the values of ``l=`` / ``l!=``: a missing label reads as ""
_NO_LABELS: Mapping[str, str] = MappingProxyType({})  # labels of a sid that is not indexed
# ``l=`` / ``l!=`` subtract each of label l's postings from the candidates (set operations in
# C, ~0.3 µs of Python per posting) unless l has more than this many distinct values per
# candidate (l is an id, a serial number, …); then looking l up in each candidate's labels
# (~0.8 µs each: one cache miss per dict) is cheaper; both costs measured at 100k series.
_LOOKUP_VALUES_PER_CANDIDATE = 2


@dataclass(frozen=True, slots=True)
class Matcher:
    """One filter term: the value of label ``name`` is (op ``=``) or is not (op ``!=``) one
    of ``values``. ``values`` is ``("",)`` for the absence/presence forms, otherwise a
    non-empty tuple of non-empty strings."""

    name: str
    op: str
    values: tuple[str, ...]

    def __post_init__(self) -> None:
        values = self.values
        ok_values = isinstance(values, tuple) and (values == _ABSENT or (values and all(values)))
        if not self.name or self.op not in ("=", "!=") or not ok_values:
            raise InvalidArgument(_UNPARSABLE)

    @property
    def positive(self) -> bool:
        """True for ``l=v`` and ``l=(a,b)``: the forms that can drive a query from postings."""
        return self.op == "=" and self.values != _ABSENT

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether one series with ``labels`` passes this matcher (no index needed)."""
        return (labels.get(self.name, "") in self.values) == (self.op == "=")

    def __str__(self) -> str:
        if self.values == _ABSENT:
            return f"{self.name}{self.op}"
        if len(self.values) == 1:
            return f"{self.name}{self.op}{self.values[0]}"
        return f"{self.name}{self.op}({','.join(self.values)})"


def parse_filter(expr: str) -> Matcher:
    """Parses one RedisTimeSeries filter expression (``l=v``, ``l!=v``, ``l=``, ``l!=``,
    ``l=(a,b)``, ``l!=(a,b)``). The operator is the first ``=`` (``!=`` if a ``!`` precedes
    it); the value is everything after it, spaces and further ``=`` included. Quotes are not
    stripped (RedisTimeSeries 1.12 does not either).

    Raises:
        InvalidArgument: "failed parsing labels" without ``=``, with an empty label name, an
            unclosed ``(``, or an empty list item such as ``l=(a,)``.
    """
    eq = expr.find("=")
    if eq < 0:
        raise InvalidArgument(_UNPARSABLE)
    negated = eq > 0 and expr[eq - 1] == "!"
    name, value = expr[: eq - 1 if negated else eq], expr[eq + 1 :]
    values: tuple[str, ...] = (value,)
    if value.startswith("("):
        if not value.endswith(")") or len(value) < 3:
            raise InvalidArgument(_UNPARSABLE)
        values = tuple(value[1:-1].split(","))
        if not all(values):
            raise InvalidArgument(_UNPARSABLE)
    return Matcher(name, "!=" if negated else "=", values)


def parse_filters(exprs: Sequence[str]) -> list[Matcher]:
    """Parses the filter expressions of one query (a bare ``str`` counts as one expression).

    Raises:
        InvalidArgument: "failed parsing labels" for a bad expression (checked first), then
            "please provide at least one matcher" if none is ``l=v`` or ``l=(a,b)``.
    """
    matchers = [parse_filter(e) for e in ([exprs] if isinstance(exprs, str) else exprs)]
    return _require_positive(matchers)


def matchers_from_dict(labels: Mapping[str, str]) -> list[Matcher]:
    """``{"zone": "A", "type": "t"}`` → the matchers ``zone=A type=t`` (values taken as is,
    so ``""`` means "label absent").

    Raises:
        InvalidArgument: as :func:`parse_filters`.
    """
    return _require_positive([Matcher(str(k), "=", (str(v),)) for k, v in labels.items()])


def _require_positive(matchers: list[Matcher]) -> list[Matcher]:
    if not any(m.positive for m in matchers):
        raise InvalidArgument(_NO_MATCHER)
    return matchers


class LabelIndex:
    """Labels of every live series and their postings ``name → value → {sid}``.

    Not thread-safe: the database holds its lock around every call, reads included, as it
    does for the series registry. No method hands out internal state: :meth:`labels` returns
    a copy and :meth:`select` a new array.
    """

    def __init__(self) -> None:
        self._postings: dict[str, dict[str, set[int]]] = {}
        self._labels: dict[int, dict[str, str]] = {}

    def __len__(self) -> int:
        return len(self._labels)

    def __contains__(self, sid: object) -> bool:
        return sid in self._labels

    def add(self, sid: int, labels: Mapping[str, str]) -> None:
        """Indexes series ``sid`` with ``labels`` (copied). Re-adding a known sid replaces its
        labels, so log replay may add the same series twice."""
        if sid in self._labels:
            self.remove(sid)
        own = dict(labels)
        self._labels[sid] = own
        postings = self._postings
        for name, value in own.items():
            if not value:
                continue
            by_value = postings.get(name)
            if by_value is None:
                by_value = postings[name] = {}
            sids = by_value.get(value)
            if sids is None:
                by_value[value] = {sid}
            else:
                sids.add(sid)

    def add_many(self, sids: Sequence[int], labels: Sequence[Mapping[str, str]]) -> None:
        """``add`` for many new series: postings grow once per label pair, not per series."""
        known = [sid for sid in sids if sid in self._labels]
        for sid in known:
            self.remove(sid)
        grouped: dict[tuple[str, str], list[int]] = {}
        for sid, own in zip(sids, labels, strict=True):
            own = dict(own)
            self._labels[sid] = own
            for pair in own.items():
                if pair[1]:
                    bucket = grouped.get(pair)
                    if bucket is None:
                        grouped[pair] = [sid]
                    else:
                        bucket.append(sid)
        postings = self._postings
        for (name, value), members in grouped.items():
            postings.setdefault(name, {}).setdefault(value, set()).update(members)

    def remove(self, sid: int) -> None:
        """Drops series ``sid`` from the index; an unknown sid is ignored (idempotent)."""
        own = self._labels.pop(sid, None)
        for name, value in (own or {}).items():
            if not value:
                continue
            by_value = self._postings[name]
            sids = by_value[value]
            sids.discard(sid)
            if not sids:  # keep label_names()/label_values() exact without a scan
                del by_value[value]
                if not by_value:
                    del self._postings[name]

    def set_labels(self, sid: int, labels: Mapping[str, str]) -> None:
        """Replaces all labels of ``sid`` (TS.ALTER … LABELS); indexes it if unknown."""
        self.add(sid, labels)

    def labels(self, sid: int) -> dict[str, str]:
        """A copy of the labels of ``sid``. Raises SeriesNotFound if it is not indexed."""
        try:
            return dict(self._labels[sid])
        except KeyError:
            raise SeriesNotFound(str(sid)) from None

    def label_names(self, sids: Iterable[int] | None = None) -> list[str]:
        """Sorted names carried (with a non-empty value) by any series, or by any of ``sids``
        (sids that are not indexed, such as dropped series, are skipped)."""
        if sids is None:
            return sorted(self._postings)
        return sorted({n for s in sids for n, v in self._labels.get(s, _NO_LABELS).items() if v})

    def label_values(self, name: str, sids: Iterable[int] | None = None) -> list[str]:
        """Sorted non-empty values of label ``name`` over all series, or over ``sids``."""
        if sids is None:
            return sorted(self._postings.get(name, ()))
        return sorted({v for s in sids if (v := self._labels.get(s, _NO_LABELS).get(name, ""))})

    def select(self, matchers: Iterable[Matcher]) -> npt.NDArray[np.int32]:
        """Sorted unique sids of the series that pass every matcher (AND).

        Positive matchers intersect postings, smallest first; the negative ones then narrow
        that candidate set. Only without any positive matcher (which :func:`parse_filters`
        refuses) do negative matchers start from every series; no matchers select all.
        """
        matchers = list(matchers)
        cand = self._positive_candidates([m for m in matchers if m.positive])
        for m in matchers:
            if not cand:
                break
            if not m.positive:
                cand = self._narrow(cand, m)
        out = np.fromiter(cand, np.int32, len(cand))
        out.sort()
        return out

    def _positive_candidates(self, matchers: list[Matcher]) -> set[int]:
        if not matchers:
            return set(self._labels)
        sets: list[set[int]] = []
        for m in matchers:
            by_value = self._postings.get(m.name, {})
            found = [s for v in m.values if (s := by_value.get(v))]
            if not found:
                return set()
            sets.append(found[0] if len(found) == 1 else set().union(*found))
        sets.sort(key=len)
        return sets[0].intersection(*sets[1:])  # always a new set: postings stay untouched

    def _narrow(self, cand: set[int], m: Matcher) -> set[int]:
        by_value = self._postings.get(m.name, {})
        if m.values != _ABSENT:  # l!=v, l!=(a,b): drop the postings of the listed values
            return _minus(cand, [by_value[v] for v in m.values if v in by_value])
        want_present = m.op == "!="
        if len(by_value) > _LOOKUP_VALUES_PER_CANDIDATE * len(cand):
            labels = self._labels
            return {s for s in cand if bool(labels[s].get(m.name)) == want_present}
        if want_present:  # l!=: the candidates minus those without l
            return cand - _minus(set(cand), by_value.values())
        return _minus(cand, by_value.values())  # l=


def _minus(cand: set[int], postings: Iterable[set[int]]) -> set[int]:
    """``cand`` (owned by the caller, may be updated in place) minus every posting, walking
    the smaller side of each pair: O(sum of min(|cand|, |posting|))."""
    for sids in postings:
        if len(sids) < len(cand):
            cand.difference_update(sids)
        else:
            cand = cand - sids
    return cand
