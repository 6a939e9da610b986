"""Discounted returns on hand-computed cases; loop and matrix forms agree."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from snippets.rl.problem import (discounted_returns, discounted_returns_matrix,
                                 exact_values, random_episode)


@pytest.mark.parametrize("rewards, gamma, expected", [
    ([1.0, 2.0, 3.0], 0.5, [2.75, 3.5, 3.0]),  # 3; 2 + 0.5*3; 1 + 0.5*3.5
    ([0.0, 0.0, 1.0], 0.9, [0.81, 0.9, 1.0]),  # one reward at the end, discounted back
    ([-1.0, -1.0, -1.0, -1.0], 1.0, [-4.0, -3.0, -2.0, -1.0]),  # -1 per step (cliff)
    ([5.0], 0.99, [5.0]),
])
def test_discounted_returns_by_hand(rewards, gamma, expected):
    assert discounted_returns(rewards, gamma) == pytest.approx(expected)


def test_return_counts_only_future_rewards():
    rewards = [5.0, 0.0, 1.0]
    assert discounted_returns(rewards, 1.0)[1] == pytest.approx(1.0)
    # the common mistake, run: "return" as the reward collected from the start up to
    # and including step t. It credits step 1 with the 5 earned before it acted.
    so_far = np.cumsum(rewards).tolist()
    assert so_far[1] == pytest.approx(5.0) and so_far[1] != discounted_returns(
        rewards, 1.0)[1]
    # ...and the whole episode's reward gives every step the same credit, 6
    assert [sum(rewards)] * 3 != discounted_returns(rewards, 1.0)


def test_matrix_form_equals_loop_for_a_batch():
    r = torch.randn(4, 30, dtype=torch.float64)
    loop = torch.tensor([discounted_returns(row.tolist(), 0.95) for row in r],
                        dtype=torch.float64)
    torch.testing.assert_close(discounted_returns_matrix(r, 0.95), loop)
    torch.testing.assert_close(discounted_returns_matrix(r[0], 0.95), loop[0])


def test_exact_values_solve_the_bellman_equation():
    env = gym.make("FrozenLake-v1", is_slippery=True)
    V = exact_values(env, 0.9)
    P = env.unwrapped.P
    backup = [sum(p * (r + (0 if t else 0.9 * V[s2])) / 4
                  for a in range(4) for p, s2, r, t in P[s][a]) for s in range(16)]
    np.testing.assert_allclose(V, backup, atol=1e-12)
    assert V[15] == 0 and V[5] == 0  # goal and hole: nothing comes after
    assert V[14] > V[10] > V[0] > 0  # credit grows towards the goal


def test_random_policy_values_near_the_goal():
    env = gym.make("FrozenLake-v1", is_slippery=True)
    V = exact_values(env, 0.99)
    desc = "".join(env.unwrapped.desc.astype(str).flatten())
    assert desc[11] == "H" and V[11] == 0  # the cell above G is a hole
    assert int(np.argmax(V)) == 14 and V[14] == pytest.approx(0.434, abs=1e-3)
    assert V[14] > V[13] > V[10] > V[0]  # then the cells next to it
    assert V[0] == pytest.approx(0.0124, abs=1e-4)


def test_random_episode_records_one_state_and_reward_per_step():
    env = gym.make("FrozenLake-v1", is_slippery=True)  # 100-step time limit
    rng = np.random.default_rng(0)
    desc = "".join(env.unwrapped.desc.astype(str).flatten())
    lengths, goals, seen = [], 0, set()
    for _ in range(300):
        states, rewards = random_episode(env, rng)
        seen |= set(states)
        assert len(states) == len(rewards) >= 1 and states[0] == 0  # starts at S
        assert all(desc[s] in "SF" for s in states)  # never a state after the end
        assert sum(rewards) == rewards[-1] in (0.0, 1.0)  # only the last can pay
        lengths.append(len(states))
        goals += rewards[-1] == 1.0
    assert max(lengths) <= 100 and 0 < goals < 30  # a random walker rarely arrives
    assert seen == {i for i, c in enumerate(desc) if c in "SF"}  # it does move on
