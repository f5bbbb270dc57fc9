from pathlib import Path

import pyarrow.parquet as pq
from pyspark.sql import SparkSession

from featurizer.outputs import read_parquet, write_parquet

SCHEMA = "label string, features array<float>, score double"


def _encodings(folder: Path) -> dict[str, set[str]]:
    """Each column's encodings over every row group of every part file."""
    found: dict[str, set[str]] = {}
    for part in folder.glob("*.parquet"):
        metadata = pq.ParquetFile(part).metadata
        for group in range(metadata.num_row_groups):
            for index in range(metadata.num_columns):
                column = metadata.row_group(group).column(index)
                found.setdefault(column.path_in_schema, set()).update(column.encodings)
    return found


def test_floats_are_written_without_a_dictionary_and_the_other_columns_keep_theirs(
    spark: SparkSession, tmp_path: Path
) -> None:
    # Repeating values, which the writer would dictionary-encode if allowed to.
    rows = [(f"class {i % 3}", [float(i % 2)] * 8, float(i % 2)) for i in range(300)]
    frame = spark.createDataFrame(rows, SCHEMA).coalesce(1)

    write_parquet(frame, str(tmp_path))

    encodings = _encodings(tmp_path)
    assert not any("DICTIONARY" in e for e in encodings["features.list.element"] | encodings["score"])
    assert any("DICTIONARY" in e for e in encodings["label"])
    assert sorted(read_parquet(spark, str(tmp_path)).collect()) == sorted(frame.collect())
