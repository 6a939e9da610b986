"""Score function vs autograd; a state-only baseline leaves the gradient unbiased, an
action-dependent one does not; one REINFORCE update is a policy-gradient ascent step
(and its sign flipped is descent); rollouts, TD advantages, and a learning check."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from snippets.rl.policy_gradient import (Config, evaluate, make_env, mlp,
                                         reinforce_update, reward_to_go, rollout,
                                         score_linear_softmax, td_advantage, train)
from snippets.rl.problem import discounted_returns


def test_score_function_by_hand_equals_autograd():
    torch.manual_seed(0)
    W, x = torch.randn(3, 5, requires_grad=True), torch.randn(5)
    for a in range(3):
        (g,) = torch.autograd.grad(torch.log_softmax(W @ x, dim=0)[a], W)
        torch.testing.assert_close(score_linear_softmax(W.detach(), x, a), g)


def bandit_estimate(theta, R, baseline):
    """Exact E_a[grad log pi(a) (R_a - b(a))] for a softmax over 3 arms."""
    pi = torch.softmax(theta, 0)
    W = theta[:, None]  # a softmax over theta = a linear policy on x = 1
    return sum(pi[a] * score_linear_softmax(W, torch.ones(1), a)[:, 0]
               * (R[a] - baseline(a)) for a in range(3))


def test_policy_gradient_theorem_and_baseline_on_a_bandit():
    torch.manual_seed(1)
    theta, R = torch.randn(3, requires_grad=True), torch.tensor([1.0, 5.0, -2.0])
    (true_grad,) = torch.autograd.grad((torch.softmax(theta, 0) * R).sum(), theta)
    theta = theta.detach()
    for b in (0.0, 3.0, -10.0):  # any baseline that ignores the action: unbiased
        torch.testing.assert_close(bandit_estimate(theta, R, lambda a: b), true_grad)
    # the common mistake, run: a "baseline" that depends on the action taken. With
    # b(a) = R[a] every advantage is 0, and so is the estimate: the gradient is lost
    wrong = bandit_estimate(theta, R, lambda a: R[a])
    torch.testing.assert_close(wrong, torch.zeros(3))
    assert (wrong - true_grad).norm() > 0.5 * true_grad.norm()
    # and a milder action-dependent one is biased too
    biased = bandit_estimate(theta, R, lambda a: 0.5 * R[a])
    assert (biased - true_grad).norm() > 0.1 * true_grad.norm()


def test_reward_to_go_matches_loop_per_episode():
    rewards = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 0.0]])  # 2nd ends after 2
    G = reward_to_go(rewards, 0.9)
    assert G[:, 0].tolist() == pytest.approx(discounted_returns([1, 1, 1], 0.9))
    assert G[:2, 1].tolist() == pytest.approx(discounted_returns([1, 1], 0.9))


def test_rollout_masks_each_episode_after_it_ends():
    torch.manual_seed(0)
    states, actions, rewards, masks, ends = rollout(make_env(5), mlp(4, 8, 2),
                                                    np.random.default_rng(0))
    T = len(actions)
    assert states.shape == (T + 1, 5, 4)
    assert actions.shape == rewards.shape == masks.shape == ends.shape == (T, 5)
    assert (rewards[~masks] == 0).all() and (rewards[masks] == 1).all()
    lengths = masks.sum(0)
    assert (lengths >= 8).all() and (lengths <= 500).all()  # a fall takes >= 8 steps
    # row t + 1 is the state step t reached: CartPole's Euler step x' = x + 0.02 x_dot
    x, x_dot = states[:-1, :, 0][masks], states[:-1, :, 1][masks]
    torch.testing.assert_close(states[1:, :, 0][masks], x + 0.02 * x_dot)
    # a real end is flagged once, at the last step of an episode, where the pole fell
    assert (ends.sum(0) == 1).all()
    last = lengths - 1
    assert ends[last, torch.arange(5)].all()
    final = states[lengths, torch.arange(5)]
    assert ((final[:, 2].abs() > 0.2095) | (final[:, 0].abs() > 2.4)).all()


class LinearV(nn.Module):
    """V(s) = 100 * s[0] (the nets predict G / 100): values we can write by hand."""

    def forward(self, s):
        return s[..., :1]


def test_td_advantage_by_hand_bootstraps_after_a_time_limit_only():
    # two copies, two steps; V(s) = 100 * s[0]. Copy 0 falls at step 1; copy 1 is
    # cut by the time limit at step 1 (alive, but no real end).
    states = torch.zeros(3, 2, 4)
    states[:, 0, 0] = torch.tensor([0.1, 0.2, 0.3])
    states[:, 1, 0] = torch.tensor([0.5, 0.4, 0.6])
    rewards, masks = torch.ones(2, 2), torch.ones(2, 2, dtype=torch.bool)
    ends = torch.tensor([[False, False], [True, False]])
    batch = (states, None, rewards, masks, ends)
    A = td_advantage(LinearV(), batch, gamma=0.9)  # order: (t=0: 0, 1), (t=1: 0, 1)
    expected = torch.tensor([1 + 0.9 * 20 - 10, 1 + 0.9 * 40 - 50,
                             1 - 20, 1 + 0.9 * 60 - 40])  # copy 0 at t=1: V' = 0
    torch.testing.assert_close(A, expected)
    # the mistake, run: every end treated as terminal drops copy 1's future
    every_end = torch.tensor([[False, False], [True, True]])
    wrong = td_advantage(LinearV(), (states, None, rewards, masks, every_end), 0.9)
    assert wrong[3] == pytest.approx(1 - 40) and A[3] - wrong[3] > 50


def linear_batch():
    """A fixed batch from a linear policy: 6 episodes of CartPole."""
    torch.manual_seed(0)
    policy = nn.Linear(4, 2, bias=False)
    batch = rollout(make_env(6), policy, np.random.default_rng(0))
    return policy, batch


def expected_step(policy, batch, A, lr):
    """lr * (1/N) sum_i A_i grad log pi(a_i | x_i), by the hand-written score."""
    states, actions, _, masks, _ = batch
    X, a = states[:-1][masks], actions[masks]
    W = policy.weight.detach()
    return lr * sum(A[i] * score_linear_softmax(W, X[i], int(a[i]))
                    for i in range(len(a))) / len(a)


def objective(policy, batch, A):
    states, actions, _, masks, _ = batch
    X, a = states[:-1][masks], actions[masks]
    with torch.no_grad():
        return (A * torch.log_softmax(policy(X), 1)[torch.arange(len(a)), a]).mean()


@pytest.mark.parametrize("flipped", [False, True])
def test_one_reinforce_update_is_a_policy_gradient_ascent_step(flipped):
    policy, batch = linear_batch()
    G = reward_to_go(batch[2], 0.99)[batch[3]]
    A = G / (G.std() + 1e-8)  # what the update uses without a baseline
    before = copy.deepcopy(policy)
    # maximize=True makes SGD climb the loss: the update with its sign flipped
    opt = torch.optim.SGD(policy.parameters(), lr=0.01, maximize=flipped)
    reinforce_update(policy, None, opt, None, batch, 0.99, baseline=False)
    step = policy.weight.detach() - before.weight.detach()
    right = expected_step(before, batch, A, lr=0.01)
    gain = objective(policy, batch, A) - objective(before, batch, A)
    if not flipped:
        torch.testing.assert_close(step, right, atol=1e-6, rtol=1e-4)
        assert gain > 0  # actions that did better than 0 become more likely
    else:  # the wrong sign, run: the step points the other way and J drops
        torch.testing.assert_close(step, -right, atol=1e-6, rtol=1e-4)
        assert gain < 0


def test_reinforce_update_with_baseline_uses_the_value_before_its_step():
    policy, batch = linear_batch()
    torch.manual_seed(1)
    value = mlp(4, 8, 1)
    states, _, rewards, masks, _ = batch
    X, G = states[:-1][masks], reward_to_go(rewards, 0.99)[masks]
    with torch.no_grad():
        v = value(X).squeeze(1) * 100
    A = (G - v) - (G - v).mean()
    A = A / (A.std() + 1e-8)
    before_pi, before_v = copy.deepcopy(policy), copy.deepcopy(value)
    opt_pi = torch.optim.SGD(policy.parameters(), lr=0.01)
    opt_v = torch.optim.SGD(value.parameters(), lr=0.01)
    reinforce_update(policy, value, opt_pi, opt_v, batch, 0.99, baseline=True)
    step = policy.weight.detach() - before_pi.weight.detach()
    torch.testing.assert_close(step, expected_step(before_pi, batch, A, 0.01),
                               atol=1e-6, rtol=1e-4)
    # the value net took one SGD step on mean((100 V - G)^2) / 100^2
    loss_v = ((before_v(X).squeeze(1) * 100 - G) ** 2).mean() / 100**2
    grads = torch.autograd.grad(loss_v, list(before_v.parameters()))
    for p_new, p_old, g in zip(value.parameters(), before_v.parameters(), grads):
        torch.testing.assert_close(p_new.detach(), p_old.detach() - 0.01 * g)
    loss = lambda net: ((net(X).squeeze(1) * 100 - G) ** 2).mean()  # noqa: E731
    with torch.no_grad():
        assert loss(value) < loss(before_v)  # the baseline moved towards the returns


def test_reinforce_solves_cartpole_at_the_real_preset():
    cfg = Config()
    policy, _, steps, curve = train(cfg, seed=0, num_iters=cfg.num_iters)
    assert min(curve[-2:]) >= cfg.solved and steps[-1] < 200_000
    assert evaluate(policy, 100, seed=10_000).mean() >= 475
