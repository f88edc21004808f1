"""Fixtures: a Session on a real database, fed raw RESP, answering raw bytes (no sockets)."""

from collections.abc import Iterator

import pytest

import sensorium
from sensorium.protocols.resp.codec import RequestParser
from sensorium.protocols.resp.session import ServerState, Session


class Client:
    """Sends commands through the parser and a Session, returns the reply bytes."""

    def __init__(self, state: ServerState) -> None:
        self.session = Session(state, "127.0.0.1:1", "127.0.0.1:2")
        self.parser = RequestParser()
        self.closed = False

    def raw(self, data: bytes) -> bytes:
        cmds, err = self.parser.feed(data)
        out, close = self.session.execute(cmds)
        if err is not None:
            out += b"-ERR Protocol error: " + str(err).encode() + b"\r\n"
            close = True
        self.closed = close
        return out

    def __call__(self, *args: str) -> bytes:
        return self.pipeline([args])

    def pipeline(self, cmds: list[tuple[str, ...]] | list[list[str]]) -> bytes:
        return self.raw(self.frames(cmds))

    @staticmethod
    def frames(cmds: list[tuple[str, ...]] | list[list[str]]) -> bytes:
        data = b""
        for args in cmds:
            data += b"*%d\r\n" % len(args)
            for a in args:
                b = a.encode("utf-8", "surrogateescape")
                data += b"$%d\r\n%s\r\n" % (len(b), b)
        return data


@pytest.fixture
def db(tmp_path) -> Iterator[sensorium.Database]:
    with sensorium.open(str(tmp_path / "data"), background=False) as database:
        yield database


@pytest.fixture
def state(db) -> ServerState:
    return ServerState(db)


@pytest.fixture
def c(state) -> Client:
    return Client(state)


@pytest.fixture
def c3(state) -> Client:
    client = Client(state)
    client("HELLO", "3")
    return client
