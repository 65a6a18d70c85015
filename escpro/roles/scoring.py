"""The role math: strategy prior and turn reward (pure functions, docs/paper.md section 2/3)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from escpro import paper_defaults as P


def strategy_prior(
    scores: Mapping[str, float], temperature: float = P.PRIOR_TEMPERATURE.value
) -> dict[str, float]:
    """P_i = exp(s_i / T) / sum_j exp(s_j / T), computed stably; keeps the input's key order."""
    if not scores:
        return {}
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    top = max(scores.values())
    exps = {k: math.exp((v - top) / temperature) for k, v in scores.items()}
    total = sum(exps.values())
    return {k: e / total for k, e in exps.items()}


def turn_reward(
    empathy: float,
    information: float,
    humanoid: float,
    strategy: float,
    alpha: float = P.REWARD_ALPHA.value,
    bias: float = P.REWARD_BIAS.value,
) -> float:
    """R = (E + I + H + alpha * S) / (3 + alpha) + b."""
    return (empathy + information + humanoid + alpha * strategy) / (3.0 + alpha) + bias
