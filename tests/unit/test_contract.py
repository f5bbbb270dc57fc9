"""The contract between the planes: what the API accepts, the job parses to the same values; what the job
would refuse, the API refuses first, naming the field.

The Lambdas (lambda/) and the job (spark/) are packaged apart and share no code, so each states the options,
their bounds and the run-id pattern once; this test is what makes the two statements one fact. Every value
goes the way a real one goes: a JSON request body -> the API's model -> the Lambda's entryPointArguments ->
the job's own argument parser.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.requests import RequestValidationError, check_run_id, parse_run_request
from common.emr import entry_point_arguments
from common.errors import InvalidRequestError
from common.runs import (
    COMPLETED_FLAG,
    FAILED_FLAG,
    PREDICT_FOLDER,
    PREDICT_REFUSES,
    PROGRESS_FILE,
    REFIT_KEEPS,
    RunOptions,
    RunSpec,
    make_run_id,
    output_uri,
)
from featurizer.failures import FAILED_FLAG as JOB_FAILED_FLAG
from featurizer.listing import is_hidden
from featurizer.manifest import COMPLETED_FLAG as JOB_COMPLETED_FLAG
from featurizer.options import PREDICT_REFUSES as JOB_PREDICT_REFUSES
from featurizer.options import REFIT_KEEPS as JOB_REFIT_KEEPS
from featurizer.options import JobOptions, build_parser, parse_options
from featurizer.progress import PROGRESS_FILE as JOB_PROGRESS_FILE
from tests.unit.settings import JOB_SETTINGS

INPUT = "s3://featurizer-data/inbox/flowers/"
RUN_ID = "flowers-20261124T100000-0a1b2c3d"
# Job arguments the control plane fills in itself (from the request's input, its from_run or predict_with
# and its own settings), or leaves to the job: the feature store is the dataset's own, beside its runs.
SET_BY_THE_CONTROL_PLANE = {"input", "output", "run_id", "weights", "model", "store", "from_run", "model_run"}
SCHEMA = RunOptions.model_json_schema()["properties"]


def spec(name: str) -> dict[str, Any]:
    """An option's JSON schema, without the `null` that means "the job's default"."""
    (typed,) = [s for s in SCHEMA[name]["anyOf"] if s["type"] != "null"]
    return typed


NUMBERS = {name: spec(name) for name in SCHEMA if spec(name)["type"] in ("integer", "number")}
CHOICES = {name: spec(name)["enum"] for name in SCHEMA if "enum" in spec(name)}


def api(options: dict[str, Any]) -> RunOptions | InvalidRequestError:
    """The options of a POST /runs body, as the API parses them (or its 4xx)."""
    try:
        return parse_run_request(json.dumps({"input": INPUT, "options": options})).options
    except InvalidRequestError as refused:
        return refused


def job_arguments(options: RunOptions, predict_with_uri: str | None = None) -> list[str]:
    run = RunSpec(
        run_id=RUN_ID,
        dataset="flowers",
        input_uri=INPUT,
        output_uri=output_uri(JOB_SETTINGS.data_bucket, "flowers"),
        options=options,
        trigger="api",
        predict_with=None if predict_with_uri is None else "trained",
        predict_with_uri=predict_with_uri,
    )
    return entry_point_arguments(run, JOB_SETTINGS)


def job_parses(argv: list[str]) -> JobOptions | str:
    """The job's parse of a command line, or what its parser printed when it refused it."""
    printed = io.StringIO()
    with contextlib.redirect_stderr(printed):
        try:
            return parse_options(argv, env={})
        except SystemExit:
            return printed.getvalue()


def job_parses_option(name: str, text: str) -> JobOptions | str:
    """The job's parse of one option as a caller-set value would reach it."""
    return job_parses(["--input", INPUT, "--output", "out/", f"--{name.replace('_', '-')}", text])


def as_argument(value: int | float | str) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def test_the_api_offers_every_job_option_a_caller_may_set_and_no_other() -> None:
    parser = build_parser("featurizer run", env={})
    job_options = {action.dest for action in parser._actions if action.dest != "help"}

    assert set(RunOptions.model_fields) == job_options - SET_BY_THE_CONTROL_PLANE
    assert set(NUMBERS) == {
        "pca_k",
        "pca_variance",
        "test_fraction",
        "seed",
        "batch_size",
        "max_image_bytes",
        "max_image_pixels",
        "fit_max_images",
        "fit_max_per_class",
        "reg_param",
        "max_iter",
    }
    assert all({"minimum", "maximum"} <= set(bounds) for bounds in NUMBERS.values()), "every number bounded"


