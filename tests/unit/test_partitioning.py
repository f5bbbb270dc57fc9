import pytest

from featurizer.partitioning import arrow_rows, featurize_tasks


@pytest.mark.parametrize(
    ("images", "slots", "tasks"),
    [
        (1, 2, 1),
        (150, 2, 1),  # too few images to split below 100 per task
        (1_000, 2, 4),  # two tasks per slot
        (10_812, 2, 6),  # tasks of at most 2,000 images
        (10_812, 80, 108),  # a large application: 100 images per task, so executors get work
        (100_000_000, 400, 50_000),
    ],
)
def test_task_count_follows_the_number_of_images(images: int, slots: int, tasks: int) -> None:
    assert featurize_tasks(images, slots) == tasks


def test_arrow_batches_hold_whole_inference_batches() -> None:
    assert arrow_rows(16) == 256
    assert arrow_rows(64) % 64 == 0
