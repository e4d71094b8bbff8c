"""A/B tests: a campaign's contacts split between its variants (campaigns.models.Variant), and what
each variant's calls came to, with the time to first audio of its calls.

Assignment is deterministic: a contact's variant is drawn from a hash of the campaign's and the
contact's ids, by weight, at its first call, and stored on the contact, so every retry runs the same
variant even if the weights change in between (new contacts follow the new weights). Each call keeps
the variant it ran (`Call.variant`), which is what the figures count.

The figures: per variant, the answer rate over ended calls, and each disposition's rate over the
answered calls, each with its Wilson interval; every other variant is tested against the first (its
control) with the two-proportion z-test, at ALPHA divided by the number of comparisons of each rate
(Bonferroni), so that three arms do not find a difference by chance more often than two.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, F, RestrictedError

from campaigns import stats
from campaigns.models import Call, Campaign, Contact, Variant
from campaigns.rollups import ANSWERED, ENDED

FIRST_AUDIO_BIN_MS = 10  # the resolution of the percentiles
FIRST_AUDIO_EDGES = [250, 500, 1000, 2000, 4000]  # the page's histogram: under 250 ms, …, 4 s and over
MAX_DISPOSITIONS = 8  # the most frequent ones shown


def choose_variant(key: str, weights: list[tuple[int, int]]) -> int:
    """The variant (of (id, weight) pairs, weights ≥ 1) that `key` falls in: the same for the same key and
    weights, and a share of all keys close to each variant's weight over the sum."""
    if not weights or any(weight < 1 for _, weight in weights):
        raise ValueError("choosing a variant needs variants, each with a weight of at least 1")
    point = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % sum(w for _, w in weights)
    for variant_id, weight in weights:
        if point < weight:
            return variant_id
        point -= weight
    raise AssertionError("unreachable: the point is below the sum of the weights")


def assign(campaign: Campaign, contacts: list[Contact]) -> dict[int, int | None]:
    """Each claimed contact's variant id (None: the campaign has none); a first assignment is stored
    on the contact, in the dispatcher's transaction."""
    weights = list(Variant.objects.filter(campaign=campaign).order_by("pk").values_list("pk", "weight"))
    chosen, new = {}, defaultdict(list)
    for contact in contacts:
        if contact.variant_id or not weights:
            chosen[contact.pk] = contact.variant_id
        else:
            chosen[contact.pk] = choose_variant(f"{campaign.pk}:{contact.pk}", weights)
            new[chosen[contact.pk]].append(contact.pk)
    for variant_id, contact_ids in new.items():
        Contact.objects.filter(pk__in=contact_ids).update(variant_id=variant_id)
    return chosen


# --- the figures ------------------------------------------------------------------------------------

@dataclass
class FirstAudio:
    """Time to first audio of some calls: percentiles in ms (None: no call measured) and a small histogram."""

    calls: int
    p50: int | None
    p90: int | None
    p99: int | None
    bins: list[tuple[str, int, int]]  # (label, calls, percent of the largest bin for the bar)

    @classmethod
    def of(cls, histogram: dict[int, int]) -> FirstAudio:
        counts = stats.binned(histogram, FIRST_AUDIO_EDGES)
        peak = max(counts) or 1
        labels = _bin_labels(FIRST_AUDIO_EDGES)
        return cls(sum(histogram.values()), *(stats.percentile(histogram, q) for q in (50, 90, 99)),
                   [(label, n, round(100 * n / peak)) for label, n in zip(labels, counts, strict=True)])


def _bin_labels(edges: list[int]) -> list[str]:
    def ms(value: int) -> str:
        return f"{value // 1000} s" if value % 1000 == 0 else f"{value} ms"

    return ([f"under {ms(edges[0])}"] + [f"{ms(low)}–{ms(high)}" for low, high in itertools.pairwise(edges)]
            + [f"{ms(edges[-1])} and over"])


