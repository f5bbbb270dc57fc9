"""The fit's sample quotas: bounded by the cap, proportional to the classes, no class left out."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from featurizer.stratified import SampleTooSmall, proportional_quotas

COUNTS = st.dictionaries(st.text(min_size=1, max_size=3), st.integers(1, 10**8), min_size=1, max_size=40)


@given(COUNTS, st.integers(40, 10**6), st.integers(1, 10**6))
def test_quotas_stay_within_the_caps_and_keep_every_class(counts: dict, cap: int, per_class: int) -> None:
    quotas = proportional_quotas(counts, cap, per_class)

    assert quotas.keys() == counts.keys()
    assert sum(quotas.values()) <= cap
    assert all(1 <= quotas[c] <= min(counts[c], per_class) for c in counts)


@given(COUNTS, st.integers(40, 10**6))
def test_a_larger_class_never_gets_a_smaller_quota(counts: dict, cap: int) -> None:
    quotas = proportional_quotas(counts, cap, per_class=10**9)

    by_size = sorted(counts, key=counts.__getitem__)
    assert [quotas[c] for c in by_size] == sorted(quotas[c] for c in by_size)


def test_within_the_cap_everything_is_kept_but_the_per_class_excess() -> None:
    assert proportional_quotas({"a": 10, "b": 500}, cap=1000, per_class=100) == {"a": 10, "b": 100}


def test_beyond_the_cap_the_classes_keep_their_shares() -> None:
    quotas = proportional_quotas({"a": 9_000_001, "b": 1_000_001, "c": 1}, cap=100_002, per_class=10**9)

    assert quotas == {"a": 90_000, "b": 10_000, "c": 1}


def test_a_cap_below_the_number_of_classes_says_what_to_set() -> None:
    with pytest.raises(
        SampleTooSmall, match=r"--fit-max-images 10 cannot hold .* 11 classes: set it to at least 11"
    ):
        proportional_quotas({str(i): 5 for i in range(11)}, cap=10, per_class=5)
