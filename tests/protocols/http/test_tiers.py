from sensorium.protocols.http.tiers import Tier, align_window, choose_source

MIN, HOUR = 60_000, 3_600_000
TIERS = [Tier("s:1m", MIN, 0, 0), Tier("s:1h", HOUR, 0, 0)]


def test_coarsest_dividing_tier_wins():
    assert choose_source("s", 0, TIERS, "avg", 2 * HOUR) == "s:1h"
    assert choose_source("s", 0, TIERS, "max", 30 * MIN) == "s:1m"
    assert choose_source("s", 0, TIERS, "avg", MIN) == "s:1m"


def test_raw_when_no_tier_divides():
    assert choose_source("s", 0, TIERS, "avg", 30_000) == "s"
    assert choose_source("s", 0, TIERS, "avg", 90_000) == "s"
    assert choose_source("s", 0, [], "avg", HOUR) == "s"


def test_percentiles_need_raw_samples():
    assert choose_source("s", 0, TIERS, "p95", HOUR) == "s"


def test_alignment_must_match():
    assert choose_source("s", 0, [Tier("s:1h+", HOUR, 30 * MIN, 0)], "avg", HOUR) == "s"
    assert choose_source("s", 0, [Tier("s:1h+", HOUR, 30 * MIN, 0)], "avg", HOUR,
                         30 * MIN) == "s:1h+"


def test_tier_must_keep_as_much_history_as_raw():
    short = [Tier("s:1h", HOUR, 0, 86_400_000)]
    assert choose_source("s", 0, short, "avg", HOUR) == "s"  # raw keeps forever
    assert choose_source("s", 3_600_000, short, "avg", HOUR) == "s:1h"
    assert choose_source("s", 7 * 86_400_000, short, "avg", HOUR) == "s"


def test_align_window_covers_whole_buckets():
    assert align_window(90_000, 150_000, MIN) == (60_000, 179_999)
    assert align_window(60_000, 119_999, MIN) == (60_000, 119_999)
    assert align_window(10, 20, MIN, 5) == (5, 60_004)
