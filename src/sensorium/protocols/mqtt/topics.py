"""MQTT topic templates → subscription filters, series keys and labels (write path, step 0; pure).

A template names topic levels: ``factory/{building}/{zone}/{sensor_id}/{type}``. Each
``{name}`` is one whole level; literal levels must match exactly; a final ``#`` lets any
number of further levels follow (they are ignored). The template becomes the subscription
filter ``factory/+/+/+/+`` (``+`` per placeholder).

Series key and labels (the scheme JSON ingest over HTTP uses, so every front end sees the same
series): the key is the ``key`` template filled from the topic's placeholders, by default
``{sensor_id}``, exactly the ``sensor_id`` of ``POST /api/ingest/batch``. A reading's own
``sensor_id`` (in the payload) takes the place of the topic's. Every placeholder becomes a
label, except the one a single-placeholder key names (``sensor_id`` is a key, not a label, as
over HTTP); static labels from the configuration come first, the topic's override them.

No sockets, no engine: the subscriber calls :meth:`Route.resolve` once per distinct topic and
caches the answer.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PLACEHOLDER = re.compile(r"^\{([^{}]*)\}$")
SENSOR_ID = "sensor_id"


class TopicError(ValueError):
    """A topic that does not fit its template; ``str()`` says which level and why."""


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed topic template. Build with :meth:`parse`.

    Attributes:
        text: the template as written.
        levels: per level, the placeholder name or None for a literal level.
        literals: per level, the literal text ("" for placeholders).
        tail: the template ends with ``#`` (more levels may follow).
    """

    text: str
    levels: tuple[str | None, ...]
    literals: tuple[str, ...]
    tail: bool = False

    @classmethod
    def parse(cls, text: str) -> Template:
        """Raises ValueError naming the bad level (a wildcard, a malformed or repeated
        placeholder, ``#`` not at the end)."""
        if not text:
            raise ValueError("a topic template must not be empty")
        parts = text.split("/")
        tail = parts[-1] == "#"
        if tail:
            parts = parts[:-1]
        names: list[str | None] = []
        literals: list[str] = []
        for i, part in enumerate(parts, 1):
            m = _PLACEHOLDER.match(part)
            if m:
                name = m.group(1)
                if not _NAME.match(name):
                    raise ValueError(f"template {text!r}: level {i}: placeholder {part!r} "
                                     "must be {name} with a letter, digits or _")
                if name in names:
                    raise ValueError(f"template {text!r}: placeholder {{{name}}} is repeated")
                names.append(name)
                literals.append("")
            elif "{" in part or "}" in part:
                raise ValueError(f"template {text!r}: level {i} ({part!r}): a placeholder "
                                 "must be a whole level")
            elif part in ("+", "#") or "+" in part or "#" in part:
                raise ValueError(f"template {text!r}: level {i}: use a {{name}} instead of "
                                 f"{part!r} (only a final # is allowed)")
            else:
                names.append(None)
                literals.append(part)
        return cls(text, tuple(names), tuple(literals), tail)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n in self.levels if n is not None)

    @property
    def filter(self) -> str:
        """The MQTT subscription filter: ``+`` per placeholder, ``#`` kept."""
        levels = ["+" if n is not None else lit for n, lit in zip(self.levels, self.literals,
                                                                   strict=True)]
        return "/".join([*levels, "#"] if self.tail else levels)

    def match(self, topic: str) -> dict[str, str]:
        """The placeholder values of ``topic``; raises TopicError when it does not fit."""
        parts = topic.split("/")
        n = len(self.levels)
        if len(parts) < n or (len(parts) > n and not self.tail) or (
                self.tail and len(parts) == n):
            want = f"more than {n}" if self.tail else str(n)
            raise TopicError(f"topic {topic!r} has {len(parts)} levels, template "
                             f"{self.text!r} wants {want}")
        fields: dict[str, str] = {}
        for i, (name, lit) in enumerate(zip(self.levels, self.literals, strict=True)):
            part = parts[i]
            if name is None:
                if part != lit:
                    raise TopicError(f"topic {topic!r}: level {i + 1} is {part!r}, template "
                                     f"{self.text!r} wants {lit!r}")
            elif not part:
                raise TopicError(f"topic {topic!r}: level {i + 1} ({{{name}}}) is empty")
            else:
                fields[name] = part
        return fields


@dataclass(frozen=True, slots=True)
class Resolved:
    """What a topic means: the series key (None when the payload must name it) and the labels
    of series created from it."""

    key: str | None
    labels: dict[str, str]
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class Route:
    """A subscription's mapping of topics to series.

    Attributes:
        template: the topic template.
        key: the key template, ``{placeholder}`` references (default ``{sensor_id}``).
        labels: static labels of every series this route creates.
    """

    template: Template
    key: str = "{" + SENSOR_ID + "}"
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        refs = self.key_names
        if not refs and not self.key:
            raise ValueError("the key template must not be empty")
        unknown = [r for r in refs if r not in self.template.names and r != SENSOR_ID]
        if unknown:
            raise ValueError(f"key {self.key!r} names {{{unknown[0]}}}, which template "
                             f"{self.template.text!r} does not have")

    @property
    def key_names(self) -> tuple[str, ...]:
        try:
            return tuple(f for _, f, _, _ in string.Formatter().parse(self.key) if f is not None)
        except ValueError as exc:
            raise ValueError(f"key {self.key!r}: {exc}") from None

    @property
    def key_is_field(self) -> str | None:
        """The placeholder name when the key is exactly one ``{name}``, else None."""
        m = _PLACEHOLDER.match(self.key)
        return m.group(1) if m else None

    def key_for(self, fields: Mapping[str, str]) -> str | None:
        """The key from these placeholder values, or None if one it needs is missing."""
        name = self.key_is_field
        if name is not None:
            return fields.get(name)
        try:
            return self.key.format_map(fields)
        except KeyError:
            return None

    def resolve(self, topic: str) -> Resolved:
        """Key and labels for ``topic``; raises TopicError when it does not fit."""
        fields = self.template.match(topic)
        own = self.key_is_field
        labels = {**self.labels, **{k: v for k, v in fields.items() if k != own}}
        return Resolved(self.key_for(fields), labels, fields)