def inside(bounds: dict[str, Any]) -> list[int | float]:
    low, high = bounds["minimum"], bounds["maximum"]
    if bounds["type"] == "integer":
        return [low, low + 1, (low + high) // 2, high - 1, high]
    return [low, math.nextafter(low, math.inf), (low + high) / 2, math.nextafter(high, -math.inf), high]


def outside(bounds: dict[str, Any]) -> list[int | float]:
    low, high = bounds["minimum"], bounds["maximum"]
    if bounds["type"] == "integer":
        return [low - 1, high + 1, -(2**63), 10**38]
    near = [math.nextafter(low, -math.inf), math.nextafter(high, math.inf)]
    return near + [x for x in (0.0, 1.0, 5e-324, 1e-200, 1e300, -1e300) if not low <= x <= high]


@pytest.mark.parametrize("name", sorted(NUMBERS))
def test_every_value_inside_the_bounds_reaches_the_job_unchanged(name: str) -> None:
    for value in inside(NUMBERS[name]):
        accepted = api({name: value})
        assert isinstance(accepted, RunOptions), (name, value, accepted)
        parsed = job_parses(job_arguments(accepted))
        assert isinstance(parsed, JobOptions), (name, value, parsed)
        assert getattr(parsed, name) == value and type(getattr(parsed, name)) is type(value)


@pytest.mark.parametrize("name", sorted(NUMBERS))
def test_every_value_outside_the_bounds_is_refused_by_both_and_first_by_the_api(name: str) -> None:
    for value in outside(NUMBERS[name]):
        refused = api({name: value})
        assert isinstance(refused, RequestValidationError), (name, value, refused)
        assert refused.status_code == 400
        assert refused.field == f"options.{name}"
        assert json.dumps(value) in refused.problem
        assert isinstance(job_parses_option(name, as_argument(value)), str), (
            f"the job accepts {name}={value!r}"
        )


@pytest.mark.parametrize("name", sorted(CHOICES))
def test_the_choices_are_the_same_on_both_sides(name: str) -> None:
    for choice in CHOICES[name]:
        parsed = job_parses(job_arguments(RunOptions.model_validate({name: choice})))
        assert isinstance(parsed, JobOptions) and getattr(parsed, name) == choice
    refused = api({name: "torch"})
    assert isinstance(refused, RequestValidationError) and refused.field == f"options.{name}"
    assert "invalid choice: 'torch'" in str(job_parses_option(name, "torch"))


@pytest.mark.parametrize("pca", ["pca_k", "pca_variance"])
@pytest.mark.parametrize("end", ["minimum", "maximum"])
def test_every_option_set_at_once_at_a_bound(pca: str, end: str) -> None:
    others = {name: bounds[end] for name, bounds in NUMBERS.items() if name not in ("pca_k", "pca_variance")}
    options = {**others, pca: NUMBERS[pca][end], "engine": "tensorflow", "classify_on": "pca"}

    accepted = api(options)
    assert isinstance(accepted, RunOptions), accepted
    parsed = job_parses(job_arguments(accepted))
    assert isinstance(parsed, JobOptions), parsed
    assert {name: getattr(parsed, name) for name in options} == options


def test_both_sides_refuse_two_pca_settings() -> None:
    refused = api({"pca_k": 5, "pca_variance": 0.9})
    assert isinstance(refused, RequestValidationError) and refused.field == "options"
    both = job_parses(["--input", INPUT, "--output", "out/", "--pca-k", "5", "--pca-variance", "0.9"])
    assert "not allowed with argument" in str(both)


def test_both_sides_refuse_int8_with_the_tensorflow_engine() -> None:
    refused = api({"precision": "int8", "engine": "tensorflow"})
    assert isinstance(refused, RequestValidationError) and refused.field == "options"
    assert "precision int8 is an ONNX model" in refused.problem
    both = job_parses(["--input", INPUT, "--output", "out/", "--engine", "tensorflow", "--precision", "int8"])
    assert "--precision int8 is an ONNX model" in str(both)


def test_an_int8_run_reads_the_deployed_int8_model() -> None:
    parsed = job_parses(job_arguments(RunOptions(precision="int8")))
    assert isinstance(parsed, JobOptions) and parsed.precision == "int8"
    assert parsed.model == f"s3://{JOB_SETTINGS.artifacts_bucket}/{JOB_SETTINGS.int8_model_key}"
    assert job_parses(job_arguments(RunOptions())).model.endswith(JOB_SETTINGS.model_key)


@given(name=st.sampled_from(sorted(NUMBERS)), value=st.integers() | st.floats())
def test_any_json_number_is_taken_by_both_sides_or_by_neither(name: str, value: int | float) -> None:
    """Any size, NaN and the infinities included (Python's json writes them, pydantic reads them)."""
    accepted = api({name: value})
    parsed = job_parses_option(name, as_argument(value))

    assert isinstance(accepted, RunOptions) == isinstance(parsed, JobOptions), (value, accepted, parsed)
    if isinstance(accepted, RunOptions):
        assert getattr(job_parses(job_arguments(accepted)), name) == value


@given(name=st.sampled_from(sorted(CHOICES)), choice=st.text(max_size=12))
def test_any_text_is_a_choice_for_both_sides_or_for_neither(name: str, choice: str) -> None:
    accepted = api({name: choice})
    assert isinstance(accepted, RunOptions) == isinstance(job_parses_option(name, choice), JobOptions)


def api_takes_run_id(run_id: str) -> bool:
    try:
        check_run_id(run_id)
    except InvalidRequestError:
        return False
    return True


@pytest.mark.parametrize(
    "run_id", ["a", "A.b_c-9", "a" * 128, "a" * 129, ".", "..", "-a", "_a", "a\n", "a b", "a/b", "", "é"]
)
def test_a_run_id_is_valid_for_the_api_exactly_when_it_is_for_the_job(run_id: str) -> None:
    assert api_takes_run_id(run_id) == isinstance(job_parses_option("run_id", run_id), JobOptions)


@given(run_id=st.text(alphabet=st.characters(codec="utf-8"), max_size=140))
def test_any_text_is_a_run_id_for_both_sides_or_for_neither(run_id: str) -> None:
    assert api_takes_run_id(run_id) == isinstance(job_parses_option("run_id", run_id), JobOptions)


@given(
    dataset=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", fullmatch=True),
    seconds=st.integers(min_value=0, max_value=4_102_444_800),
    salt=st.text(max_size=8),
)
def test_every_run_id_the_control_plane_mints_is_one_the_job_takes(
    dataset: str, seconds: int, salt: str
) -> None:
    run_id = make_run_id(dataset, datetime.fromtimestamp(seconds, tz=UTC), salt)
    parsed = job_parses_option("run_id", run_id)
    assert isinstance(parsed, JobOptions) and parsed.run_id == run_id


def test_the_run_folder_and_its_flags_are_where_the_control_plane_looks() -> None:
    parsed = job_parses(job_arguments(RunOptions()))
    assert isinstance(parsed, JobOptions)
    assert parsed.run_uri == f"{output_uri(JOB_SETTINGS.data_bucket, 'flowers')}{RUN_ID}/"
    assert (JOB_COMPLETED_FLAG, JOB_FAILED_FLAG) == (COMPLETED_FLAG, FAILED_FLAG)
    assert JOB_PROGRESS_FILE == PROGRESS_FILE


def test_a_datasets_run_skips_the_prediction_batches_dropped_inside_its_folder() -> None:
    """inbox/<dataset>/_predict/<batch>/ starts predict runs; the dataset's training runs must not read it."""
    assert is_hidden(PREDICT_FOLDER)


@pytest.mark.parametrize("value", [True, False])
def test_a_switch_reaches_the_job_as_set(value: bool) -> None:
    accepted = api({"self_test": value})
    assert isinstance(accepted, RunOptions)
    parsed = job_parses(job_arguments(accepted))
    assert isinstance(parsed, JobOptions) and parsed.self_test is value
    refused = api({"self_test": "yes"})
    assert isinstance(refused, RequestValidationError) and refused.field == "options.self_test"


def test_a_refit_refuses_the_options_that_choose_its_split_or_features_on_both_sides() -> None:
    assert REFIT_KEEPS == JOB_REFIT_KEEPS
    refit = ["--from-run", "out/r1/", "--output", "out/"]
    values: dict[str, int | float | str] = {
        "test_fraction": 0.5,
        "seed": 7,
        "engine": "tensorflow",
        "precision": "int8",
    }
    assert set(values) == set(REFIT_KEEPS)
    for name, value in values.items():
        accepted = api({name: value})
        assert isinstance(accepted, RunOptions)
        refused = job_parses([*refit, *job_arguments(accepted)])
        assert f"--{name.replace('_', '-')} is not taken by a refit" in str(refused)
        assert isinstance(job_parses_option(name, as_argument(value)), JobOptions)
    assert isinstance(job_parses([*refit, "--pca-k", "5"]), JobOptions)


def test_a_predict_run_refuses_the_options_its_trained_run_decides_on_both_sides() -> None:
    assert set(JOB_PREDICT_REFUSES) - {"from_run"} == set(PREDICT_REFUSES)
    trained = "s3://featurizer-data/runs/fruits/trained/"
    for name in PREDICT_REFUSES:
        value: Any = CHOICES[name][-1] if name in CHOICES else NUMBERS.get(name, {}).get("minimum", True)
        accepted = api({name: value})
        assert isinstance(accepted, RunOptions), name
        refused = job_parses(job_arguments(accepted, trained))
        assert f"--{name.replace('_', '-')} is not taken by a predict run" in str(refused)
    predicting = job_parses(job_arguments(RunOptions(batch_size=8, no_store=True), trained))
    assert isinstance(predicting, JobOptions)
    assert (predicting.model_run, predicting.model, predicting.batch_size) == (trained, None, 8)


def test_the_client_waits_for_the_states_the_api_ends_runs_in() -> None:
    from common.runs import COMPLETED, ENDED_STATES
    from featurizer.remote import ENDED, SUCCEEDED

    assert set(ENDED) == ENDED_STATES
    assert SUCCEEDED == (COMPLETED,)
