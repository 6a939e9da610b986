"""TD targets by hand, the replay ring, what is stored at an episode's end, and what a
DQN step may and may not change; DQN with a one-hot linear net is tabular Q-learning."""

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from snippets.rl.dqn import (ReplayBuffer, double_dqn_target, dqn_update, evaluate,
                             polyak_update, store_step, td_target)
from snippets.rl.tabular import q_learning_update


class FixedQ(nn.Module):
    def __init__(self, table):
        super().__init__()
        self.table = torch.tensor(table)

    def forward(self, s):  # s: (B, 1) holding a state index
        return self.table[s[:, 0].long()]


def test_td_target_by_hand():
    target = FixedQ([[1.0, 4.0], [2.0, -1.0]])
    r = torch.tensor([1.0, 1.0, 0.5])
    s_next = torch.tensor([[0.0], [1.0], [0.0]])
    term = torch.tensor([0.0, 0.0, 1.0])
    y = td_target(r, s_next, term, target, gamma=0.9)
    torch.testing.assert_close(y, torch.tensor([1 + 0.9 * 4, 1 + 0.9 * 2, 0.5]))


def test_replay_buffer_keeps_the_last_capacity_transitions():
    buf = ReplayBuffer(3, 1)
    for i in (7, 8):  # not full yet: only what was added can come out
        buf.add(np.array([[i]]), np.array([i]), np.array([i]), np.array([[i + 1]]),
                np.array([False]))
    assert set(buf.sample(64, np.random.default_rng(0))[1].tolist()) == {7, 8}
    buf = ReplayBuffer(3, 1)
    for i in range(5):
        buf.add(np.array([[i]]), np.array([i]), np.array([i]), np.array([[i + 1]]),
                np.array([False]))
    assert buf.size == 3 and sorted(buf.a.tolist()) == [2, 3, 4]
    s, a, r, s_next, term = buf.sample(64, np.random.default_rng(0))
    assert s.shape == (64, 1) and set(a.tolist()) == {2, 3, 4}  # every slot sampled
    torch.testing.assert_close(s_next, s + 1)
    torch.testing.assert_close(r, a.float())


# --- what reaches the buffer at the end of an episode --------------------------------

def store_truncation_as_end(buffer, obs, a, r, obs_next, terminated, truncated,
                            prev_done):
    """The common mistake: a time limit stored as a real end (d = 1)."""
    return store_step(buffer, obs, a, r, obs_next, terminated | truncated, truncated,
                      prev_done)


def store_everything(buffer, obs, a, r, obs_next, terminated, truncated, prev_done):
    """The other mistake: the autoreset step stored as if it were a transition."""
    buffer.add(obs, a, r, obs_next, terminated)
    return terminated | truncated


def fill(store, max_episode_steps, policy, steps=40):
    """Step 3 CartPole copies with ``policy`` and ``store`` every step; return the
    buffer's transitions."""
    env = gym.make_vec("CartPole-v1", num_envs=3,
                       vectorization_mode="vector_entry_point",
                       max_episode_steps=max_episode_steps)
    buffer = ReplayBuffer(1000, 4)
    obs, _ = env.reset(seed=0)
    prev_done = np.zeros(3, dtype=bool)
    for _ in range(steps):
        a = policy(obs)
        obs_next, r, terminated, truncated, _ = env.step(a)
        prev_done = store(buffer, obs, a, r, obs_next, terminated, truncated, prev_done)
        obs = obs_next
    n = buffer.size
    return buffer.s[:n], buffer.a[:n], buffer.s_next[:n], buffer.term[:n]


def balance(obs):  # push towards where the pole leans: upright for hundreds of steps
    return (obs[:, 2] + 0.5 * obs[:, 3] > 0).astype(np.int64)


def always_left(obs):  # the pole falls within about ten steps
    return np.zeros(len(obs), dtype=np.int64)


