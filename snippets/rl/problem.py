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

ZH = {
    "γ = {}": "γ = {}",
    "1/(1-γ) steps before the reward": "奖励之前 1/(1-γ) 步（有效视野）",
    "time step t": "时间步 t",
    "return G_t (log scale)": "回报 G_t（对数坐标）",
    "One reward of +1 at the last step: credit received by step t":
        "只有最后一步得到 +1：第 t 步分到的功劳",
    "Monte Carlo: mean of the returns seen": "蒙特卡洛：观测回报的平均",
    "exact: Bellman equation solved": "精确值：解贝尔曼方程",
    "Random policy on slippery FrozenLake: V(s) = E[return | s]":
        "随机策略在打滑的冰湖上：V(s) = E[回报 | s]",
    "H = hole, G = goal: the episode ends there, so V = 0":
        "H = 冰洞，G = 终点：回合在那里结束，所以 V = 0",
}


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
    T = cfg.episode_len
    fig, ax = plt.subplots(figsize=(6.8, 3.6))
    for gamma, style in zip(cfg.gammas, ("-", "--", "-.", ":")):
        line, = ax.plot(discounted_returns(rewards, gamma), ls=style, lw=1.8,
                        label=f"γ = {gamma:g}")
        k = 1 / (1 - gamma) if gamma < 1 else np.inf  # effective horizon
        if k < T:  # mark the step the horizon reaches: weight gamma^k ~ 1/e
            t = T - 1 - round(k)
            ax.plot(t, gamma ** round(k), "o", ms=7, mfc="w", color=line.get_color())
    ax.axhline(np.exp(-1), color="gray", lw=0.8)
    ax.text(20, np.exp(-1) * 0.6, "1/e", color="gray")
    ax.plot([], [], "o", ms=7, mfc="w", color="gray",
            label="1/(1-γ) steps before the reward")
    ax.set_yscale("log")
    ax.set(xlabel="time step t", ylabel="return G_t (log scale)", ylim=(1e-4, 2),
           title="One reward of +1 at the last step: credit received by step t")
    ax.legend(loc="lower left")
    save_figure(fig, out / "credit.svg", zh=ZH)
    return discounted_returns(rewards, 0.9)[0]


def plot_values(env, V_mc, V_exact, out: Path) -> None:
    desc = env.unwrapped.desc.astype(str)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.9))
    vmax = V_exact.max()
    titles = ("Monte Carlo: mean of the returns seen", "exact: Bellman equation solved")
    for ax, V, title in zip(axes, (V_mc, V_exact), titles):
        im = ax.imshow(V.reshape(4, 4), cmap="viridis", vmin=0, vmax=vmax)
        for s in range(16):
            r, c = divmod(s, 4)
            text = desc[r, c] if desc[r, c] in "HG" else f"{V[s]:.3f}"
            ax.text(c, r, text, ha="center", va="center", weight="bold"
                    if desc[r, c] in "HG" else "normal",
                    color="w" if V[s] < 0.6 * vmax else "k")
        ax.set_title(title, fontsize=10)
        ax.set_xticks([]), ax.set_yticks([]), ax.grid(False)
    fig.colorbar(im, ax=axes, label="V(s)", shrink=0.85)
    fig.suptitle("Random policy on slippery FrozenLake: V(s) = E[return | s]")
    fig.text(0.42, 0.05, "H = hole, G = goal: the episode ends there, so V = 0",
             ha="center")
    save_figure(fig, out / "frozenlake_values.svg", zh=ZH)


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
    open_cells = [s for s in range(16) if desc_of(env)[s] in "SF"]
    return {"episode_len": cfg.episode_len, "num_episodes": cfg.num_episodes,
            "sparse_G0_gamma_0.9": G0,
            "sparse_G0_gamma_0.99": discounted_returns([0.0] * (cfg.episode_len - 1)
                                                       + [1.0], 0.99)[0],
            "random_success_rate": success,
            "V_start_mc": float(V_mc[0]), "V_start_exact": float(V_exact[0]),
            "V_left_of_goal": float(V_exact[14]),
            "V_cell_13": float(V_exact[13]), "V_cell_10": float(V_exact[10]),
            "V_above_goal": float(V_exact[11]),
            "above_goal_is_hole": float(desc_of(env)[11] == "H"),
            "best_open_cell": float(max(open_cells, key=lambda s: V_exact[s])),
            "mc_vs_exact_max_err": float(np.abs(V_mc - V_exact).max()),
            "loop_vs_matrix_max_err": float((discounted_returns_matrix(r, 0.9) - loop)
                                            .abs().max())}


def desc_of(env) -> str:
    """The map as one string, cell s at index s: S start, F ice, H hole, G goal."""
    return "".join(env.unwrapped.desc.astype(str).flatten())


CLAIMS = {
    "loop_and_matrix_agree": lambda m: m["loop_vs_matrix_max_err"] < 1e-12,
    "gamma_0.9_leaves_under_1pct_at_the_start": lambda m: m["sparse_G0_gamma_0.9"]
    < 0.01,
    "gamma_0.99_leaves_over_half_at_the_start": lambda m: m["sparse_G0_gamma_0.99"]
    > 0.5,
    "random_walker_rarely_reaches_goal": lambda m: m["random_success_rate"] < 0.05,
    "cell_left_of_goal_is_worth_most": lambda m: m["best_open_cell"] == 14,
    "cell_above_goal_is_a_hole": lambda m: m["above_goal_is_hole"] == 1
    and m["V_above_goal"] == 0,
    "next_best_cells_are_13_then_10": lambda m: m["V_left_of_goal"] > m["V_cell_13"]
    > m["V_cell_10"] > m["V_start_exact"],
    "monte_carlo_close_to_exact": lambda m: m["mc_vs_exact_max_err"] < 0.05,
}
