"""Drop-to-run orchestration: record uploads, start a run when a dataset is due, release it when it ends."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from botocore.exceptions import BotoCoreError, ClientError

from common import records, tracking
from common import trained as trained_runs
from common.config import JobSettings
from common.drop_units import DropUnit
from common.errors import PermissionMissingError, RunStartError, UnreadableOutputError
from common.outputs import count_objects
from common.plan import InputSize
from common.runs import INBOX_PREFIX, RunSpec, make_run_id, output_uri
from drop_to_run import debounce
from drop_to_run.debounce import Action, DatasetState, Phase, Upload
from drop_to_run.store import DatasetStore
from notify.messages import Notice, start_failed_notice

logger = Logger(child=True)
# A start counts its dataset's objects for at most this long (1,000 keys a request: some 10^5 objects);
# a larger dataset is sized as the largest run the limits allow (common/plan.py).
COUNT_BUDGET_SECONDS = 10


@dataclass(frozen=True)
class StartOutcome:
    action: Action
    run_id: str | None = None
    job_run_id: str | None = None


@dataclass
class DropToRun:
    """Each ``dataset`` below names a drop unit: a dataset or a prediction batch (common/drop_units.py)."""

    store: DatasetStore
    table: Any
    settings: JobSettings
    quiet_seconds: int
    emr: Any
    s3: Any
    launch: Callable[[RunSpec], dict[str, str]]  # idempotent EMR start (key: run_id)
    publish: Callable[[Notice], Any]  # idempotent (key: notice.key), to the run-reports topic

    @property
    def lease_seconds(self) -> int:
        return self.settings.execution_timeout_minutes * 60 + debounce.LEASE_MARGIN_SECONDS

    def record(self, dataset: str, uploads: list[Upload]) -> DatasetState:
        _, after = self.store.mutate(dataset, lambda state: debounce.record_uploads(state, uploads))
        return after

    def start_if_due(self, dataset: str, now: float, backlog_seconds: float) -> StartOutcome:
        """Claim and start a run if the dataset is due at ``now`` with the uploads queue's backlog (seconds);
        relaunch or give up a stuck claim; hand a run whose lease expired to the reconciler; publish a "could
        not start" notice still due."""
        chosen: list[Action] = []
        reconciled: dict[str, bool] = {}  # run id -> still on record; asked once, however often change runs

        def change(state: DatasetState) -> DatasetState:
            chosen.clear()
            if debounce.lease_expired(state, now):
                run_id = str(state.run_id)
                if run_id not in reconciled:  # a run still on record is reconciled (asked of EMR)
                    reconciled[run_id] = records.reschedule_run(self.table, run_id, now)
                logger.warning(
                    "run lease expired without an end event",
                    extra={"run_id": run_id, "reconciled": reconciled[run_id]},
                )
                if reconciled[run_id]:
                    return debounce.extend_lease(state, now)
                state = debounce.expire_lease(state)
            action = debounce.decide(state, now, self.quiet_seconds, backlog_seconds)
            chosen.append(action)
            if action is Action.CLAIM:
                run_id = make_run_id(
                    DropUnit.named(dataset).dataset, _utc(now), salt=f"{dataset}|{state.version}"
                )
                return debounce.claim(state, now, run_id)
            if action is Action.RELAUNCH:
                return debounce.relaunch_attempt(state)
            if action is Action.GIVE_UP:
                return debounce.give_up(state)
            return state

        before, after = self.store.mutate(dataset, change)
        action = chosen[-1] if chosen else Action.WAIT
        if action is Action.GIVE_UP:
            outcome = StartOutcome(action, before.run_id)
        elif action in (Action.CLAIM, Action.RELAUNCH) and after.phase is Phase.STARTING and after.run_id:
            outcome = self._launch(after, now, action)
        else:
            outcome = StartOutcome(Action.WAIT)
        if after.notice_due is not None:
            self._send_start_failed(after)
        return outcome

    def _input_size(self, unit: DropUnit) -> InputSize | None:
        """The unit's objects, counted within COUNT_BUDGET_SECONDS, which size the start request (None:
        not counted, sized as the template says; the run starts all the same)."""
        try:
            return count_objects(
                self.s3, self.settings.data_bucket, unit.prefix, budget_seconds=COUNT_BUDGET_SECONDS
            )
        except (PermissionMissingError, ClientError, BotoCoreError):
            logger.exception("could not count the unit's objects", extra={"unit": unit.name})
            return None

    def _spec(self, unit: DropUnit, run_id: str) -> RunSpec:
        """The run a drop starts: a training run of the dataset, or a predict run of a batch with the
        dataset's newest trained run (RunStartError if it has none: retried, then e-mailed)."""
        bucket = self.settings.data_bucket
        output = output_uri(bucket, unit.dataset)
        trained = None
        if unit.predicts:
            try:
                trained = trained_runs.latest_trained_run(self.s3, bucket, unit.dataset)
            except (PermissionMissingError, UnreadableOutputError, ClientError, BotoCoreError) as error:
                raise RunStartError(f"could not look for a trained run under {output}: {error}") from error
            if trained is None:
                raise RunStartError(
                    f"found no completed run of dataset {unit.dataset!r} that trained a classifier under "
                    f"{output} (its runs are looked through newest first for "
                    f"{trained_runs.LOOKUP_BUDGET_SECONDS} s): drop its labelled images into "
                    f"s3://{bucket}/{INBOX_PREFIX}{unit.dataset}/<class>/ and wait for that run to complete, "
                    'or POST /runs with "predict_with" naming the trained run',
                    "NoTrainedRun",
                )
        return RunSpec(
            run_id=run_id,
            dataset=unit.dataset,
            input_uri=f"s3://{bucket}/{unit.prefix}",
            output_uri=output,
            trigger="drop",
            input_size=self._input_size(unit),
            predict_with=trained,
            predict_with_uri=None if trained is None else f"{output}{trained}/",
        )

    def _launch(self, state: DatasetState, now: float, action: Action) -> StartOutcome:
        assert state.run_id is not None
        run_id = state.run_id
        try:
            spec = self._spec(DropUnit.named(state.dataset), run_id)
            result = self.launch(spec)
        except IdempotencyAlreadyInProgressError:
            logger.info("run start already in progress elsewhere", extra={"run_id": run_id})
            return StartOutcome(Action.WAIT, run_id)
        except RunStartError as error:
            logger.exception("could not start run", extra={"run_id": run_id, "dataset": state.dataset})
            reason = str(error)
            self.store.mutate(state.dataset, lambda s: debounce.launch_failed(s, run_id, reason))
            return StartOutcome(Action.WAIT, run_id)
        job_run_id = result["job_run_id"]
        self.store.mutate(
            state.dataset, lambda s: debounce.launched(s, run_id, job_run_id, now, self.lease_seconds)
        )
        logger.info(
            "run started",
            extra={"run_id": run_id, "dataset": state.dataset, "job_run_id": job_run_id, "action": action},
        )
        return StartOutcome(action, run_id, job_run_id)

    def _send_start_failed(self, state: DatasetState) -> None:
        """Publish the due "could not start" notice. A failed publish raises (the sweep counts it in
        SweepErrors, which is alarmed) and stays due: the next sweep tries again."""
        run_id = str(state.notice_due)
        notice = start_failed_notice(
            bucket=self.settings.data_bucket,
            unit=DropUnit.named(state.dataset),
            run_id=run_id,
            attempts=state.launch_attempts,
            error=state.last_error,
        )
        self.publish(notice)
        self.store.mutate(state.dataset, lambda s: debounce.notice_sent(s, run_id))

    def run_ended(self, job_run_id: str, outcome: str, now: float) -> StartOutcome | None:
        """Release the drop unit of a finished drop run (an API run holds none), then start its next run if
        an ``_START`` marker waits (the queue's backlog is the sweep's to read: it starts the next run for
        quiet uploads)."""
        run = tracking.run_of_job_run(
            job_run_id, emr=self.emr, table=self.table, application_id=self.settings.application_id
        )
        if run is None:
            logger.info("job run not started by this service", extra={"job_run_id": job_run_id})
            return None
        run_id = str(run["run_id"])
        record = records.get_run(self.table, run_id) or {}
        dropped = record.get("trigger") == "drop"  # an API run's input is any folder, and holds no unit
        unit = DropUnit.of_input(str(record["input"])) if dropped else DropUnit(str(run["dataset"]))
        self.store.mutate(unit.name, lambda state: debounce.ended(state, run_id, outcome))
        records.mark_run(self.table, run_id, records.RELEASED)
        return self.start_if_due(unit.name, now, debounce.UNMEASURED)


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)
