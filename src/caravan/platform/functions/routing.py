"""Alias routing: which version serves one request sent to an alias.

Lambda's model is probabilistic (one uniform draw per request): with
``AdditionalVersionWeights {"2": 0.1}`` a draw below 0.1 runs version 2, anything else runs the
alias's ``FunctionVersion``. The ``random.Random`` is injected so tests and replays are
deterministic with a seed.
"""

from __future__ import annotations

import random

from caravan.platform.functions.records import AliasRecord


def choose_version(alias: AliasRecord, rng: random.Random) -> str:
    """The version that serves this request (one draw, only when the alias has a split)."""
    for version, weight in alias.weights.items():
        if weight <= 0.0:
            return alias.function_version
        if weight >= 1.0 or rng.random() < weight:
            return version
    return alias.function_version
