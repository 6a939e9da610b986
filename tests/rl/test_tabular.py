"""Q-learning and SARSA updates on a hand-made 2-state MDP; torch step = table step."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from snippets.rl.tabular import (epsilon_greedy, model, q_learning_update,
                                 q_learning_update_torch, sarsa_update, success_prob)

# Two states. State 0: action 0 stays (reward 0), action 1 goes to state 1 (reward 1).
# State 1: action 0 ends the episode (reward 0), action 1 goes to state 0 (reward 2).
STEP = {(0, 0): (0, 0.0, False), (0, 1): (1, 1.0, False),
        (1, 0): (1, 0.0, True), (1, 1): (0, 2.0, False)}
GAMMA = 0.9
# Optimal: cycle 0 -> 1 -> 0. V0 = 1 + 0.9 V1, V1 = 2 + 0.9 V0  =>  V0 = 2.8 / 0.19.
V0 = 2.8 / 0.19
V1 = 2 + GAMMA * V0
Q_STAR = np.array([[GAMMA * V0, V0], [0.0, V1]])


def test_q_learning_update_by_hand():
    Q = np.array([[0.0, 0.0], [2.0, 5.0]])
    q_learning_update(Q, 0, 1, 1.0, 1, False, lr=0.5, gamma=GAMMA)
    assert Q[0, 1] == pytest.approx(0.5 * (1 + 0.9 * 5))  # 2.75
    q_learning_update(Q, 1, 0, 0.0, 1, True, lr=0.5, gamma=GAMMA)  # terminal: no max
    assert Q[1, 0] == pytest.approx(2.0 + 0.5 * (0.0 - 2.0))


def test_sarsa_bootstraps_from_the_action_taken_not_the_best():
    Q = np.array([[0.0, 0.0], [2.0, 5.0]])
    Q_sarsa, Q_q = Q.copy(), Q.copy()
    # next action a' = 0 (exploratory): SARSA uses Q[1, 0] = 2, Q-learning max = 5
    sarsa_update(Q_sarsa, 0, 1, 1.0, 1, 0, False, lr=0.5, gamma=GAMMA)
    q_learning_update(Q_q, 0, 1, 1.0, 1, False, lr=0.5, gamma=GAMMA)
    assert Q_sarsa[0, 1] == pytest.approx(0.5 * (1 + 0.9 * 2))  # 1.4
    assert Q_q[0, 1] == pytest.approx(2.75)
    # when a' is the greedy action the two updates coincide
    Q_sarsa = Q.copy()
    sarsa_update(Q_sarsa, 0, 1, 1.0, 1, 1, False, lr=0.5, gamma=GAMMA)
    assert Q_sarsa[0, 1] == pytest.approx(Q_q[0, 1])


def test_q_learning_converges_to_q_star_with_random_behaviour():
    rng = np.random.default_rng(0)
    Q = np.zeros((2, 2))
    s = 0
    for _ in range(20_000):
        a = int(rng.integers(2))  # uniformly random behaviour: off-policy learning
        s_next, r, done = STEP[(s, a)]
        q_learning_update(Q, s, a, r, s_next, done, lr=0.05, gamma=GAMMA)
        s = 0 if done else s_next
    np.testing.assert_allclose(Q, Q_STAR, atol=0.3)
    assert (Q.argmax(1) == [1, 1]).all()


def test_torch_sgd_step_equals_tabular_update():
    rng = np.random.default_rng(1)
    Q_np = rng.normal(size=(2, 2))
    Q_t = torch.tensor(Q_np, requires_grad=True)
    opt = torch.optim.SGD([Q_t], lr=0.3)
    for s, a in [(0, 1), (1, 1), (0, 0), (1, 0)]:
        s_next, r, done = STEP[(s, a)]
        q_learning_update(Q_np, s, a, r, s_next, done, lr=0.3, gamma=GAMMA)
        q_learning_update_torch(Q_t, opt, s, a, r, s_next, done, GAMMA)
        np.testing.assert_allclose(Q_t.detach().numpy(), Q_np, atol=1e-12)


def test_epsilon_greedy():
    rng = np.random.default_rng(0)
    Q = np.array([[0.0, 3.0, 1.0]])
    assert all(epsilon_greedy(Q, 0, 0.0, rng) == 1 for _ in range(20))
    picks = [epsilon_greedy(Q, 0, 1.0, rng) for _ in range(300)]
    assert set(picks) == {0, 1, 2}


def test_frozenlake_optimum_is_about_074():
    T, R, done = model(gym.make("FrozenLake-v1", is_slippery=True))
    assert 0.73 < success_prob(T, R, done)[0] < 0.75
    T, R, done = model(gym.make("FrozenLake-v1", is_slippery=False))
    assert success_prob(T, R, done)[0] == pytest.approx(1.0)
    always_left = np.zeros(16, dtype=int)
    assert success_prob(T, R, done, always_left)[0] == 0.0
