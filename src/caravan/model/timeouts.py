"""How long an action may run before it times out (§1.13), per action type, overridable per action.

AWS's defaults, except that caravan lets every action set its own timeout (``timeoutInMinutes``
or caravan's ``timeoutInSeconds``), not only manual approvals.
"""

from __future__ import annotations

MINUTE = 60.0
HOUR = 60 * MINUTE
DAY = 24 * HOUR

# (category, owner, provider) -> seconds; None in a position matches anything.
_DEFAULTS: tuple[tuple[tuple[str | None, str | None, str | None], float], ...] = (
    (("Approval", None, None), 7 * DAY),
    (("Deploy", "AWS", "CloudFormation"), 3 * DAY),
    (("Deploy", "AWS", "CodeDeploy"), 5 * DAY),
    (("Deploy", "AWS", "CodeDeployToECS"), 5 * DAY),
    (("Invoke", "AWS", "Lambda"), 24 * HOUR),
    (("Invoke", "AWS", "StepFunctions"), 7 * DAY),
    (("Deploy", "AWS", "S3"), 90 * MINUTE),
    (("Build", "AWS", "CodeBuild"), 8 * HOUR),
    (("Test", "AWS", "CodeBuild"), 8 * HOUR),
    ((None, "Custom", None), 24 * HOUR),
)
DEFAULT_TIMEOUT = 1 * HOUR


def default_timeout(category: str, owner: str, provider: str) -> float:
    for (c, o, p), seconds in _DEFAULTS:
        if c in (None, category) and o in (None, owner) and p in (None, provider):
            return seconds
    return DEFAULT_TIMEOUT


def action_timeout(
    category: str,
    owner: str,
    provider: str,
    *,
    timeout_in_minutes: int | None = None,
    timeout_in_seconds: int | None = None,
) -> float:
    """Seconds before the action times out: the action's own setting, else the default."""
    if timeout_in_seconds is not None:
        return float(timeout_in_seconds)
    if timeout_in_minutes is not None:
        return timeout_in_minutes * MINUTE
    return default_timeout(category, owner, provider)
