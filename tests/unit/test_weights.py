from pathlib import Path

import pytest

from featurizer.weights import WeightsUnavailable, resolve_weights


def test_a_local_weights_file_is_checked_and_fingerprinted(weights: Path) -> None:
    resolved = resolve_weights(str(weights))

    assert resolved.path == weights.resolve()
    assert resolved.sha256 == "71e4c4ec4aa24c9c951b9265d6de42e1336dcf614c2214fa6a989208615e232c"


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda tmp: tmp / "missing.h5", "no such file"),
        (lambda tmp: (tmp / "w.h5").write_text("not hdf5") and tmp / "w.h5", "not an HDF5 (.h5) file"),
    ],
)
def test_unusable_weights_name_the_option_and_the_variable(tmp_path: Path, make, why: str) -> None:
    with pytest.raises(WeightsUnavailable) as error:
        resolve_weights(str(make(tmp_path)))

    assert why in str(error.value)
    assert "--weights" in str(error.value) and "FEATURIZER_WEIGHTS" in str(error.value)


def test_imagenet_download_failure_says_how_to_work_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import keras

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.utils, "get_file", offline)

    with pytest.raises(WeightsUnavailable) as error:
        resolve_weights("imagenet")

    assert "download" in str(error.value) and "FEATURIZER_WEIGHTS" in str(error.value)
