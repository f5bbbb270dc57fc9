"""Per-dataset debounce state and its transitions: plain functions, no AWS.

Times are epoch seconds taken from the events themselves (S3 event time, scheduled-event time, EMR event
time), never from the Lambda's clock, so the decisions depend only on the event stream.

The rule that makes drops exact:

* A run is *claimed* at time ``claimed_at``; the job lists ``inbox/<dataset>/`` after that (EMR start-up takes
  far longer than the claim), so every object whose S3 event time is ``<= claimed_at`` is read by that run.
  Such events (late duplicates, reordered batches) are *covered* and ignored.
* An event newer than ``claimed_at`` marks the dataset *pending*: it leads to a later run once uploads have
  been quiet for ``quiet_seconds`` (or at once after an ``_START`` marker), and never while the dataset has a
  run in progress. So one upload of 10,000 images starts one run, and images arriving during a run start the
  next one after it.
* Quiet is judged only as far as the events have been read: with upload events still in the queue since
  ``backlog_seconds`` ago, a dataset is quiet when its newest recorded event is ``quiet_seconds`` older than
  ``now - backlog_seconds``. A backlog thus never passes for quiet; an ``_START`` marker does not wait for it
  (the images uploaded before the marker are in S3, so the claim covers them whatever their events do).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import StrEnum

LAUNCH_GRACE_SECONDS = 120  # a claimed run not confirmed launched after this is launched again (same run id)
# A run with no end event this long after its EMR timeout is handed to the reconciler, which asks EMR for
# its state; the dataset waits that long again for the answer.
LEASE_MARGIN_SECONDS = 1800
MAX_LAUNCH_ATTEMPTS = 3
UNMEASURED = math.inf  # the backlog of a caller that does not read the queue: only an _START marker claims


class Phase(StrEnum):
    IDLE = "idle"
    STARTING = "starting"  # run id claimed, EMR start not yet confirmed
    RUNNING = "running"


@dataclass(frozen=True)
class Upload:
    """One object-created event under inbox/<dataset>/."""

    dataset: str  # the drop unit's name (common/drop_units.py): the dataset, or one prediction batch of it
    key: str
    time: float
    is_start_marker: bool = False


@dataclass(frozen=True)
class DatasetState:
    dataset: str  # the drop unit's name, as in Upload
    version: int = 0
    phase: Phase = Phase.IDLE
    pending: bool = False
    start_requested: bool = False
    pending_events: int = 0
    first_pending_at: float | None = None
    last_event_at: float | None = None
    claimed_at: float | None = None
    run_id: str | None = None
    job_run_id: str | None = None
    active_until: float | None = None
    launch_attempts: int = 0
    last_run_id: str | None = None
    last_outcome: str | None = None
    last_error: str | None = None
    notice_due: str | None = None  # the run whose "could not start" notice is not yet published
    history: tuple[str, ...] = field(default=())


class Action(StrEnum):
    WAIT = "wait"
    CLAIM = "claim"
    RELAUNCH = "relaunch"
    GIVE_UP = "give_up"


def is_covered(state: DatasetState, upload: Upload) -> bool:
    return state.claimed_at is not None and upload.time <= state.claimed_at


def record_uploads(state: DatasetState, uploads: list[Upload]) -> DatasetState:
    """Fold a batch of object-created events into the state (duplicates and covered events change nothing)."""
    fresh = [u for u in uploads if u.dataset == state.dataset and not is_covered(state, u)]
    if not fresh:
        return state
    newest = max(u.time for u in fresh)
    oldest = min(u.time for u in fresh)
    return replace(
        state,
        pending=True,
        start_requested=state.start_requested or any(u.is_start_marker for u in fresh),
        pending_events=state.pending_events + len(fresh),
        first_pending_at=oldest if state.first_pending_at is None else min(state.first_pending_at, oldest),
        last_event_at=newest if state.last_event_at is None else max(state.last_event_at, newest),
    )


def decide(state: DatasetState, now: float, quiet_seconds: int, backlog_seconds: float) -> Action:
    """What the dataset needs at ``now``, when every upload event older than ``backlog_seconds`` has been
    recorded (0: the uploads queue is empty)."""
    if state.phase is Phase.STARTING:
        assert state.claimed_at is not None
        if now < state.claimed_at + LAUNCH_GRACE_SECONDS:
            return Action.WAIT
        return Action.GIVE_UP if state.launch_attempts >= MAX_LAUNCH_ATTEMPTS else Action.RELAUNCH
    if state.phase is Phase.RUNNING and not lease_expired(state, now):
        return Action.WAIT
    if not state.pending:
        return Action.WAIT
    if state.start_requested:
        return Action.CLAIM
    assert state.last_event_at is not None
    recorded_until = now - backlog_seconds
    return Action.CLAIM if recorded_until >= state.last_event_at + quiet_seconds else Action.WAIT


def lease_expired(state: DatasetState, now: float) -> bool:
    return state.phase is Phase.RUNNING and state.active_until is not None and now >= state.active_until


def claim(state: DatasetState, now: float, run_id: str) -> DatasetState:
    """Reserve a run covering every upload up to ``now``; the caller then starts it on EMR."""
    return replace(
        state,
        phase=Phase.STARTING,
        pending=False,
        start_requested=False,
        pending_events=0,
        first_pending_at=None,
        claimed_at=now,
        run_id=run_id,
        job_run_id=None,
        active_until=None,
        launch_attempts=1,
        last_error=None,
        last_run_id=run_id,
        history=(*state.history[-9:], run_id),
    )


def relaunch_attempt(state: DatasetState) -> DatasetState:
    """Count one more start attempt of the claimed run (same run id, so the same EMR clientToken)."""
    return replace(state, launch_attempts=state.launch_attempts + 1)


def launch_failed(state: DatasetState, run_id: str, error: str) -> DatasetState:
    if state.run_id != run_id or state.phase is not Phase.STARTING:
        return state
    return replace(state, last_error=error[:500])


def give_up(state: DatasetState) -> DatasetState:
    """Stop retrying a run EMR keeps refusing; its failure notice is now due (published by the sweep until
    it is sent). The images stay in the inbox; the next upload or ``_START`` marker claims a new run."""
    return replace(
        state,
        phase=Phase.IDLE,
        run_id=None,
        job_run_id=None,
        active_until=None,
        pending=False,
        start_requested=False,
        last_outcome="START_FAILED",
        notice_due=state.run_id,
    )


def notice_sent(state: DatasetState, run_id: str) -> DatasetState:
    return replace(state, notice_due=None) if state.notice_due == run_id else state


def launched(
    state: DatasetState, run_id: str, job_run_id: str, now: float, lease_seconds: int
) -> DatasetState:
    if state.run_id != run_id or state.phase is not Phase.STARTING:
        return state
    return replace(
        state, phase=Phase.RUNNING, job_run_id=job_run_id, active_until=now + lease_seconds, last_error=None
    )


def ended(state: DatasetState, run_id: str, outcome: str) -> DatasetState:
    """The active run finished (SUCCESS, FAILED or CANCELLED): the dataset may start its next run."""
    if state.run_id != run_id or state.phase is Phase.IDLE:
        return state
    return replace(
        state, phase=Phase.IDLE, run_id=None, job_run_id=None, active_until=None, last_outcome=outcome
    )


def extend_lease(state: DatasetState, now: float) -> DatasetState:
    """The reconciler was asked about the run: wait for it (it releases the dataset once EMR says ended)."""
    return replace(state, active_until=now + LEASE_MARGIN_SECONDS)


def expire_lease(state: DatasetState) -> DatasetState:
    """The run has no record left to reconcile: release the dataset without an answer."""
    return replace(
        state, phase=Phase.IDLE, run_id=None, job_run_id=None, active_until=None, last_outcome="NO_END_EVENT"
    )


def next_check_at(state: DatasetState, quiet_seconds: int) -> float | None:
    """When the sweep should look at this dataset again (None: nothing to do until the next event)."""
    if state.notice_due is not None:
        return state.claimed_at or 0.0
    if state.phase is Phase.STARTING:
        assert state.claimed_at is not None
        return state.claimed_at + LAUNCH_GRACE_SECONDS
    if state.phase is Phase.RUNNING:
        return state.active_until
    if state.pending:
        assert state.last_event_at is not None
        return state.last_event_at if state.start_requested else state.last_event_at + quiet_seconds
    return None
