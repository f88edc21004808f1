import gzip

import pytest

from sensorium.protocols._errors import RequestError
from sensorium.protocols.http.body import decode


def test_identity_passes_through():
    assert decode(b"abc", "", 10) == b"abc"
    assert decode(b"abc", "identity", 10) == b"abc"


def test_gzip():
    assert decode(gzip.compress(b"x" * 1000), "gzip", 1000) == b"x" * 1000
    assert decode(gzip.compress(b"a") + gzip.compress(b"b"), "GZIP", 10) == b"ab"


def check(body, encoding, limit, status, text):
    with pytest.raises(RequestError) as err:
        decode(body, encoding, limit)
    assert err.value.status == status
    assert text in err.value.message


def test_gzip_bomb_stops_at_the_limit():
    check(gzip.compress(b"\0" * 10_000_000), "gzip", 1000, 413, "larger than")


def test_gzip_garbage():
    check(b"not gzip at all", "gzip", 1000, 400, "gzip")
    check(gzip.compress(b"x" * 1000)[:-12], "gzip", 10_000, 400, "gzip")


def test_unknown_encoding():
    check(b"x", "br", 10, 415, "br")
