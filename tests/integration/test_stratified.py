"""The bounded stratified sample on Spark: exact quotas, the same rows however the input is split."""

from __future__ import annotations

from collections import Counter

from pyspark.sql import SparkSession

from featurizer.stratified import class_counts, draw, proportional_quotas, stratified_sample


def test_each_class_gets_its_quota_and_the_same_rows_whatever_the_partitioning(spark: SparkSession) -> None:
    sizes = {"big": 6_000, "mid": 1_500, "rare": 7}
    rows = [(f"{label}-{i}", label, float(i)) for label, size in sizes.items() for i in range(size)]
    frame = spark.createDataFrame(rows, "image_id string, label string, value double").coalesce(1)
    counts = class_counts(frame, "label")
    quotas = proportional_quotas(counts, cap=1_000, per_class=700)

    sample = stratified_sample(frame, "label", "image_id", quotas, counts, seed=3).collect()
    again = stratified_sample(frame.repartition(9, "value"), "label", "image_id", quotas, counts, seed=3)

    assert counts == sizes
    assert Counter(row["label"] for row in sample) == quotas == {"big": 700, "mid": 200, "rare": 1}
    assert sorted(sample) == sorted(again.collect())
    assert [field.name for field in again.schema] == ["image_id", "label", "value"]
    other_seed = stratified_sample(frame, "label", "image_id", quotas, counts, seed=4).collect()
    assert {r["image_id"] for r in other_seed} != {r["image_id"] for r in sample}


def test_the_sample_is_spread_over_the_class_not_its_first_rows(spark: SparkSession) -> None:
    frame = spark.createDataFrame(
        [(f"i{i}", "a", i) for i in range(10_000)], "image_id string, label string, n int"
    )

    picked = sorted(
        r["n"] for r in stratified_sample(frame, "label", "image_id", {"a": 100}, {"a": 10_000}, 0).collect()
    )

    assert len(picked) == 100
    assert picked[0] < 1_000 and picked[-1] > 9_000


def test_a_training_split_made_by_the_split_draw_still_fills_its_quotas(spark: SparkSession) -> None:
    # The split keeps rows whose unsalted draw is above a threshold: a sample drawing the same numbers
    # would find only the few just above it, and fall far short of its quota.
    rows = [(f"i{i}", f"c{i % 4}") for i in range(40_000)]
    frame = spark.createDataFrame(rows, "image_id string, label string")
    train = frame.where(draw("image_id", 42) >= 0.5)
    counts = class_counts(train, "label")
    quotas = proportional_quotas(counts, cap=2_000, per_class=10**9)

    sample = stratified_sample(train, "label", "image_id", quotas, counts, seed=42)

    assert Counter(r["label"] for r in sample.collect()) == quotas


def test_quotas_that_hold_every_class_whole_take_the_frame_without_ranking_it(spark: SparkSession) -> None:
    frame = spark.createDataFrame(
        [(f"i{i}", f"c{i % 3}") for i in range(300)], "image_id string, label string"
    )
    counts = class_counts(frame, "label")

    whole = stratified_sample(frame, "label", "image_id", proportional_quotas(counts, 300, 100), counts, 1)
    ranked = stratified_sample(frame, "label", "image_id", proportional_quotas(counts, 300, 99), counts, 1)

    assert whole is frame
    assert Counter(r["label"] for r in ranked.collect()) == {"c0": 99, "c1": 99, "c2": 99}
