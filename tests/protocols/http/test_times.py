import pytest

from sensorium.protocols.http import times

NOW = 1_700_000_000_000


@pytest.mark.parametrize(("text", "ms"), [
    ("500ms", 500), ("90s", 90_000), ("5min", 300_000), ("5m", 300_000), ("24h", 86_400_000),
    ("1d", 86_400_000), ("1w", 604_800_000), ("1mo", 30 * 86_400_000),
    ("1y", 365 * 86_400_000), ("1h30m", 5_400_000), ("1.5h", 5_400_000), ("60000", 60_000),
    (" 1H ", 3_600_000),
])
def test_durations(text, ms):
    assert times.parse_duration_ms(text) == ms


def test_period_m_is_a_month():
    assert times.parse_period_ms("1m") == times.MONTH_MS
    assert times.parse_period_ms("1min") == times.MINUTE_MS
    assert times.parse_period_ms("1w") == 7 * times.DAY_MS


@pytest.mark.parametrize("text", ["", "h", "1x", "-1h", "0s", "1h 2", "abc", "1hh"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        times.parse_duration_ms(text)


@pytest.mark.parametrize(("text", "ms"), [
    ("1700000000000", 1_700_000_000_000), ("now", NOW), ("NOW", NOW), ("-24h", NOW - 86_400_000),
    ("now-1h", NOW - 3_600_000), ("now+5m", NOW + 300_000), ("-", 0), ("+", 2**62),
    ("2023-11-14T22:13:20Z", 1_700_000_000_000), ("2023-11-14T22:13:20.5Z", 1_700_000_000_500),
    ("2023-11-14T23:13:20+01:00", 1_700_000_000_000), ("2023-11-14T22:13:20", 1_700_000_000_000),
    ("2023-11-14", 1_699_920_000_000),
])
def test_times(text, ms):
    assert times.parse_time(text, NOW) == ms


def test_relative_time_never_before_epoch():
    assert times.parse_time("-100y", NOW) == 0


@pytest.mark.parametrize("text", ["yesterday", "1969-12-31T00:00:00Z", "-x", "12:00", "1e3"])
def test_bad_times(text):
    with pytest.raises(ValueError):
        times.parse_time(text, NOW)
