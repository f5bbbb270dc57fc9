"""Who is calling (the IAM identity API Gateway verified), and which runs that caller may see and cancel.

A run belongs to the identity that started it, compared whole: for an assumed role that is the role *and*
its session name (``arn:aws:sts::<account>:assumed-role/<role>/<session>``), which SSO and most federations
set to the person. Sessions of the operator role (``OperatorRoleArn``) may see and cancel every run,
including those started by a drop (which belong to no caller).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from common.errors import InvalidRequestError, RunForbiddenError

# An IAM role ARN may carry a path (role/<path>/<name>); its sessions' ARNs carry the name only.
ROLE_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):role/(?:[^/]+/)*(?P<name>[^/]+)"
)
SESSION_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):sts::(?P<account>\d{12}):assumed-role/(?P<name>[^/]+)/[^/]+"
)


def _role(pattern: re.Pattern[str], arn: str) -> tuple[str, str, str] | None:
    match = pattern.fullmatch(arn)
    return (match["partition"], match["account"], match["name"]) if match else None


@dataclass(frozen=True)
class Caller:
    arn: str
    is_operator: bool

    @classmethod
    def of(cls, arn: str | None, operator_role_arn: str | None) -> Caller:
        if not arn:
            raise InvalidRequestError(
                "authorization", "the request carries no IAM identity: sign it with SigV4", status_code=403
            )
        operator = _role(ROLE_ARN, operator_role_arn) if operator_role_arn else None
        return cls(arn=arn, is_operator=operator is not None and _role(SESSION_ARN, arn) == operator)

    def check_may_access(self, run: dict[str, Any]) -> None:
        """RunForbiddenError unless this caller started the run or is an operator."""
        if not self.is_operator and run.get("requested_by") != self.arn:
            raise RunForbiddenError(str(run["run_id"]))
