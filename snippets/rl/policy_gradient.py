"""REINFORCE with a learned baseline on CartPole-v1: policy-gradient theorem to code.

Page: rl/policy-gradient.md
Run:  python -m snippets run rl/policy_gradient
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from snippets.common import progress, save_figure, seed_everything, use_style


@dataclass
class Config:
    num_envs: int = 16  # episodes per policy update (CartPole copies stepped together)
    num_iters: int = 200  # most policy updates; training stops early once solved
    num_hiddens: int = 64  # width of the policy and value MLPs
    lr: float = 1e-2  # Adam step size for the policy
    lr_value: float = 1e-2  # Adam step size for the baseline V(s)
    gamma: float = 0.99  # discount
    solved: float = 490.0  # stop when two consecutive batches average at least this
    num_seeds: int = 3  # independent runs, with and without the baseline
    spread_iters: int = 8  # updates before measuring the spread of gradient estimates
    spread_batches: int = 64  # independent batches for that measurement (twice)...
    spread_episodes: int = 2  # ...of this many episodes each
    eval_episodes: int = 100  # greedy evaluation episodes (gymnasium's threshold: 475)
    seed: int = 0

    @classmethod
    def tiny(cls) -> "Config":
        return cls(num_envs=4, num_iters=3, num_seeds=1, spread_iters=1,
                   spread_batches=4, eval_episodes=4)


def make_env(num_envs: int):
    """Gymnasium's vectorised CartPole-v1: num_envs copies stepped in one numpy call."""
    return gym.make_vec("CartPole-v1", num_envs=num_envs,
                        vectorization_mode="vector_entry_point")


def mlp(num_inputs: int, num_hiddens: int, num_outputs: int) -> nn.Module:
    return nn.Sequential(nn.Linear(num_inputs, num_hiddens), nn.Tanh(),
                         nn.Linear(num_hiddens, num_hiddens), nn.Tanh(),
                         nn.Linear(num_hiddens, num_outputs))