def problems(s, s_next, term, time_limit_only: bool) -> list[str]:
    found = []
    # CartPole's Euler step: x' = x + 0.02 x_dot. An autoreset "transition" breaks it.
    if not np.allclose(s_next[:, 0], s[:, 0] + 0.02 * s[:, 1], atol=1e-6):
        found.append("a reset step was stored as a transition")
    if time_limit_only and term.any():
        found.append("a time limit was stored as a real end")
    if not time_limit_only:
        fell = (np.abs(s_next[:, 2]) > 0.2095) | (np.abs(s_next[:, 0]) > 2.4)
        if not np.array_equal(term.astype(bool), fell):
            found.append("terminal flags do not match the falls")
    return found


def test_store_step_keeps_real_transitions_and_flags_only_real_ends():
    # every episode is cut by a 3-step time limit: 40 steps = 10 episodes of 3 + reset
    s, a, s_next, term = fill(store_step, 3, balance)
    assert not problems(s, s_next, term, time_limit_only=True)
    assert len(s) == 3 * 30  # per copy: 10 episodes x 3 real steps; 10 resets dropped
    s, a, s_next, term = fill(store_step, 500, always_left)
    assert not problems(s, s_next, term, time_limit_only=False)
    assert term.sum() >= 3 * 3  # each copy fell several times, each fall stored once


def test_the_two_storing_mistakes_are_caught():
    s, _, s_next, term = fill(store_truncation_as_end, 3, balance)
    assert problems(s, s_next, term, True) == ["a time limit was stored as a real end"]
    s, _, s_next, term = fill(store_everything, 3, balance)
    assert problems(s, s_next, term, True) == [
        "a reset step was stored as a transition"]
    s, _, s_next, term = fill(store_everything, 500, always_left)
    assert "a reset step was stored as a transition" in problems(s, s_next, term, False)


# --- one DQN update -----------------------------------------------------------------

def test_dqn_update_moves_q_towards_targets_and_leaves_target_net_alone():
    torch.manual_seed(0)
    q_net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    target_net = copy.deepcopy(q_net)
    frozen = copy.deepcopy(target_net.state_dict())
    opt = torch.optim.Adam(q_net.parameters(), lr=1e-2)
    batch = (torch.randn(32, 4), torch.randint(0, 2, (32,)), torch.ones(32),
             torch.randn(32, 4), torch.zeros(32))
    losses = [dqn_update(q_net, target_net, opt, batch, 0.99) for _ in range(100)]
    assert losses[-1] < 0.1 * losses[0]
    for k, v in target_net.state_dict().items():
        assert torch.equal(v, frozen[k])
    assert all(p.grad is None for p in target_net.parameters())


class ConstantQ(nn.Module):
    """A target network whose Q values are (3, 5) everywhere."""

    def forward(self, s):
        return torch.tensor([3.0, 5.0]).expand(len(s), 2)


def fit(target_net_of, steps=600):
    """Regress Q(s, a) of 4 one-hot states on r + 0.9 max_a' Q_target(s', a')."""
    torch.manual_seed(0)
    q_net = nn.Linear(4, 2, bias=False)
    opt = torch.optim.Adam(q_net.parameters(), lr=0.05)
    s = torch.eye(4)
    batch = (s, torch.tensor([0, 1, 0, 1]), torch.tensor([1.0, 0.0, -1.0, 2.0]),
             s.roll(1, 0), torch.tensor([0.0, 0.0, 0.0, 1.0]))
    for _ in range(steps):
        dqn_update(q_net, target_net_of(q_net), opt, batch, 0.9)
    with torch.no_grad():
        return q_net(s).gather(1, batch[1][:, None]).squeeze(1)


def test_dqn_regresses_on_the_target_net_not_on_itself():
    expected = torch.tensor([1 + 0.9 * 5, 0 + 0.9 * 5, -1 + 0.9 * 5, 2.0])  # last: end
    torch.testing.assert_close(fit(lambda q: ConstantQ()), expected, atol=1e-3,
                               rtol=0)
    # the mistake, run: targets from the online net itself chase its own estimates
    wrong = fit(lambda q: q)
    assert (wrong - expected).abs().max() > 1


