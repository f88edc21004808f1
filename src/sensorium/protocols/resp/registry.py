"""The command table: ``@command`` registers a handler with its Redis metadata.

Handlers are ``(session, args) -> reply`` where ``args[0]`` is the command name as sent.
Arity follows Redis (``n`` exact, ``-n`` at least n, counting the name); the table also
answers ``COMMAND``/``COMMAND INFO``/``COMMAND DOCS`` so clients can introspect the server.

The table is filled once, when the command modules are imported by ``session``; it is not
changed afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .session import Session

Handler = Callable[["Session", list[str]], Any]


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One command: name (lower case), arity, flags and key positions as ``COMMAND`` shows."""

    name: str
    arity: int
    handler: Handler
    flags: tuple[str, ...] = ()
    first_key: int = 0
    last_key: int = 0
    step: int = 0
    group: str = "generic"
    summary: str = ""
    categories: tuple[str, ...] = field(default=())

    def arity_ok(self, argc: int) -> bool:
        return argc == self.arity if self.arity >= 0 else argc >= -self.arity


COMMANDS: dict[str, CommandSpec] = {}


def command(name: str, arity: int, *, flags: tuple[str, ...] = (), keys: tuple[int, int, int]
            = (0, 0, 0), group: str = "generic", summary: str = "",
            categories: tuple[str, ...] = ()) -> Callable[[Handler], Handler]:
    """Registers the decorated handler as ``name`` (case-insensitive)."""

    def register(handler: Handler) -> Handler:
        lname = name.lower()
        assert lname not in COMMANDS, f"BUG: {name} registered twice"
        COMMANDS[lname] = CommandSpec(lname, arity, handler, flags, *keys, group=group,
                                      summary=summary, categories=categories)
        return handler

    return register


def lookup(name: str) -> CommandSpec | None:
    spec = COMMANDS.get(name)
    if spec is None:
        spec = COMMANDS.get(name.lower())
    return spec