# --8<-- [start:returns]
def reward_to_go(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    """G_t = r_{t+1} + gamma * G_{t+1} along dim 0. rewards: (T, N), 0 after the end."""
    G = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        running = rewards[t] + gamma * running
        G[t] = running
    return G
# --8<-- [end:returns]


# --8<-- [start:score]
def score_linear_softmax(W: torch.Tensor, x: torch.Tensor, a: int) -> torch.Tensor:
    """grad_W log pi(a|x) for pi = softmax(W x), by hand: (onehot(a) - pi) x^T."""
    pi = torch.softmax(W @ x, dim=0)
    return torch.outer(torch.eye(len(pi))[a] - pi, x)
# --8<-- [end:score]


# --8<-- [start:rollout]
def rollout(env, policy: nn.Module, rng: np.random.Generator, greedy: bool = False):
    """One episode per copy: states (T, N, 4), actions, rewards, alive masks (T, N)."""
    obs, _ = env.reset(seed=int(rng.integers(2**31)))
    alive = np.ones(env.num_envs, dtype=bool)
    states, actions, rewards, masks = [], [], [], []
    while alive.any():
        with torch.no_grad():
            p_right = torch.softmax(policy(torch.as_tensor(obs)), dim=1)[:, 1].numpy()
        a = (p_right > 0.5) if greedy else (rng.random(env.num_envs) < p_right)
        a = a.astype(np.int64)
        states.append(obs), actions.append(a), masks.append(alive.copy())
        obs, r, terminated, truncated, _ = env.step(a)
        rewards.append(r * alive)
        alive &= ~(terminated | truncated)  # NEXT_STEP autoreset: ignore what follows
    as_t = lambda xs, dt: torch.as_tensor(np.stack(xs), dtype=dt)  # noqa: E731
    return (as_t(states, torch.float32), as_t(actions, torch.int64),
            as_t(rewards, torch.float32), as_t(masks, torch.bool))
# --8<-- [end:rollout]


def evaluate(policy: nn.Module, episodes: int, seed: int) -> np.ndarray:
    """Undiscounted return of the greedy policy in ``episodes`` fresh episodes."""
    env = make_env(episodes)
    _, _, rewards, _ = rollout(env, policy, np.random.default_rng(seed), greedy=True)
    return rewards.sum(0).numpy()


# --8<-- [start:update]
def reinforce_update(policy, value, opt_pi, opt_v, batch, gamma, baseline=True):
    states, actions, rewards, masks = batch  # (T, N, 4), (T, N), (T, N), (T, N)
    G = reward_to_go(rewards, gamma)[masks]  # (B,) return from each visited state
    X, a = states[masks], actions[masks]
    if baseline:
        v = value(X).squeeze(1) * 100  # the net predicts G / 100, G is up to ~100
        loss_v = ((v - G) ** 2).mean() / 100**2
        opt_v.zero_grad(), loss_v.backward(), opt_v.step()
        A = G - v.detach()  # advantage: better or worse than usual from this state?
        A = (A - A.mean()) / (A.std() + 1e-8)  # one scale for every batch
    else:
        A = G / (G.std() + 1e-8)  # same scale, but not centred: no baseline at all
    log_pi = torch.log_softmax(policy(X), dim=1)[torch.arange(len(a)), a]
    loss = -(A * log_pi).mean()  # its gradient is minus the policy-gradient estimate
    opt_pi.zero_grad(), loss.backward(), opt_pi.step()
# --8<-- [end:update]


def train(cfg: Config, seed: int, num_iters: int, baseline: bool = True):
    """Train from scratch; returns both nets and the mean return of each batch."""
    seed_everything(seed)
    rng = np.random.default_rng(seed)
    env = make_env(cfg.num_envs)
    policy, value = mlp(4, cfg.num_hiddens, 2), mlp(4, cfg.num_hiddens, 1)
    opt_pi = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    opt_v = torch.optim.Adam(value.parameters(), lr=cfg.lr_value)
    curve, steps = [], []
    for _ in progress(range(num_iters), desc=f"REINFORCE seed {seed}"):
        batch = rollout(env, policy, rng)
        curve.append(batch[2].sum(0).mean().item())
        steps.append((steps[-1] if steps else 0) + int(batch[3].sum()))
        if len(curve) >= 2 and min(curve[-2:]) >= cfg.solved:
            break
        reinforce_update(policy, value, opt_pi, opt_v, batch, cfg.gamma, baseline)
    return policy, value, np.array(steps), np.array(curve)


def gradient_spread(cfg: Config, policy, value, seed: int) -> dict:
    """How fast do averaged one-batch gradient estimates line up with the true gradient?

    Same batches for both estimators, no normalisation. The true gradient is stood in
    for by the with-baseline average over a second, held-out half of the batches.
    """
    env, rng = make_env(cfg.spread_episodes), np.random.default_rng(seed)
    grads = {"with baseline V(s)": [], "without baseline": []}
    for _ in range(2 * cfg.spread_batches):
        states, actions, rewards, masks = rollout(env, policy, rng)
        G, X, a = reward_to_go(rewards, cfg.gamma)[masks], states[masks], actions[masks]
        with torch.no_grad():
            v = value(X).squeeze(1) * 100
        for label, A in (("with baseline V(s)", G - v), ("without baseline", G)):
            log_pi = torch.log_softmax(policy(X), dim=1)[torch.arange(len(a)), a]
            g = torch.autograd.grad(-(A * log_pi).mean(), list(policy.parameters()))
            grads[label].append(torch.cat([x.flatten() for x in g]))
    n = cfg.spread_batches
    reference = torch.stack(grads["with baseline V(s)"][n:]).mean(0)
    sizes = [k for k in (1, 2, 4, 8, 16, 32) if k <= n // 2] or [1]
    result = {}
    for label, gs in grads.items():
        gs = torch.stack(gs[:n])  # (n, num_params)
        cos = [torch.nn.functional.cosine_similarity(
            gs[: n // k * k].view(n // k, k, -1).mean(1), reference[None]).mean().item()
            for k in sizes]
        rel_var = ((gs - gs.mean(0)) ** 2).sum(1).mean() / (gs.mean(0) ** 2).sum()
        episodes = np.array(sizes) * cfg.spread_episodes
        result[label] = (episodes, np.array(cos), float(rel_var))
    return result


def plot(runs: dict, spread: dict, out: Path) -> None:
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.6), width_ratios=[1.4, 1])
    for color, (label, curves) in zip(["C0", "C1"], runs.items()):
        for i, (steps, curve) in enumerate(curves):
            ax0.plot(steps / 1000, curve, color=color, alpha=0.8, lw=1.2,
                     label=label if i == 0 else None)
    ax0.axhline(475, color="gray", ls="--", lw=1)
    ax0.set(xlabel="environment steps (thousands)", ylabel="mean return per batch",
            title="REINFORCE on CartPole-v1: one line per seed")
    ax0.legend(loc="lower right")
    for color, (label, (episodes, cos, rel_var)) in zip(["C0", "C1"], spread.items()):
        ax1.plot(episodes, cos, "-o", color=color, label=label)
    ax1.set_xscale("log", base=2)
    ax1.set(xlabel="episodes averaged in one estimate", ylim=(0, 1),
            ylabel="cosine with the true gradient",
            title="Same episodes, two estimators")
    ax1.legend(loc="lower right", fontsize=9)
    save_figure(fig, out / "reinforce.svg")


def main(cfg: Config = Config(), out: Path = Path("out/rl-policy_gradient")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    runs = {"with baseline V(s)": [], "without baseline": []}
    evals, steps_to_solve = [], {k: [] for k in runs}
    for s in range(cfg.seed, cfg.seed + cfg.num_seeds):
        for label, use in (("with baseline V(s)", True), ("without baseline", False)):
            policy, _, steps, curve = train(cfg, s, cfg.num_iters, baseline=use)
            runs[label].append((steps, curve))
            steps_to_solve[label].append(steps[-1])
            if use:
                evals.append(evaluate(policy, cfg.eval_episodes, 10_000 + s).mean())
    policy, value, _, _ = train(cfg, cfg.seed, cfg.spread_iters)  # a half-trained agent
    spread = gradient_spread(cfg, policy, value, seed=20_000 + cfg.seed)
    plot(runs, spread, out)
    rel = {k: v[2] for k, v in spread.items()}
    steps_mean = {k: float(np.mean(v)) for k, v in steps_to_solve.items()}
    return {"eval_mean_return": float(np.mean(evals)),
            "eval_worst_seed": float(min(evals)), "num_seeds": cfg.num_seeds,
            "env_steps_with_baseline": steps_mean["with baseline V(s)"],
            "env_steps_without_baseline": steps_mean["without baseline"],
            "rel_var_with_baseline": rel["with baseline V(s)"],
            "rel_var_without_baseline": rel["without baseline"]}