def test_dqn_with_one_hot_states_and_a_linear_net_is_tabular_q_learning():
    """SGD(lr = alpha) on 1/2 (y - Q)^2 (Huber for |TD error| < 1), target net synced
    every step, batch 1: the tabular Q-learning update, step by step."""
    rng = np.random.default_rng(0)
    Q_table = rng.uniform(0, 0.3, size=(3, 2))
    q_net = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        q_net.weight.copy_(torch.tensor(Q_table.T))
    opt = torch.optim.SGD(q_net.parameters(), lr=0.4)
    eye = torch.eye(3, dtype=torch.float32)
    for _ in range(50):
        s, a, s2 = int(rng.integers(3)), int(rng.integers(2)), int(rng.integers(3))
        r, end = float(rng.uniform(-0.2, 0.2)), bool(rng.random() < 0.2)
        q_learning_update(Q_table, s, a, r, s2, end, lr=0.4, gamma=0.9)
        batch = (eye[[s]], torch.tensor([a]), torch.tensor([r]), eye[[s2]],
                 torch.tensor([float(end)]))
        dqn_update(q_net, copy.deepcopy(q_net), opt, batch, 0.9)
        np.testing.assert_allclose(q_net.weight.detach().numpy().T, Q_table, atol=1e-6)


def test_dqn_update_clips_the_gradient_norm_at_10():
    q_net = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        q_net.weight.zero_()
    opt = torch.optim.SGD(q_net.parameters(), lr=1.0)
    s = torch.tensor([[100.0, 0.0]])  # a large input: Huber's gradient is 100 here
    batch = (s, torch.tensor([0]), torch.tensor([1000.0]), s, torch.tensor([1.0]))
    dqn_update(q_net, ConstantQ(), opt, batch, 0.9)
    step = q_net.weight.detach()
    assert step.norm().item() == pytest.approx(10.0, rel=1e-4)  # clipped from 100
    assert step[0, 0] > 0 and step[1].abs().sum() == 0  # towards y, only Q(s, 0)


def test_double_dqn_target_lets_the_online_net_choose_and_the_target_net_score():
    q_net = FixedQ([[0.0, 1.0], [2.0, 0.0]])  # online: best is a' = 1, then a' = 0
    target = FixedQ([[4.0, 3.0], [1.0, 6.0]])  # target's own max: 4, then 6
    r, s_next, term = torch.ones(3), torch.tensor([[0.0], [1.0], [1.0]]), \
        torch.tensor([0.0, 0.0, 1.0])
    y = double_dqn_target(r, s_next, term, q_net, target, gamma=0.5)
    torch.testing.assert_close(y, torch.tensor([1 + 0.5 * 3, 1 + 0.5 * 1, 1.0]))
    y_dqn = td_target(r, s_next, term, target, gamma=0.5)
    assert (y <= y_dqn).all() and (y < y_dqn).any()  # never above DQN's max


def test_polyak_update_moves_a_fraction_tau_towards_the_online_net():
    torch.manual_seed(0)
    q_net, target = nn.Linear(3, 2), nn.Linear(3, 2)
    before = [p.detach().clone() for p in target.parameters()]
    polyak_update(target, q_net, tau=0.25)
    for p_t, p0, p in zip(target.parameters(), before, q_net.parameters()):
        torch.testing.assert_close(p_t, 0.75 * p0 + 0.25 * p)
    polyak_update(target, q_net, tau=1.0)  # tau = 1: the hard copy of plain DQN
    for p_t, p in zip(target.parameters(), q_net.parameters()):
        torch.testing.assert_close(p_t, p)


def test_evaluate_counts_falls_and_the_500_step_limit():
    left = FixedQ([[1.0, 0.0]])
    left.forward = lambda s: torch.tensor([[1.0, 0.0]]).expand(len(s), 2)
    returns = evaluate(left, 10, seed=0)
    assert returns.shape == (10,) and 7 <= returns.min() and returns.max() <= 12

    class Balance(nn.Module):  # Q prefers pushing towards where the pole leans
        def forward(self, s):
            push_right = s[:, 2] + 0.5 * s[:, 3]
            return torch.stack([-push_right, push_right], dim=1)

    assert (evaluate(Balance(), 5, seed=0) == 500).all()  # truncated at 500, counted
