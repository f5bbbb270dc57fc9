"""The two inference engines on real MobileNetV2 weights."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from featurizer.decode import preprocess, to_model_input
from featurizer.engines import KerasEngine, OnnxEngine
from featurizer.export import export_onnx
from featurizer.samples import CLASSES, draw, encode
from featurizer.weights import resolve_weights
from tests.conftest import WITH_TOP
from tests.images import odd_files


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    rng = np.random.default_rng(11)
    pictures = [encode(draw(painter, (100, 100), rng), ".jpg") for painter in CLASSES.values()]
    return to_model_input(np.stack([preprocess(data).pixels for data in [*pictures, *odd_files().values()]]))


def test_onnx_and_tensorflow_features_agree(weights: Path, tmp_path: Path, batch: np.ndarray) -> None:
    resolved = resolve_weights(str(weights))
    onnx = OnnxEngine(export_onnx(resolved, tmp_path), threads=2).extract(batch)
    keras = KerasEngine(resolved.path, threads=2).extract(batch)

    assert onnx.shape == keras.shape == (len(batch), 1280)
    assert np.abs(onnx - keras).max() < 1e-3
    assert np.abs(keras).max() > 0.1  # real activations, not a degenerate model


def test_our_preprocessing_shows_a_cat_to_the_imagenet_classifier(models_dir: Path) -> None:
    import keras
    from skimage.data import chelsea

    model = keras.applications.MobileNetV2(weights=str(models_dir / WITH_TOP), include_top=True)
    labels = (models_dir / "imagenet_labels.txt").read_text().splitlines()[1:]
    jpeg = cv2.imencode(".jpg", cv2.cvtColor(chelsea(), cv2.COLOR_RGB2BGR))[1].tobytes()

    scores = model.predict(to_model_input(preprocess(jpeg).pixels[None]), verbose=0)[0]

    top = [labels[i] for i in np.argsort(scores)[::-1][:3]]
    assert "cat" in top[0], top
