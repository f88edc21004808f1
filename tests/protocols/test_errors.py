import pytest

from sensorium import errors
from sensorium.protocols._errors import RequestError, http_error, influx_error


@pytest.mark.parametrize(("exc", "status"), [
    (errors.SeriesNotFound("k"), 404), (errors.SeriesExists("k"), 409),
    (errors.RuleError("x"), 409), (errors.InvalidArgument("x"), 400),
    (errors.DuplicateSample(), 400), (errors.OutOfRetention(), 400),
    (errors.EngineClosed(), 503), (errors.LockedError("/d"), 503),
    (errors.CorruptionError("/d", 3, "crc"), 500), (RuntimeError("boom"), 500),
    (RequestError(413, "too big"), 413),
])
def test_status(exc, status):
    assert http_error(exc)[0] == status
    assert influx_error(exc)[0] == status


def test_shapes():
    assert http_error(errors.SeriesNotFound("k")) == (
        404, {"error": "the key does not exist", "key": "k"})
    assert http_error(RequestError(400, "bad", field="from")) == (
        400, {"error": "bad", "field": "from"})
    status, body = influx_error(RequestError(400, "partial write", line=3))
    assert (status, body["code"], body["message"], body["error"], body["line"]) == (
        400, "invalid", "partial write", "partial write", 3)


def test_internal_errors_do_not_leak_details():
    assert http_error(RuntimeError("secret path"))[1] == {"error": "internal error"}
