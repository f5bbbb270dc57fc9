"""packaging/selftest.py's verdict: what it takes for PASS, and the words of each FAIL."""

from __future__ import annotations

import copy
import importlib.util
import sys
from typing import Any

import pytest

from tests.paths import ROOT

sys.path.insert(0, str(ROOT / "packaging"))  # as when it runs as a script: its own folder comes first
spec = importlib.util.spec_from_file_location("selftest", ROOT / "packaging" / "selftest.py")
selftest = sys.modules["selftest"] = importlib.util.module_from_spec(spec)  # dataclasses look it up
spec.loader.exec_module(selftest)

SERVICE = selftest.Service("https://api", "data", "eu-west-1", s3=None, sign=None, model_key="models/m.onnx")
PINS = selftest.pinned_versions()
WORKER = {
    "python": "3.11.7",
    "executable": "/home/hadoop/environment/bin/python",
    "machine": "x86_64",
    "region": "eu-west-1",
    **{name: PINS[name] for name in selftest.CHECKED_PACKAGES},
}
ACCESS = [
    {"check": "list the input", "uri": "s3://data/inbox/x/", "expected": "allowed", "observed": "allowed"},
    {
        "check": "write into the input",
        "uri": "s3://data/inbox/x/_p/",
        "expected": "refused",
        "observed": "refused",
    },
]
MANIFEST = {
    "counts": {"images_found": 25, "images_rejected": 4},
    "region": "eu-west-1",
    "versions": {"python": "3.11.7", "spark": PINS["pyspark"]},
    "model": {"model_file": "s3://artifacts/models/m.onnx", "model_sha256": "ab" * 32},
    "self_test": {"workers": [WORKER], "access": [c | {"passed": True} for c in ACCESS]},
}
RUN = {"state": "COMPLETED", "summary": {"images_featurized": 21, "images_rejected": 4, "accuracy": 1.0}}


DEPLOYED = selftest.Sidecar("ab" * 32)


def judged(change: Any = None, *, run: dict[str, Any] = RUN, sidecar: Any = DEPLOYED) -> Any:
    manifest = copy.deepcopy(MANIFEST)
    if change:
        change(manifest)
    return selftest.judge(run, manifest, (25, 4), SERVICE, sidecar)


def test_a_run_as_planned_passes_naming_what_it_checked() -> None:
    verdict = judged()

    assert verdict.passed
    assert verdict.lines[0].startswith("21 images featurized, 4 broken ones rejected, accuracy 1.000")
    assert "allowed to list the input; refused to write into the input" in "\n".join(verdict.lines)
    assert f"model: sha256 {'ab' * 8}... as its .sha256 file says" in verdict.lines


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda m: m["self_test"]["workers"][0].update(python="3.9.16", executable="/usr/bin/python3"),
         "a worker ran Python 3.9.16 at /usr/bin/python3, not the job environment's Python 3.11"),
        (lambda m: m["self_test"]["workers"][0].update(numpy="2.2.6"),
         f"a worker ran numpy 2.2.6, the environment pins {PINS['numpy']}: rebuild and upload it"),
        (lambda m: m.update(region="us-east-1"),
         "the driver's AWS region is 'us-east-1', the stack's is eu-west-1"),
        (lambda m: m["self_test"]["access"][1].update(observed="allowed", passed=False),
         "the job's role may write into the input (s3://data/inbox/x/_p/), and must not"),
        (lambda m: m["counts"].update(images_rejected=0), "the run found 25 images and rejected 0"),
        (lambda m: m["self_test"].update(workers=[]), "the run reported no worker environment"),
        (lambda m: m["versions"].update(python="3.9.16"),
         "the driver ran Python 3.9.16, not the job environment's Python 3.11"),
        (lambda m: m["model"].update(model_file="s3://artifacts/models/old/m.onnx"),
         "the run loaded s3://artifacts/models/old/m.onnx, not the stack's model models/m.onnx (ModelKey)"),
        (lambda m: m["self_test"]["access"][1].update(
            observed="allowed", passed=False, detail="the probe could not be deleted: AccessDenied"),
         "and must not: give it no more than template.yaml's JobRuntimeRole grants (the probe could not be "
         "deleted: AccessDenied)"),
        (lambda m: m["versions"].update(spark="3.5.1"),
         f"the application runs Spark 3.5.1, the environment's pyspark is {PINS['pyspark']}"),
    ],
)  # fmt: skip
def test_each_finding_is_a_fail_that_says_what_to_do(change: Any, problem: str) -> None:
    verdict = judged(change)

    assert not verdict.passed
    assert any(problem in line for line in verdict.lines), verdict.lines


