"""The debounce state machine (drop_to_run/debounce.py): plain functions, no AWS."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from drop_to_run import debounce
from drop_to_run.debounce import Action, DatasetState, Phase, Upload

QUIET = 120
NO_BACKLOG = 0.0  # the uploads queue is empty


def up(time: float, name: str = "a.jpg", dataset: str = "ds") -> Upload:
    return Upload(dataset=dataset, key=f"inbox/{dataset}/{name}", time=time, is_start_marker=name == "_START")


def test_uploads_wait_for_the_quiet_period() -> None:
    state = debounce.record_uploads(DatasetState("ds"), [up(100), up(150), up(130)])
    assert (state.pending, state.pending_events, state.first_pending_at, state.last_event_at) == (
        True,
        3,
        100,
        150,
    )
    assert debounce.decide(state, 150 + QUIET - 1, QUIET, NO_BACKLOG) is Action.WAIT
    assert debounce.decide(state, 150 + QUIET, QUIET, NO_BACKLOG) is Action.CLAIM
    assert debounce.next_check_at(state, QUIET) == 150 + QUIET


def test_start_marker_claims_without_waiting() -> None:
    state = debounce.record_uploads(DatasetState("ds"), [up(100), up(101, "_START")])
    assert state.start_requested
    assert debounce.decide(state, 101, QUIET, NO_BACKLOG) is Action.CLAIM
    assert debounce.next_check_at(state, QUIET) == 101


def test_events_up_to_the_claim_are_covered_later_ones_are_pending() -> None:
    state = debounce.claim(debounce.record_uploads(DatasetState("ds"), [up(100)]), now=300, run_id="r1")
    assert not state.pending
    assert debounce.record_uploads(state, [up(100), up(299.5), up(300)]) == state  # duplicates, reordering
    later = debounce.record_uploads(state, [up(300.001, "late.jpg")])
    assert later.pending and later.pending_events == 1


def test_a_running_dataset_waits_for_its_run_to_end() -> None:
    state = debounce.claim(debounce.record_uploads(DatasetState("ds"), [up(100)]), now=300, run_id="r1")
    state = debounce.launched(state, "r1", "job-1", now=301, lease_seconds=9000)
    state = debounce.record_uploads(state, [up(400)])
    assert debounce.decide(state, 5_000, QUIET, NO_BACKLOG) is Action.WAIT
    assert debounce.ended(state, "some-other-run", "SUCCESS") == state
    released = debounce.ended(state, "r1", "SUCCESS")
    assert released.phase is Phase.IDLE and released.last_outcome == "SUCCESS"
    assert debounce.decide(released, 10_000, QUIET, NO_BACKLOG) is Action.CLAIM


def test_lost_end_event_lease_expires() -> None:
    state = debounce.claim(debounce.record_uploads(DatasetState("ds"), [up(100)]), now=300, run_id="r1")
    state = debounce.launched(state, "r1", "job-1", now=301, lease_seconds=1000)
    assert not debounce.lease_expired(state, 1300)
    assert debounce.lease_expired(state, 1301)
    assert debounce.next_check_at(state, QUIET) == 1301
    assert debounce.expire_lease(state).phase is Phase.IDLE


def test_unconfirmed_claim_is_relaunched_then_given_up() -> None:
    state = debounce.claim(debounce.record_uploads(DatasetState("ds"), [up(100)]), now=300, run_id="r1")
    assert debounce.decide(state, 300 + debounce.LAUNCH_GRACE_SECONDS - 1, QUIET, NO_BACKLOG) is Action.WAIT
    assert debounce.decide(state, 300 + debounce.LAUNCH_GRACE_SECONDS, QUIET, NO_BACKLOG) is Action.RELAUNCH
    for _ in range(debounce.MAX_LAUNCH_ATTEMPTS - 1):
        state = debounce.relaunch_attempt(state)
    assert state.run_id == "r1"
    assert debounce.decide(state, 1000, QUIET, NO_BACKLOG) is Action.GIVE_UP
    gave_up = debounce.give_up(state)
    assert (gave_up.phase, gave_up.pending, gave_up.last_outcome) == (Phase.IDLE, False, "START_FAILED")
    assert gave_up.notice_due == "r1"
    assert debounce.next_check_at(gave_up, QUIET) == 300  # due at once: its notice is to be published
    assert debounce.next_check_at(debounce.notice_sent(gave_up, "r1"), QUIET) is None


def test_a_backlog_is_not_quiet_uploads() -> None:
    """Uploads recorded until 150 look quiet at 150 + QUIET, but events sent since 100 still wait in the
    queue: quiet is judged as far as they have been read."""
    state = debounce.record_uploads(DatasetState("ds"), [up(100), up(150)])
    now = 150 + QUIET
    assert debounce.decide(state, now, QUIET, NO_BACKLOG) is Action.CLAIM
    assert debounce.decide(state, now, QUIET, now - 100) is Action.WAIT
    assert debounce.decide(state, now + 60, QUIET, now + 60 - 150) is Action.WAIT  # still unread
    assert debounce.decide(state, now + 60, QUIET, 60) is Action.CLAIM  # read until 150 + QUIET: quiet
    assert debounce.decide(state, now, QUIET, debounce.UNMEASURED) is Action.WAIT


def test_a_start_marker_does_not_wait_for_the_backlog() -> None:
    state = debounce.record_uploads(DatasetState("ds"), [up(100), up(101, "_START")])
    assert debounce.decide(state, 101, QUIET, debounce.UNMEASURED) is Action.CLAIM


times = st.floats(min_value=0, max_value=10_000)


@given(last=times, now=times, backlog=times, more=times)
def test_a_claim_leaves_the_quiet_period_between_the_last_recorded_and_the_first_unread_event(
    last: float, now: float, backlog: float, more: float
) -> None:
    state = debounce.record_uploads(DatasetState("ds"), [up(last)])
    action = debounce.decide(state, now, QUIET, backlog)
    first_unread = now - backlog  # an event still queued was sent at or after this
    if action is Action.CLAIM:
        assert first_unread - last >= QUIET
        assert debounce.decide(state, now, QUIET, NO_BACKLOG) is Action.CLAIM
    else:  # a longer backlog never claims what a shorter one waits for
        assert debounce.decide(state, now, QUIET, backlog + more) is Action.WAIT
        assert debounce.decide(state, now, QUIET, debounce.UNMEASURED) is Action.WAIT
    assert (debounce.decide(state, now, QUIET, NO_BACKLOG) is Action.CLAIM) == (now >= last + QUIET)
