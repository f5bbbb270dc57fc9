"""featurizer.failures: an error of our own keeps its name and its first line in _FAILED.json."""

from featurizer.failures import error_summary


def test_our_own_errors_keep_their_name_and_first_line() -> None:
    assert error_summary(ValueError("first line\nsecond")) == ("ValueError", "first line")
