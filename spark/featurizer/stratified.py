"""Bounded stratified samples: the fit's training sample and the report's scatter plot.

A row's place in the sample depends only on its key and the seed (a hash, not `rand()`): the same rows
are chosen however the input is partitioned, and again should a lost partition be recomputed. Each class
keeps its `quota` rows of smallest hash. Only a Bernoulli pre-sample of slightly more than the quotas
(by the same hash) is ranked, so the ranking's shuffle is bounded by the sample, not by the input.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

_UNIT = 2**53  # a hash's low 53 bits, over 2^53: a uniform double in [0, 1)
_RANK = "_stratified_rank"
_DRAW = "_stratified_draw"
_FRACTION = "_stratified_fraction"
_QUOTA = "_stratified_quota"
_SALT = "stratified"


class SampleTooSmall(ValueError):
    """The cap cannot hold one row of every class."""


def class_counts(frame: DataFrame, column: str) -> dict[str, int]:
    """Rows per class: one aggregation that reads the class column alone (Parquet is columnar)."""
    return {row[column]: row["count"] for row in frame.groupBy(column).count().collect()}


def proportional_quotas(counts: Mapping[str, int], cap: int, per_class: int) -> dict[str, int]:
    """Rows to keep of each class: all of them within the cap; beyond it, one each and the rest of the
    cap shared in proportion to the classes' sizes (so the sample keeps the input's class balance and
    no class vanishes), then at most `per_class` of any one. The sum never exceeds `cap`."""
    total = sum(counts.values())
    if total <= cap:
        return {label: min(count, per_class) for label, count in counts.items()}
    if len(counts) > cap:
        raise SampleTooSmall(
            f"--fit-max-images {cap} cannot hold one training image of each of the {len(counts)} "
            f"classes: set it to at least {len(counts)}"
        )
    spare, rest = cap - len(counts), total - len(counts)
    return {label: min(per_class, 1 + (count - 1) * spare // rest) for label, count in counts.items()}


def draw(key: str, seed: int, salt: str = "") -> Column:
    """A uniform number in [0, 1) fixed by the row's key, the seed and the salt. Draws with different
    salts are independent: the train/test split draws unsalted, and a sample of the training split must
    not (its rows all drew above the split's threshold)."""
    parts = [F.lit(seed), F.col(key), *([F.lit(salt)] if salt else [])]
    return F.pmod(F.xxhash64(*parts), F.lit(_UNIT)) / F.lit(float(_UNIT))


def stratified_sample(
    frame: DataFrame, column: str, key: str, quotas: Mapping[str, int], counts: Mapping[str, int], seed: int
) -> DataFrame:
    """At most `quotas[c]` rows of each class c (of `counts[c]` rows), chosen by `draw(key, seed)`.

    The pre-sample keeps a row when its draw is below (quota + 4 sqrt(quota) + 10) / count: a class falls
    short of its quota only about once in 30,000 samples, and then by a few rows. Classes are looked up
    in a broadcast table, so thousands of them make no giant expression. When every quota holds its whole
    class, the sample is the frame itself, and nothing is ranked.
    """
    if all(quotas.get(label, 0) >= count for label, count in counts.items()):
        return frame
    limits = [
        (label, min(1.0, (quota + 4 * math.sqrt(quota) + 10) / counts[label]), quota)
        for label, quota in quotas.items()
        if quota > 0
    ]
    schema = f"{column} string, {_FRACTION} double, {_QUOTA} long"
    by_class = F.broadcast(frame.sparkSession.createDataFrame(limits, schema))
    rank = F.row_number().over(Window.partitionBy(column).orderBy(_DRAW, key))
    return (
        frame.join(by_class, column)
        .withColumn(_DRAW, draw(key, seed, _SALT))
        .where(F.col(_DRAW) < F.col(_FRACTION))
        .withColumn(_RANK, rank)
        .where(F.col(_RANK) <= F.col(_QUOTA))
        .select(*frame.columns)
    )
