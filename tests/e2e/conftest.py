"""End-to-end fixtures: one local stack (``python -m local stack``) for the whole session, stopped at the end
whatever happened, and checked to leave no process or port behind."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from featurizer.samples import generate
from tests.e2e import stack as local_stack
from tests.e2e.stack import RunningStack, job_state, wait_for

TEST_TIME_LIMIT_SECONDS = 300


@pytest.fixture(autouse=True)
def hard_time_limit() -> Iterator[None]:
    """Fail a test that runs longer than TEST_TIME_LIMIT_SECONDS (the stack is still stopped afterwards)."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"end-to-end test exceeded its {TEST_TIME_LIMIT_SECONDS} s limit")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TEST_TIME_LIMIT_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, weights: Path) -> Iterator[RunningStack]:
    running = local_stack.start(tmp_path_factory.mktemp("local-stack") / "state", weights)
    try:
        yield running
    finally:
        problems = local_stack.stop(running)
    assert not problems, f"the local stack did not shut down cleanly: {problems}"


@pytest.fixture
def dataset() -> str:
    return f"e2e{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def idle_dataset(stack: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> str:
    """60 images in a dataset whose drop run has ended: API runs on it start no drop run."""
    name = f"api{uuid.uuid4().hex[:8]}"
    folder = tmp_path_factory.mktemp("idle") / name
    generate(folder, per_class=12, seed=3, defects=False)
    stack.upload(folder, name)
    (folder.parent / "_START").write_bytes(b"")
    stack.client("s3").upload_file(str(folder.parent / "_START"), "featurizer-data", f"inbox/{name}/_START")
    (run,) = wait_for(lambda: stack.job_runs(name), 60, "the drop run of the API dataset")
    stack.client("emr-serverless").cancel_job_run(applicationId=stack.application_id, jobRunId=run["id"])
    wait_for(lambda: job_state(stack, run["id"]) == "CANCELLED", 60, "the drop run to be cancelled")
    return name
