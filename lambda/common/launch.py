"""Starting a job run at most once per run id, for every function that starts runs (API, drop-to-run)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function

from common.config import JobSettings, StateSettings
from common.emr import launch_run
from common.errors import RunStartError
from common.runs import RunSpec


def idempotent_launcher(
    *, job: JobSettings, state: StateSettings, emr: Any, table: Any, metrics: Metrics
) -> tuple[Callable[[RunSpec], dict[str, str]], IdempotencyConfig]:
    """`launch(run)`, idempotent on the run id (DynamoDB), and its config for `register_lambda_context`.

    Only the side effect (StartJobRun + the run record) is guarded, so a retry after a timeout in the middle
    of it returns the first result instead of starting a second job run.
    """
    persistence, config = state.idempotency(key="run_id")

    @idempotent_function(
        data_keyword_argument="run", persistence_store=persistence, config=config, key_prefix="launch"
    )
    def start_run_once(run: RunSpec) -> dict[str, str]:
        try:
            started = launch_run(run, settings=job, emr=emr, table=table)
        except RunStartError:
            metrics.add_metric(name="RunsFailedToStart", unit=MetricUnit.Count, value=1)
            raise
        metrics.add_metric(name="RunsStarted", unit=MetricUnit.Count, value=1)
        return started

    return lambda run: start_run_once(run=run), config
