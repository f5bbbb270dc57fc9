"""featurizer.concat: the plans that join part files into one, and the joins of local files."""

from itertools import product
from pathlib import Path

import pytest

from featurizer import concat, storage
from featurizer.concat import MAX_COPY_SIZE, MAX_PARTS, ConcatError, Part, Span, plan_parts
from featurizer.outputs import csv_header
from tests.parts import HEADER, M, joined, write_parts


def test_every_plan_covers_every_byte_once_in_order_with_parts_s3_accepts() -> None:
    # Header sizes, then up to three part files, around a minimum part size of 10.
    for header in (1, 4, 10, 23):
        for files in (f for n in range(4) for f in product((0, 3, 9, 10, 11, 25), repeat=n)):
            sizes = [header, *files]
            parts = plan_parts(sizes, min_part_size=10)

            spans = [span for part in parts for span in part.spans]
            planned = [(span.source, offset) for span in spans for offset in range(span.start, span.end)]
            assert planned == [(source, at) for source, size in enumerate(sizes) for at in range(size)], sizes
            lengths = [sum(span.end - span.start for span in part.spans) for part in parts]
            assert all(length >= 10 for length in lengths[:-1]), sizes
            assert all(length <= 10 for length, part in zip(lengths, parts, strict=True) if not part.copy), (
                sizes
            )
            assert all(len(part.spans) == 1 and part.spans[0].source > 0 for part in parts if part.copy), (
                sizes
            )
            assert all(span.end > span.start for span in spans), sizes


def test_a_large_part_tops_up_a_partly_full_buffer_and_the_rest_is_copied_with_a_range() -> None:
    assert plan_parts([3, 25, 25], min_part_size=10) == [
        Part((Span(0, 0, 3), Span(1, 0, 7))),
        Part((Span(1, 7, 25),), copy=True),
        Part((Span(2, 0, 25),), copy=True),  # the buffer is empty: a whole-object copy
    ]


def test_small_parts_and_a_short_tail_fill_the_buffer_one_minimum_part_at_a_time() -> None:
    assert plan_parts([3, 4, 12, 2], min_part_size=10) == [
        Part((Span(0, 0, 3), Span(1, 0, 4), Span(2, 0, 3))),
        Part((Span(2, 3, 12), Span(3, 0, 1))),
        Part((Span(3, 1, 2),)),
    ]


def test_copies_longer_than_s3s_largest_part_are_split_evenly() -> None:
    parts = plan_parts([5, M + 11 * 1024**3], min_part_size=M)

    copies = [part.spans[0] for part in parts if part.copy]
    assert len(copies) == 3
    assert all(M <= span.end - span.start <= MAX_COPY_SIZE for span in copies)


def test_more_parts_than_s3_allows_is_an_error_before_anything_is_uploaded() -> None:
    with pytest.raises(ConcatError, match=f"10002 multipart parts and S3 allows {MAX_PARTS}"):
        plan_parts([1] * (MAX_PARTS + 2), min_part_size=1)


@pytest.mark.parametrize(
    "sizes",
    [[], [0, 0], [7] * 50, [3, 40_000, 5], [40_000, 3], [40_000, 40_000]],
    ids=["no parts", "empty parts", "many small", "small-large-small", "large-small", "large-large"],
)
def test_local_files_join_byte_for_byte_and_the_folder_goes(tmp_path: Path, sizes: list[int]) -> None:
    folder = tmp_path / "pca.csv._parts"
    folder.mkdir()
    files = write_parts(sizes)
    for name, data in reversed(files.items()):  # created out of order: the names give the order
        (folder / name).write_bytes(data)

    concat.concat_folder(str(folder), f"file://{tmp_path}/pca.csv", HEADER)

    assert (tmp_path / "pca.csv").read_bytes() == joined(files)
    assert not folder.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pca.csv"]


def test_a_joined_file_of_the_wrong_size_is_an_error_naming_both_sizes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    (folder / "part-00000.csv").write_bytes(b"a,b\n")
    listed = storage.iter_sizes
    monkeypatch.setattr(storage, "iter_sizes", lambda uri: ((u, size + 1) for u, size in listed(uri)))

    with pytest.raises(ConcatError, match=rf"has {len(HEADER) + 4} bytes, .* have {len(HEADER) + 5}"):
        concat.concat_folder(str(folder), str(tmp_path / "out.csv"), HEADER)
    assert folder.exists()  # kept, to see what went wrong


def test_the_header_is_quoted_as_spark_quotes_it() -> None:
    assert csv_header(["image_id", "label, as written", 'say "hi"', "é"]) == (
        'image_id,"label, as written","say ""hi""",é\n'.encode()
    )


def test_parts_join_in_number_order_and_leftovers_of_failed_attempts_are_ignored(tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    (folder / "_temporary" / "0").mkdir(parents=True)
    (folder / "part-100000-x.csv").write_bytes(b"last\n")
    (folder / "part-20000-x.csv").write_bytes(b"first\n")
    (folder / "_temporary" / "0" / "part-00000-x.csv").write_bytes(b"half-written\n")

    concat.concat_folder(str(folder), str(tmp_path / "out.csv"), HEADER)

    assert (tmp_path / "out.csv").read_bytes() == HEADER + b"first\nlast\n"
