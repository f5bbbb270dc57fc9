"""The job environment's pins hold together: what the pinned pyspark needs, constraints.txt (which the
job environment is built with) satisfies. pip does not check this: the project installs pyspark without
the extras that declare NumPy, pandas and Arrow."""

from __future__ import annotations

import importlib.metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.paths import ROOT

SPARK_EXTRAS = ("ml", "sql")  # what the job imports: pyspark.ml, and DataFrames with pandas and Arrow
CONSTRAINTS = {
    canonicalize_name(name): version.strip()
    for line in (ROOT / "constraints.txt").read_text().splitlines()
    if "==" in line and not line.lstrip().startswith("#")
    for name, version in [line.split("#", 1)[0].split("==", 1)]
}


def needed_by_pyspark() -> list[Requirement]:
    needed = [Requirement(r) for r in importlib.metadata.requires("pyspark") or []]
    return [
        r
        for r in needed
        if r.marker is None or any(r.marker.evaluate({"extra": extra}) for extra in SPARK_EXTRAS)
    ]


def test_the_pyspark_checked_is_the_pinned_one() -> None:
    assert importlib.metadata.version("pyspark") == CONSTRAINTS["pyspark"]


@pytest.mark.parametrize("needed", needed_by_pyspark(), ids=str)
def test_the_pinned_version_of_each_package_pyspark_needs_is_one_it_accepts(needed: Requirement) -> None:
    pinned = CONSTRAINTS[canonicalize_name(needed.name)]

    assert needed.specifier.contains(pinned), (
        f"constraints.txt pins {needed.name}=={pinned}; pyspark {CONSTRAINTS['pyspark']} needs {needed}"
    )
