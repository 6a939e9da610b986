"""The RL problem: agent-environment loop, discounted returns, how credit spreads back.

Page: rl/problem.md
Run:  python -m snippets run rl/problem
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import matplotlib.pyplot as plt
import numpy as np
import torch

from snippets.common import progress, save_figure, seed_everything, use_style


@dataclass
class Config:
    episode_len: int = 50  # length of the one-reward-at-the-end episode
    gammas: tuple = (0.5, 0.9, 0.99, 1.0)  # discounts compared in the credit figure
    num_episodes: int = 50_000  # random-policy episodes on FrozenLake for V estimates
    gamma: float = 0.99  # discount for the FrozenLake values
    seed: int = 0

    @classmethod
    def tiny(cls) -> "Config":
        return cls(num_episodes=300)


# --8<-- [start:returns]
def discounted_returns(rewards: list[float], gamma: float) -> list[float]:
    """G_t = r_{t+1} + gamma * G_{t+1}, computed backwards from the episode's end."""
    G, returns = 0.0, []
    for r in reversed(rewards):
        G = r + gamma * G
        returns.append(G)
    return returns[::-1]
# --8<-- [end:returns]


# --8<-- [start:returns_torch]
def discounted_returns_matrix(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    """All G_t at once: G = M r with M[t, k] = gamma^(k - t) for k >= t, else 0."""
    T = rewards.shape[-1]
    t = torch.arange(T)
    power = (t[None, :] - t[:, None]).clamp(min=0).to(rewards.dtype)
    M = torch.triu(gamma ** power)  # (T, T) upper triangular
    return rewards @ M.T  # works for one episode (T,) or a batch (N, T)
# --8<-- [end:returns_torch]


# --8<-- [start:loop]
def random_episode(env, rng: np.random.Generator):
    """Run one episode with a uniformly random policy; return the states and rewards."""
    s, _ = env.reset(seed=int(rng.integers(2**31)))
    states, rewards = [], []
    while True:
        a = int(rng.integers(env.action_space.n))  # the policy: here a coin toss
        s_next, r, terminated, truncated, _ = env.step(a)
        states.append(s)
        rewards.append(float(r))
        if terminated or truncated:  # hole or goal / time limit
            return states, rewards
        s = s_next
# --8<-- [end:loop]


def monte_carlo_values(env, cfg: Config, rng) -> tuple[np.ndarray, float]:
    """Every-visit Monte Carlo: V(s) = average of the returns G_t seen from s."""
    total, count, successes = np.zeros(16), np.zeros(16), 0
    for _ in progress(range(cfg.num_episodes), desc="random episodes"):
        states, rewards = random_episode(env, rng)
        for s, G in zip(states, discounted_returns(rewards, cfg.gamma)):
            total[s] += G
            count[s] += 1
        successes += rewards[-1] > 0
    return total / np.maximum(count, 1), successes / cfg.num_episodes


def exact_values(env, gamma: float) -> np.ndarray:
    """Solve the random policy's Bellman equation V = r_pi + gamma P_pi V exactly."""
    P = env.unwrapped.P
    nS, nA = len(P), len(P[0])
    P_pi, r_pi = np.zeros((nS, nS)), np.zeros(nS)
    for s in range(nS):
        for a in range(nA):
            for p, s2, r, terminated in P[s][a]:
                r_pi[s] += p * r / nA
                if not terminated:  # no value after a hole or the goal
                    P_pi[s, s2] += p / nA
    return np.linalg.solve(np.eye(nS) - gamma * P_pi, r_pi)


def plot_credit(cfg: Config, out: Path) -> float:
    rewards = [0.0] * (cfg.episode_len - 1) + [1.0]  # one reward, at the very end
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    for gamma in cfg.gammas:
        ax.plot(discounted_returns(rewards, gamma), label=f"gamma = {gamma:g}")
    ax.set(xlabel="time step t", ylabel="return G_t",
           title="One reward of +1 at the last step: credit received by step t")
    ax.legend(loc="lower left", bbox_to_anchor=(0.02, 0.12))  # the empty corner
    save_figure(fig, out / "credit.svg")
    return discounted_returns(rewards, 0.9)[0]


def plot_values(env, V_mc, V_exact, out: Path) -> None:
    desc = env.unwrapped.desc.astype(str)
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.8))
    vmax = V_exact.max()
    titles = ("Monte Carlo average of G_t", "exact: solve the Bellman equation")
    for ax, V, title in zip(axes, (V_mc, V_exact), titles):
        ax.imshow(V.reshape(4, 4), cmap="viridis", vmin=0, vmax=vmax)
        for s in range(16):
            r, c = divmod(s, 4)
            text = desc[r, c] if desc[r, c] in "HG" else f"{V[s]:.3f}"
            ax.text(c, r, text, ha="center", va="center",
                    color="w" if V[s] < 0.6 * vmax else "k")
        ax.set_title(title)
        ax.set_xticks([]), ax.set_yticks([]), ax.grid(False)
    fig.suptitle("Random policy on slippery FrozenLake: V(s) = E[G_t | s_t = s]")
    save_figure(fig, out / "frozenlake_values.svg")


def main(cfg: Config = Config(), out: Path = Path("out/rl-problem")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    rng = np.random.default_rng(cfg.seed)
    G0 = plot_credit(cfg, out)
    env = gym.make("FrozenLake-v1", is_slippery=True, max_episode_steps=10_000)
    V_mc, success = monte_carlo_values(env, cfg, rng)
    V_exact = exact_values(env, cfg.gamma)
    plot_values(env, V_mc, V_exact, out)
    r = torch.randn(3, cfg.episode_len, dtype=torch.float64)
    loop = torch.tensor([discounted_returns(row.tolist(), 0.9) for row in r],
                        dtype=torch.float64)
    return {"sparse_G0_gamma_0.9": G0, "random_success_rate": success,
            "V_start_mc": float(V_mc[0]), "V_start_exact": float(V_exact[0]),
            "mc_vs_exact_max_err": float(np.abs(V_mc - V_exact).max()),
            "loop_vs_matrix_max_err": float((discounted_returns_matrix(r, 0.9) - loop)
                                            .abs().max())}