@dataclass
class Arm:
    variant: Variant
    share: int  # percent of new contacts its weight gets
    answer: stats.Rate
    dispositions: dict[str, stats.Rate]  # over answered calls
    first_audio: FirstAudio
    # Against the control (None for the control itself): the answer rate's test, and each disposition's.
    answer_test: stats.Comparison | None = None
    disposition_tests: dict[str, stats.Comparison] = field(default_factory=dict)


@dataclass
class Experiment:
    arms: list[Arm]
    dispositions: list[str]
    alpha: float  # the level each comparison is tested at
    min_trials: int
    first_audio: FirstAudio  # every call of the campaign, with or without a variant

    @property
    def level(self) -> str:
        return f"{self.alpha:.1%}".replace(".0%", "%")  # 5%, 2.5%


def figures(campaign: Campaign) -> Experiment:
    """The campaign's A/B figures and time to first audio: one grouped query over its calls (a few rows
    come back, but every call of the campaign is read: the page fetches them apart, like its charts)."""
    variants = list(Variant.objects.filter(campaign=campaign).order_by("pk"))
    counts: dict[int | None, dict[str, int]] = defaultdict(lambda: {"ended": 0, "answered": 0})
    by_disposition: dict[int | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    first_audio: dict[int | None, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    # One scan of the campaign's calls, grouped by variant, disposition and time-to-first-audio bin.
    for row in (Call.objects.filter(campaign=campaign)
                .values("variant_id", "disposition", bin=F("first_audio_ms") / FIRST_AUDIO_BIN_MS * FIRST_AUDIO_BIN_MS)
                .annotate(n=Count("pk"), ended=Count("pk", filter=ENDED), answered=Count("pk", filter=ANSWERED))
                .order_by()):
        variant_id = row["variant_id"]
        counts[variant_id]["ended"] += row["ended"]
        counts[variant_id]["answered"] += row["answered"]
        if variant_id is not None and row["disposition"] and row["answered"]:
            by_disposition[variant_id][row["disposition"]] += row["answered"]
        if row["bin"] is not None:
            first_audio[variant_id][row["bin"]] += row["n"]
    totals: dict[str, int] = defaultdict(int)
    for per_variant in by_disposition.values():
        for disposition, n in per_variant.items():
            totals[disposition] += n
    shown = sorted(totals, key=lambda d: (-totals[d], d))[:MAX_DISPOSITIONS]
    weight_sum = sum(v.weight for v in variants) or 1
    arms = []
    for variant in variants:
        answered = counts[variant.pk]["answered"]
        arms.append(Arm(
            variant, round(100 * variant.weight / weight_sum), stats.rate(answered, counts[variant.pk]["ended"]),
            {d: stats.rate(by_disposition[variant.pk].get(d, 0), answered) for d in shown},
            FirstAudio.of(first_audio[variant.pk]),
        ))
    alpha = stats.ALPHA / max(1, len(arms) - 1)
    control = arms[0] if arms else None
    for arm in arms[1:]:
        arm.answer_test = _test(arm.answer, control.answer, alpha)
        arm.disposition_tests = {d: _test(arm.dispositions[d], control.dispositions[d], alpha) for d in shown}
    everything: dict[int, int] = defaultdict(int)
    for histogram in first_audio.values():
        for value, n in histogram.items():
            everything[value] += n
    return Experiment(arms, shown, alpha, stats.MIN_TRIALS, FirstAudio.of(everything))


def _test(arm: stats.Rate, control: stats.Rate, alpha: float) -> stats.Comparison:
    return stats.two_proportion_test(arm.successes, arm.trials, control.successes, control.trials, alpha=alpha)


def delete_variant(variant: Variant) -> bool:
    """Delete a variant that no call ran; False, and kept, if one did: the calls' figures name it."""
    try:
        variant.delete()
    except RestrictedError:
        return False
    return True

