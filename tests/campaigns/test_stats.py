"""The A/B test's statistics against values worked out independently (textbook formulas, scipy's
binomtest Wilson interval and chi-square test without continuity correction)."""

import pytest

from campaigns import stats
from campaigns.experiments import choose_variant


@pytest.mark.parametrize("successes, trials, low, high", [
    (5, 10, 0.2365931, 0.7634069),
    (0, 10, 0.0, 0.2775328),
    (10, 10, 0.7224672, 1.0),
    (81, 263, 0.2552885, 0.3662096),
])
def test_the_wilson_interval_matches_known_values(successes, trials, low, high):
    assert stats.wilson_interval(successes, trials) == (pytest.approx(low, abs=1e-7), pytest.approx(high, abs=1e-7))


def test_no_trials_tell_nothing_and_impossible_counts_are_refused():
    assert stats.wilson_interval(0, 0) == (0.0, 1.0)
    assert stats.rate(0, 0).label == "—"
    for successes, trials in [(11, 10), (-1, 10), (0, -1)]:
        with pytest.raises(ValueError):
            stats.wilson_interval(successes, trials)
    assert stats.rate(5, 10).label == "50.0% (23.7%–76.3%)"


@pytest.mark.parametrize("x1, n1, x2, n2, z, p", [
    (45, 100, 30, 100, 2.1908902, 0.0284597),
    (120, 400, 150, 400, -2.2430886, 0.0248911),
    (50, 100, 50, 100, 0.0, 1.0),
])
def test_the_two_proportion_test_matches_known_values(x1, n1, x2, n2, z, p):
    result = stats.two_proportion_test(x1, n1, x2, n2)
    assert result.z == pytest.approx(z, abs=1e-6) and result.p_value == pytest.approx(p, abs=1e-6)
    assert result.enough and result.significant == (p < 0.05)


def test_a_difference_is_called_only_at_its_level_and_with_enough_calls():
    assert not stats.two_proportion_test(45, 100, 30, 100, alpha=0.01).significant  # p = 0.028
    small = stats.two_proportion_test(9, 10, 1, 10)  # p < 0.001, but ten calls a side
    assert small.p_value < 0.001 and not small.enough and not small.significant
    assert small.verdict == "too few calls to tell"
    assert stats.two_proportion_test(45, 100, 30, 100).verdict == "significant (p = 0.0285)"
    assert stats.two_proportion_test(40, 40, 30, 30).p_value == 1.0  # both all answered: nothing to tell
    assert stats.two_proportion_test(0, 0, 1, 30).p_value is None
    with pytest.raises(ValueError):
        stats.two_proportion_test(31, 30, 1, 30)


def test_percentiles_are_nearest_rank_over_counted_values():
    values = {100: 5, 200: 4, 900: 1}  # ten values
    assert [stats.percentile(values, q) for q in (10, 50, 90, 99, 100)] == [100, 100, 200, 900, 900]
    assert stats.percentile({}, 50) is None
    with pytest.raises(ValueError):
        stats.percentile(values, 0)
    assert stats.binned({100: 2, 250: 1, 600: 3, 9000: 1}, [250, 500, 1000]) == [2, 1, 3, 1]


def test_a_variant_is_chosen_by_weight_and_the_same_for_the_same_key():
    weights = [(7, 1), (8, 3)]
    chosen = [choose_variant(f"42:{contact}", weights) for contact in range(10_000)]
    assert chosen == [choose_variant(f"42:{contact}", weights) for contact in range(10_000)]
    assert 0.23 < chosen.count(7) / len(chosen) < 0.27  # a hash, not a coin: the same share every run
    assert choose_variant("any", [(9, 5)]) == 9
    for bad in ([], [(1, 0), (2, 1)]):
        with pytest.raises(ValueError):
            choose_variant("42:1", bad)
