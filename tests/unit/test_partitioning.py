import pytest

from featurizer.partitioning import arrow_rows, featurize_tasks


@pytest.mark.parametrize(
    ("images", "slots", "tasks"),
    [
        (0, 2, 1),
        (1, 2, 1),
        (150, 2, 1),  # too few images to split below 100 per task
        (300, 2, 2),  # 3 tasks of 100 would leave a slot idle for the third: 2 of 150
        (1_000, 2, 4),  # two tasks per slot
        (10_812, 2, 6),  # tasks of at most 2,000 images
        (12_001, 2, 8),  # 7 tasks of about 1,700 would end with one alone: 8 of 1,500
        (1_000, 80, 10),  # fewer images than 100 per slot: 10 tasks of 100, not a multiple of 80
        (10_812, 80, 80),  # a large application: 108 tasks of 100 are 2 waves, the second a third full
        (100_000_000, 400, 50_000),
    ],
)
def test_task_count_follows_the_number_of_images(images: int, slots: int, tasks: int) -> None:
    assert featurize_tasks(images, slots) == tasks


def test_arrow_batches_hold_whole_inference_batches() -> None:
    assert arrow_rows(16) == 256
    assert arrow_rows(64) % 64 == 0
