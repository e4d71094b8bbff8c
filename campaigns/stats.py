"""The statistics of the campaign page's A/B test and time to first audio: pure functions, no Django.

A rate is shown with its Wilson score interval (good at small counts and near 0 or 1, where the
plain normal interval is not). Two variants' rates are compared with the two-sided two-proportion
z-test on the pooled proportion, and only once each side has MIN_TRIALS trials: below that the
normal approximation the test rests on is too rough to call anything significant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z_95 = 1.959963984540054  # the standard normal's 97.5th percentile: a two-sided 95% interval
ALPHA = 0.05
MIN_TRIALS = 30


@dataclass(frozen=True)
class Rate:
    successes: int
    trials: int
    low: float  # the Wilson interval, as fractions
    high: float

    @property
    def value(self) -> float | None:
        return self.successes / self.trials if self.trials else None

    @property
    def label(self) -> str:
        """30.0% (18.1–45.4%), or — with no trials."""
        if not self.trials:
            return "—"
        return f"{self.value:.1%} ({self.low:.1%}–{self.high:.1%})"


def wilson_interval(successes: int, trials: int, *, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of `successes` out of `trials`; (0, 1) when there are no trials."""
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError(f"{successes} successes out of {trials} trials is not a proportion")
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z / (1 + z2 / trials) * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    # Exact at the ends (the formula lands a rounding error off 0 or 1 there).
    return (0.0 if successes == 0 else max(0.0, centre - half)), (1.0 if successes == trials else min(1.0, centre + half))


def rate(successes: int, trials: int) -> Rate:
    return Rate(successes, trials, *wilson_interval(successes, trials))


@dataclass(frozen=True)
class Comparison:
    z: float | None
    p_value: float | None
    enough: bool  # both sides have MIN_TRIALS trials
    significant: bool  # enough, and p below the level it was tested at

    @property
    def verdict(self) -> str:
        if not self.enough:
            return "too few calls to tell"
        if self.p_value is None:
            return "no calls to compare"
        return f"{'significant' if self.significant else 'not significant'} (p = {self.p_value:.3g})"


def two_proportion_test(x1: int, n1: int, x2: int, n2: int, *, alpha: float = ALPHA,
                        min_trials: int = MIN_TRIALS) -> Comparison:
    """Two-sided z-test of x1/n1 against x2/n2 on the pooled proportion."""
    for x, n in ((x1, n1), (x2, n2)):
        if n < 0 or not 0 <= x <= n:
            raise ValueError(f"{x} successes out of {n} trials is not a proportion")
    enough = min(n1, n2) >= min_trials
    if n1 == 0 or n2 == 0:
        return Comparison(None, None, enough, False)
    pooled = (x1 + x2) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if spread == 0:  # both all successes or all failures: no difference to test
        return Comparison(0.0, 1.0, enough, False)
    z = (x1 / n1 - x2 / n2) / spread
    p_value = math.erfc(abs(z) / math.sqrt(2))  # two-sided: 2 × (1 − Φ(|z|))
    return Comparison(z, p_value, enough, enough and p_value < alpha)


# --- distributions of milliseconds -----------------------------------------------------------------

def percentile(histogram: dict[int, int], q: float) -> int | None:
    """The nearest-rank `q`-th percentile (0 < q ≤ 100) of values counted as {value: count}; None if empty."""
    if not 0 < q <= 100:
        raise ValueError("a percentile is above 0 and at most 100")
    total = sum(histogram.values())
    if not total:
        return None
    rank = math.ceil(q / 100 * total)
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value
    raise AssertionError("unreachable: the ranks add up to the total")


def binned(histogram: dict[int, int], edges: list[int]) -> list[int]:
    """Counts of values below edges[0], in [edges[i], edges[i+1]), and at or above edges[-1]."""
    counts = [0] * (len(edges) + 1)
    for value, n in histogram.items():
        counts[sum(value >= edge for edge in edges)] += n
    return counts
