import pytest

from featurizer.options import WEIGHTS_ENV, parse_options

BASE = ["--input", "in/", "--output", "out/"]


def test_defaults() -> None:
    options = parse_options([*BASE, "--run-id", "r1"], env={})

    assert (options.engine, options.weights, options.pca_k, options.pca_variance) == (
        "onnx",
        "imagenet",
        10,
        None,
    )
    assert (options.classify_on, options.test_fraction, options.seed) == ("scaled", 0.2, 42)
    assert (options.max_image_bytes, options.max_image_pixels) == (32 * 2**20, 50_000_000)
    assert options.run_uri == "out/r1/"


def test_weights_default_comes_from_the_environment_and_the_option_wins() -> None:
    env = {WEIGHTS_ENV: "/models/w.h5"}

    assert parse_options(BASE, env=env).weights == "/models/w.h5"
    assert parse_options([*BASE, "--weights", "s3://b/w.h5"], env=env).weights == "s3://b/w.h5"


def test_pca_variance_replaces_the_default_k() -> None:
    options = parse_options([*BASE, "--pca-variance", "0.95"], env={})

    assert (options.pca_k, options.pca_variance) == (None, 0.95)


def test_run_id_defaults_to_a_timestamp() -> None:
    assert parse_options(BASE, env={}).run_id.startswith("run-")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--pca-k", "0"], "--pca-k: must be from 1 to 1280, got 0"),
        (["--pca-k", "1281"], "--pca-k: must be from 1 to 1280, got 1281"),
        (["--pca-k", "ten"], "--pca-k: expected a whole number from 1 to 1280, got 'ten'"),
        (["--pca-k", "5", "--pca-variance", "0.9"], "not allowed with argument"),
        (["--pca-variance", "1.5"], "--pca-variance: must be from 0.001 to 0.999, got 1.5"),
        (["--pca-variance", "nan"], "--pca-variance: must be from 0.001 to 0.999, got nan"),
        (["--test-fraction", "0"], "--test-fraction: must be from 0.001 to 0.999, got 0.0"),
        (["--test-fraction", "5e-324"], "--test-fraction: must be from 0.001 to 0.999, got 5e-324"),
        (["--seed", "-1"], "--seed: must be from 0 to 2147483647, got -1"),
        (["--seed", "1" + "0" * 38], "--seed: must be from 0 to 2147483647"),
        (["--batch-size", "257"], "--batch-size: must be from 1 to 256, got 257"),
        (["--max-image-bytes", "0"], "--max-image-bytes: must be from 1 to 1073741824, got 0"),
        (["--max-image-pixels", "1073741825"], "--max-image-pixels: must be from 1 to 1073741824"),
        (["--engine", "torch"], "--engine: invalid choice: 'torch'"),
        (["--classify-on", "raw"], "--classify-on: invalid choice"),
        (["--run-id", "../etc"], "is not a usable run id"),
        (["--run-id", "run\n"], "is not a usable run id"),
        (["--input", "http://x/y"], "unsupported scheme http://"),
    ],
)
def test_bad_arguments_exit_2_naming_the_option(argv: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse_options([*BASE, *argv], env={})

    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_input_is_named(capsys) -> None:
    with pytest.raises(SystemExit):
        parse_options(["--output", "out/"], env={})

    assert "--input" in capsys.readouterr().err


@pytest.mark.parametrize(
    "refused", [["--pca-k", "5"], ["--engine", "tensorflow"], ["--seed", "1"], ["--self-test"]]
)
def test_a_predict_run_refuses_the_options_its_trained_run_decides(refused: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse_options([*BASE, "--model-run", "runs/trained", *refused], env={})

    assert stopped.value.code == 2
    assert f"{refused[0]} is not taken by a predict run (--model-run)" in capsys.readouterr().err


def test_a_predict_run_takes_its_input_store_and_limits() -> None:
    argv = [*BASE, "--model-run", "runs/trained", "--batch-size", "8", "--no-store"]

    options = parse_options(argv, env={})

    assert (options.model_run, options.batch_size, options.no_store) == ("runs/trained", 8, True)
