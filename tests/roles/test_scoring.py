"""The role math against hand-computed values (docs/paper.md sections 2-3)."""

import math

import pytest

from escpro.roles.scoring import strategy_prior, turn_reward


def test_prior_matches_hand_computed_softmax():
    # scores 10, 5, 5 at T = 5: exp(2), exp(1), exp(1) normalised
    p = strategy_prior({"a": 10, "b": 5, "c": 5}, 5.0)
    e2, e1 = math.exp(2), math.exp(1)
    assert p["a"] == pytest.approx(e2 / (e2 + 2 * e1))
    assert p["b"] == pytest.approx(e1 / (e2 + 2 * e1))
    assert list(p) == ["a", "b", "c"]
    assert sum(p.values()) == pytest.approx(1.0)


def test_prior_temperature_and_equal_scores():
    assert strategy_prior({"a": 3, "b": 3}, 5.0) == {"a": 0.5, "b": 0.5}
    sharp = strategy_prior({"a": 10, "b": 1}, 0.5)
    assert sharp["a"] > 0.99999
    with pytest.raises(ValueError):
        strategy_prior({"a": 1}, 0)


def test_turn_reward_hand_computed():
    # (E + I + H + 7 S) / 10 - 3
    assert turn_reward(4, 4, 4, 4) == pytest.approx(1.0)
    assert turn_reward(0, 0, 0, 0) == pytest.approx(-3.0)
    assert turn_reward(3, 2, 4, 3) == pytest.approx((3 + 2 + 4 + 21) / 10 - 3)  # 0.0
    assert turn_reward(1, 1, 1, 4, alpha=1, bias=0) == pytest.approx(7 / 4)
