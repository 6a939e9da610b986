"""Score function vs autograd; a baseline leaves the gradient unbiased; returns."""

import numpy as np
import pytest
import torch

from snippets.rl.policy_gradient import (make_env, mlp, reward_to_go, rollout,
                                         score_linear_softmax)
from snippets.rl.problem import discounted_returns


def test_score_function_by_hand_equals_autograd():
    torch.manual_seed(0)
    W, x = torch.randn(3, 5, requires_grad=True), torch.randn(5)
    for a in range(3):
        (g,) = torch.autograd.grad(torch.log_softmax(W @ x, dim=0)[a], W)
        torch.testing.assert_close(score_linear_softmax(W.detach(), x, a), g)


def test_policy_gradient_theorem_and_baseline_on_a_bandit():
    # exact expectations over 3 actions: E[grad log pi(a) (R_a - b)] = grad E[R], any b
    torch.manual_seed(1)
    theta, R = torch.randn(3, requires_grad=True), torch.tensor([1.0, 5.0, -2.0])
    (true_grad,) = torch.autograd.grad((torch.softmax(theta, 0) * R).sum(), theta)
    pi = torch.softmax(theta, 0).detach()
    for b in (0.0, 3.0, -10.0):
        W = theta.detach()[:, None]  # a softmax over theta = a linear policy on x = 1
        est = sum(pi[a] * score_linear_softmax(W, torch.ones(1), a)[:, 0] * (R[a] - b)
                  for a in range(3))
        torch.testing.assert_close(est, true_grad)


def test_reward_to_go_matches_loop_per_episode():
    rewards = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 0.0]])  # 2nd ends after 2
    G = reward_to_go(rewards, 0.9)
    assert G[:, 0].tolist() == pytest.approx(discounted_returns([1, 1, 1], 0.9))
    assert G[:2, 1].tolist() == pytest.approx(discounted_returns([1, 1], 0.9))


def test_rollout_masks_each_episode_after_it_ends():
    torch.manual_seed(0)
    states, actions, rewards, masks = rollout(make_env(5), mlp(4, 8, 2),
                                              np.random.default_rng(0))
    assert states.shape[:2] == actions.shape == rewards.shape == masks.shape
    assert (rewards[~masks] == 0).all() and (rewards[masks] == 1).all()
    lengths = masks.sum(0)
    assert (lengths >= 8).all() and (lengths <= 500).all()  # a fall takes >= 8 steps
