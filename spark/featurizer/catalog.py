"""Read: list every file under the input, keep the images, and give each one an id, a label and a split.

Everything here is a column expression over the listing (`listing.list_input`): no image is read here,
and no file name reaches the driver.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from featurizer import storage
from featurizer.listing import path_root
from featurizer.stratified import draw

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png")
FRUITS_SPLITS = {"Training": "train", "Test": "test"}
ID_HEX_DIGITS = 20  # 80 bits of sha256: collisions stay improbable far beyond 100 million images


@dataclass(frozen=True)
class Layout:
    """How the input is organised: `Training/` + `Test/` folders (Fruits-360) or one folder per class."""

    root: str
    fruits_split: bool


@dataclass(frozen=True)
class CatalogSummary:
    files_found: int
    images_found: int
    images_unlabelled: int

    @property
    def files_ignored(self) -> int:
        return self.files_found - self.images_found


def detect_layout(input_uri: str) -> Layout:
    folders = set(storage.list_folders(input_uri))
    return Layout(root=path_root(input_uri), fruits_split=set(FRUITS_SPLITS) <= folders)


def is_image(path: Column) -> Column:
    return F.lower(F.regexp_extract(path, r"\.([^./]+)$", 1)).isin(*IMAGE_EXTENSIONS)


def with_identity(files: DataFrame, layout: Layout) -> DataFrame:
    """Add relative path, image id, label and (for the Fruits-360 layout) split to each listed file.

    The label is the parent folder's name; an image with no class folder gets no label (and no split):
    it is featurized but left out of the classifier.
    """
    relative = F.expr(f"substr(path, {len(layout.root) + 2})")
    parts = F.split(relative, "/")
    depth = F.size(parts)
    if layout.fruits_split:
        top = F.element_at(parts, 1)
        labelled = (depth >= 3) & top.isin(*FRUITS_SPLITS)
        split = F.when(labelled, F.when(top == "Training", "train").otherwise("test"))
    else:
        labelled = depth >= 2
        split = F.lit(None).cast("string")
    return files.select(
        "*",
        relative.alias("relative_path"),
        F.substring(F.sha2(relative, 256), 1, ID_HEX_DIGITS).alias("image_id"),
        F.when(labelled, F.element_at(parts, -2)).alias("label"),
        split.alias("split"),
    )


def stratified_split(images: DataFrame, test_fraction: float, seed: int) -> DataFrame:
    """Hold out about `test_fraction` of each class (at least one image of any class of two or more).

    Each class gets a threshold on a seeded hash of the image id, computed over the small listing and
    broadcast; rows are never shuffled or ranked, so this costs one pass over file names.
    """
    keyed = images.withColumn("_u", draw("image_id", seed))  # the same image lands in the same split
    thresholds = (
        keyed.where(F.col("label").isNotNull())
        .groupBy("label")
        .agg(
            F.percentile_approx("_u", test_fraction, 10_000).alias("_t"),
            F.max("_u").alias("_u_max"),
            F.count(F.lit(1)).alias("_n"),
        )
    )
    held_out = (F.col("_n") >= 2) & (F.col("_u") <= F.col("_t")) & (F.col("_u") < F.col("_u_max"))
    return (
        keyed.join(F.broadcast(thresholds), "label", "left")
        .withColumn("split", F.when(F.col("label").isNotNull(), F.when(held_out, "test").otherwise("train")))
        .drop("_u", "_t", "_u_max", "_n")
    )


def catalog(
    listed: DataFrame, input_uri: str, test_fraction: float, seed: int
) -> tuple[DataFrame, DataFrame]:
    """(every listed file with its identity, the images with their split) for one input folder."""
    layout = detect_layout(input_uri)
    files = with_identity(listed, layout).withColumn("is_image", is_image(F.col("path")))
    images = files.where("is_image")
    if not layout.fruits_split:
        images = stratified_split(images, test_fraction, seed)
    return files, images


def summarize(files: DataFrame) -> CatalogSummary:
    """Counts of the listing, in one pass over file names (no image is read)."""
    rows = files.groupBy("is_image", F.col("label").isNull().alias("unlabelled")).count().collect()
    return CatalogSummary(
        files_found=sum(r["count"] for r in rows),
        images_found=sum(r["count"] for r in rows if r["is_image"]),
        images_unlabelled=sum(r["count"] for r in rows if r["is_image"] and r["unlabelled"]),
    )
