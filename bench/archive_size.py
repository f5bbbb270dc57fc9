"""Packed size and build time of the job environment archives (goal: default under 200 MB).

    .venv/bin/python bench/archive_size.py [--variants default,tensorflow]

Builds each variant with packaging/build_env.py on this machine (the EMR build runs the same script on
Amazon Linux 2023, with the same pins) and prints a table. Build times depend on pip's cache.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_MB = 200


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variants", default="default,tensorflow")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="archives-") as out:
        for variant in args.variants.split(","):
            started = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "packaging" / "build_env.py"),
                    "--variant",
                    variant,
                    "--output",
                    out,
                ],
                check=True,
                capture_output=True,
            )
            seconds = time.perf_counter() - started
            suffix = "" if variant == "default" else f"-{variant}"
            (archive,) = Path(out).glob(f"job-env{suffix}-py*.tar.gz")
            rows.append((variant, archive.stat().st_size / 1e6, seconds))
    print(f"{'variant':<12}{'packed MB':>12}{'build s':>10}  goal")
    for variant, size, seconds in rows:
        goal = f"<= {GOAL_MB} MB: {'met' if size <= GOAL_MB else 'MISSED'}" if variant == "default" else ""
        print(f"{variant:<12}{size:>12.1f}{seconds:>10.0f}  {goal}")


if __name__ == "__main__":
    main()
