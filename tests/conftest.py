"""Shared fixtures: one local Spark for the whole run, the real model weights, generated image sets."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from featurizer.samples import generate
from tests.images import bad_files, odd_files, write

MODELS_ENV = "FEATURIZER_MODELS_DIR"
NO_TOP = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
WITH_TOP = "mobilenet_v2_1.0_224_with_top_approx_head.h5"


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The folder of real MobileNetV2 weights (../shared/models in CI), named by FEATURIZER_MODELS_DIR."""
    value = os.environ.get(MODELS_ENV)
    if not value or not (Path(value) / NO_TOP).is_file():
        pytest.fail(
            f"{MODELS_ENV} must name a folder holding {NO_TOP} (e.g. ../shared/models); it is {value!r}. "
            "`.ci/run` sets it to ../shared/models."
        )
    return Path(value)


@pytest.fixture(scope="session")
def weights(models_dir: Path) -> Path:
    return models_dir / NO_TOP


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    from featurizer.session import local_session

    os.environ.setdefault("FEATURIZER_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    session = local_session()
    yield session
    session.stop()


@pytest.fixture(scope="session")
def sample_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five distinct classes (names with spaces, commas, accents), odd formats, broken files, stray files."""
    root = tmp_path_factory.mktemp("drop") / "fruits"
    generate(root, per_class=12, seed=1, defects=False)
    write(root / "Apple Crimson Snow", odd_files())
    write(root / "Banana", {name: data for name, (data, _) in bad_files().items()})
    (root / "notes.txt").write_text("not an image")
    (root / "Banana" / "thumbs.db").write_bytes(b"\x00" * 10)
    (root / "unsorted.png").write_bytes(odd_files()["grey.png"])
    return root
