"""Q-learning and SARSA updates on a hand-made 2-state MDP; torch step = table step;
truncation, the cliff result, value iteration and the lake's optimum."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from snippets.rl import tabular
from snippets.rl.tabular import (Config, backup, cliff_run, epsilon_greedy, greedy_path,
                                 model, optimal_policy, q_learning_update,
                                 q_learning_update_torch, run_episode, sarsa_update,
                                 success_prob, value_iteration)

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
    # eps = 0.3: random with prob 0.3 (which may still pick the best), so
    # P(best) = 0.7 + 0.3 / 3 = 0.8 and each other action 0.1
    picks = np.array([epsilon_greedy(Q, 0, 0.3, rng) for _ in range(6000)])
    freq = np.bincount(picks, minlength=3) / len(picks)
    np.testing.assert_allclose(freq, [0.1, 0.8, 0.1], atol=0.02)
    # ties are broken at random, not always towards the first action
    ties = [epsilon_greedy(np.zeros((1, 4)), 0, 0.0, rng) for _ in range(400)]
    assert set(ties) == {0, 1, 2, 3}


class OneStep:
    """A one-step episode: from state 0 any action pays 1 and leads to state 1, where
    the episode stops with the flags given (the time limit, or a real end)."""

    def __init__(self, terminated: bool, truncated: bool):
        self.flags = terminated, truncated
        self.actions = []

    def reset(self, seed=None):
        return 0, {}

    def step(self, a):
        self.actions.append(a)
        return 1, 1.0, *self.flags, {}


class TruncationAsTermination:
    """The common mistake, run for real: the learner sees a time limit as an end."""

    def __init__(self, env):
        self.env = env

    def reset(self, seed=None):
        return self.env.reset(seed)

    def step(self, a):
        s, r, terminated, truncated, info = self.env.step(a)
        return s, r, terminated or truncated, False, info


@pytest.mark.parametrize("method", ["q_learning", "sarsa"])
def test_a_truncated_step_still_bootstraps(method):
    def learn(env):
        Q = np.array([[0.0, 0.0], [5.0, 5.0]])  # state 1 is worth 5 whatever we do
        total = run_episode(env, Q, method, eps=0.0, lr=0.5, gamma=0.9,
                            rng=np.random.default_rng(0))
        assert total == 1.0  # the episode's undiscounted return: one reward of 1
        return Q[0].max()

    right = learn(OneStep(terminated=False, truncated=True))
    assert right == pytest.approx(0.5 * (1 + 0.9 * 5))  # 2.75: the future counts
    wrong = learn(TruncationAsTermination(OneStep(terminated=False, truncated=True)))
    assert wrong == pytest.approx(0.5 * 1)  # the mistake drops the future...
    assert learn(OneStep(terminated=True, truncated=False)) == pytest.approx(wrong)
    assert right > wrong + 2  # ...and that is what a real end must do


def test_sarsa_executes_the_action_it_bootstrapped_from(monkeypatch):
    used = []  # the a' of each SARSA update

    def spy(Q, s, a, r, s_next, a_next, terminated, lr, gamma):
        used.append(a_next)
        sarsa_update(Q, s, a, r, s_next, a_next, terminated, lr, gamma)

    monkeypatch.setattr(tabular, "sarsa_update", spy)
    env = gym.make("CliffWalking-v1")
    real_step, taken = env.step, []

    def recording_step(a):
        taken.append(a)
        return real_step(a)

    env.step = recording_step
    Q = np.zeros((48, 4))
    rng = np.random.default_rng(0)
    for _ in range(5):
        taken.clear(), used.clear()
        run_episode(env, Q, "sarsa", eps=0.5, lr=0.5, gamma=1.0, rng=rng)
        assert len(taken) > 3
        assert used[:-1] == taken[1:]  # the a' of step t is what step t + 1 does


def test_cliff_sarsa_earns_more_online_and_q_learning_walks_the_edge():
    cfg = Config(cliff_episodes=300)
    env = gym.make("CliffWalking-v1")
    rng = np.random.default_rng(0)
    online, greedy = {}, {}
    for method in ("q_learning", "sarsa"):
        runs = [cliff_run(env, method, cfg, rng) for _ in range(3)]
        online[method] = np.mean([r[-100:].mean() for r, _ in runs])
        greedy[method] = [greedy_path(env, Q)[1] for _, Q in runs]
    assert online["sarsa"] > online["q_learning"] + 10
    assert greedy["q_learning"] == [-13, -13, -13]  # the 13-step edge path
    assert all(g < -13 for g in greedy["sarsa"])  # the longer, safe path (or a loop)


# The 2-state MDP of STEP as arrays, for value iteration.
T2, R2, D2 = np.zeros((2, 2, 2)), np.zeros((2, 2)), np.zeros((2, 2, 2))
for (s, a), (s2, r, d) in STEP.items():
    T2[s, a, s2], R2[s, a], D2[s, a, s2] = 1.0, r, d


def test_value_iteration_finds_q_star_and_its_fixed_point():
    V, Q, sweeps = value_iteration(T2, R2, D2, GAMMA)
    np.testing.assert_allclose(Q, Q_STAR, atol=1e-8)
    np.testing.assert_allclose(V, Q_STAR.max(1), atol=1e-8)
    # the first sweep changes V by 2 (state 1's reward); each later change is gamma
    # times the one before, so it falls below tol = 1e-10 after about this many sweeps
    assert abs(sweeps - (1 + np.log(1e-10 / 2) / np.log(GAMMA))) <= 3
    T, R, done = model(gym.make("FrozenLake-v1", is_slippery=True))
    V, Q, _ = value_iteration(T, R, done, 0.99)
    np.testing.assert_allclose(Q, backup(T, R, done, Q.max(1), 0.99), atol=1e-8)
    # the greedy policy's own value (a linear solve, as on the problem page) is V*
    pi = Q.argmax(1)
    P_pi = np.einsum("sn,sn->sn", T[np.arange(16), pi], 1 - done[np.arange(16), pi])
    V_pi = np.linalg.solve(np.eye(16) - 0.99 * P_pi, R[np.arange(16), pi])
    np.testing.assert_allclose(V_pi, V, atol=1e-6)
    # averaging instead of maximising evaluates the random policy: far lower values
    V_avg = np.zeros(16)
    for _ in range(2000):
        V_avg = backup(T, R, done, V_avg, 0.99).mean(1)
    assert V[0] > 10 * V_avg[0]


def test_frozenlake_optimum_is_about_074():
    T, R, done = model(gym.make("FrozenLake-v1", is_slippery=True))
    assert 0.74 < success_prob(T, R, done)[0] < 0.745
    pi = optimal_policy(T, R, done, 0.99)
    assert 0.739 < success_prob(T, R, done, pi)[0] < 0.741
    assert pi[0] == pi[4] == 0  # left at the start and on the left of row 2
    assert success_prob(T, R, done, np.zeros(16, dtype=int))[0] < 0.01  # always left
    T, R, done = model(gym.make("FrozenLake-v1", is_slippery=False))
    assert success_prob(T, R, done)[0] == pytest.approx(1.0)
    assert success_prob(T, R, done, optimal_policy(T, R, done, 0.99))[0] == 1.0
    always_left = np.zeros(16, dtype=int)
    assert success_prob(T, R, done, always_left)[0] == 0.0
