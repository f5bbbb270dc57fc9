"""Named exceptions shared by the control-plane functions."""

from __future__ import annotations


class ControlPlaneError(Exception):
    """Base class of every error raised on purpose by the control plane."""


class MissingConfigurationError(ControlPlaneError):
    """A required environment variable is missing or unusable (raised at cold start)."""

    def __init__(self, name: str, problem: str = "is not set") -> None:
        self.name = name
        super().__init__(
            f"environment variable {name} {problem}; template.yaml sets it for every function that needs it"
        )


class InvalidRequestError(ControlPlaneError):
    """A request that cannot be served; rendered as a 4xx JSON body naming the field and the problem (and a
    Retry-After header when waiting is the fix)."""

    def __init__(
        self, field: str, problem: str, status_code: int = 400, retry_after_seconds: int | None = None
    ) -> None:
        self.field = field
        self.problem = problem
        self.status_code = status_code
        self.retry_after_seconds = retry_after_seconds
        super().__init__(f"{field}: {problem}")


class RunNotFoundError(InvalidRequestError):
    def __init__(self, run_id: str) -> None:
        super().__init__("run_id", f"no run with id {run_id!r}", status_code=404)


class RunAlreadyFinishedError(InvalidRequestError):
    def __init__(self, run_id: str, state: str) -> None:
        super().__init__("run_id", f"run {run_id!r} already finished with state {state}", status_code=409)


class RunForbiddenError(InvalidRequestError):
    def __init__(self, run_id: str) -> None:
        super().__init__(
            "run_id",
            f"run {run_id!r} was started by another caller: only its requester, or a session of the "
            "deployment's operator role (OperatorRoleArn), may read or cancel it",
            status_code=403,
        )


class TooManyRunsError(InvalidRequestError):
    def __init__(self, in_flight: int, cap: int, retry_after_seconds: int) -> None:
        super().__init__(
            "body",
            f"you have {in_flight} runs not yet ended, and the most is {cap} (MaxRunsInFlightPerCaller): "
            "retry once one has ended, or cancel one",
            status_code=429,
            retry_after_seconds=retry_after_seconds,
        )


class RunNotStartedError(InvalidRequestError):
    def __init__(self, run_id: str, why_not: str | None) -> None:
        problem = (
            f"run {run_id!r} has no job run to cancel: {why_not}"
            if why_not
            else f"run {run_id!r} is still starting; retry in a few seconds"
        )
        super().__init__("run_id", problem, status_code=409)


class PermissionMissingError(ControlPlaneError):
    """AWS refused this function a call it needs: a deployment problem, named for the operator."""

    def __init__(self, action: str, resource: str) -> None:
        self.action = action
        super().__init__(
            f"access denied to {resource}: this function's role needs {action} on it "
            "(template.yaml grants it; was the stack changed by hand?)"
        )


class StateContentionError(ControlPlaneError):
    """Optimistic-locking retries on a dataset record were exhausted (the batch is retried by SQS)."""


class RunStartError(ControlPlaneError):
    """EMR Serverless refused to start a job run (``code``: its error code, which callers may be shown), or a
    prediction batch's drop found no trained run to predict with."""

    def __init__(self, message: str, code: str = "unknown") -> None:
        self.code = code
        super().__init__(message)


class UnreadableOutputError(ControlPlaneError):
    """A run output the job writes as a JSON object is something else: the run's outputs are not trusted."""

    def __init__(self, uri: str, problem: str) -> None:
        super().__init__(f"{uri} {problem}: it was not written by the job, whose outputs are JSON objects")
