"""TD targets by hand, the replay ring, and what a DQN step may and may not change."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from snippets.rl.dqn import ReplayBuffer, dqn_update, evaluate, td_target


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
    for i in range(5):
        buf.add(np.array([[i]]), np.array([i]), np.array([i]), np.array([[i + 1]]),
                np.array([False]))
    assert buf.size == 3 and sorted(buf.a.tolist()) == [2, 3, 4]
    s, a, r, s_next, term = buf.sample(64, np.random.default_rng(0))
    assert s.shape == (64, 1) and set(a.tolist()) <= {2, 3, 4}
    torch.testing.assert_close(s_next, s + 1)


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


def test_evaluate_a_bad_greedy_policy():
    always_left = FixedQ([[1.0, 0.0]])
    always_left.forward = lambda s: torch.tensor([[1.0, 0.0]]).expand(len(s), 2)
    returns = evaluate(always_left, 10, seed=0)
    assert returns.shape == (10,) and returns.max() < 20  # falls within ~10 steps