def test_a_model_other_than_the_deployed_one_fails_with_both_digests() -> None:
    verdict = judged(sidecar=selftest.Sidecar("cd" * 32))

    assert not verdict.passed
    assert verdict.lines == [f"the run's model has sha256 {'ab' * 32}, its .sha256 file says {'cd' * 32}"]


def test_a_deployed_model_whose_sha256_file_cannot_be_read_fails() -> None:
    verdict = judged(sidecar=selftest.Sidecar(problem="s3://artifacts/models/m.onnx.sha256 cannot be read"))

    assert verdict.lines == ["s3://artifacts/models/m.onnx.sha256 cannot be read"]


def test_a_model_outside_s3_passes_without_claiming_a_comparison() -> None:
    verdict = judged(sidecar=selftest.Sidecar())

    assert verdict.passed
    assert f"model: sha256 {'ab' * 8}... (not compared: a model outside S3)" in verdict.lines


def test_a_run_that_did_not_complete_fails_with_its_stage_and_reason() -> None:
    failed = {"state": "FAILED", "failure": {"stage": "fit", "message": "the training split holds 1 class"}}

    verdict = judged(run=failed)

    assert verdict.lines == ["the run ended FAILED in fit: the training split holds 1 class"]


def test_the_job_s_own_error_line_is_the_cause_of_a_run_that_stopped_before_its_flag() -> None:
    log = [
        "[read] started",
        "error: --model s3://a/m.onnx has sha256 1, but its .sha256 file says 0",
        "WARN py4j: an error: in a library's own words",
        "done",
    ]

    assert selftest._cause_from_log(log) == "--model s3://a/m.onnx has sha256 1, but its .sha256 file says 0"


class Answers:
    """An API that gives the self-test these (status, body) answers to GET, and records what it was asked."""

    def __init__(self, *answers: tuple[int, dict[str, Any]]) -> None:
        self.answers, self.asked = list(answers), []

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        self.asked.append(f"{method} {path}")
        return self.answers.pop(0)


def test_the_self_test_stops_following_a_run_the_api_keeps_refusing() -> None:
    refusal = (503, {"problem": "Service Unavailable"})
    api = Answers((200, {"state": "RUNNING"}), refusal, refusal, (200, {"state": "RUNNING"}), *[refusal] * 3)

    run, problem = selftest.follow(api, "r1", timeout=60, every=0)

    assert run == {"state": "RUNNING"}
    assert problem == "GET /runs/r1 answered 503: Service Unavailable (3 times in a row)"
    assert len(api.asked) == 7


def test_a_run_is_followed_until_its_emr_job_run_has_ended_too() -> None:
    api = Answers(
        (200, {"state": "FAILED", "emr": {"state": "RUNNING"}}),
        (200, {"state": "FAILED", "emr": {"state": "FAILED"}}),
    )

    run, problem = selftest.follow(api, "r1", timeout=60, every=0)

    assert (run["emr"]["state"], problem) == ("FAILED", None)


def test_an_answer_that_is_not_json_is_kept_as_the_problem() -> None:
    assert selftest._body(b"<html>502 Bad Gateway</html>") == {"problem": "<html>502 Bad Gateway</html>"}
    assert selftest._body(b"[1]") == {"problem": "[1]"}
