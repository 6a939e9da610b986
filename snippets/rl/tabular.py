"""Tabular Q-learning and SARSA: the cliff (Sutton & Barto) and slippery FrozenLake.

Page: rl/tabular.md
Run:  python -m snippets run rl/tabular
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
    cliff_episodes: int = 500  # episodes per run on CliffWalking-v1
    cliff_runs: int = 11  # independent runs averaged (odd, so a median run exists)
    cliff_lr: float = 0.5  # step size alpha on the cliff (as in Sutton & Barto)
    cliff_eps: float = 0.1  # fixed epsilon of the epsilon-greedy behaviour
    lake_episodes: int = 20_000  # Q-learning episodes on slippery FrozenLake-v1
    lake_lr: float = 0.05  # step size alpha on the lake, falling linearly...
    lake_lr_end: float = 0.005  # ...to this value at the last episode
    lake_gamma: float = 0.99  # discount on the lake (the cliff uses gamma = 1)
    lake_eps_end: float = 0.05  # epsilon falls linearly from 1 to this value...
    lake_eps_fraction: float = 0.5  # ...over this fraction of the episodes
    lake_checks: int = 40  # exact evaluations of the greedy policy during training
    seed: int = 0

    @classmethod
    def tiny(cls) -> "Config":
        return cls(cliff_episodes=30, cliff_runs=1, lake_episodes=300, lake_checks=3)


# --8<-- [start:updates]
def epsilon_greedy(Q: np.ndarray, s: int, eps: float, rng: np.random.Generator) -> int:
    if rng.random() < eps:
        return int(rng.integers(Q.shape[1]))
    best = np.flatnonzero(Q[s] == Q[s].max())  # break ties at random
    return int(rng.choice(best))


def q_learning_update(Q, s, a, r, s_next, terminated, lr, gamma):
    """Off-policy: bootstrap from the best next action, whatever we will actually do."""
    target = r + (0.0 if terminated else gamma * Q[s_next].max())
    Q[s, a] += lr * (target - Q[s, a])


def sarsa_update(Q, s, a, r, s_next, a_next, terminated, lr, gamma):
    """On-policy: bootstrap from the action the behaviour policy really takes next."""
    target = r + (0.0 if terminated else gamma * Q[s_next, a_next])
    Q[s, a] += lr * (target - Q[s, a])
# --8<-- [end:updates]


# --8<-- [start:torch_update]
def q_learning_update_torch(Q: torch.Tensor, opt, s, a, r, s_next, terminated, gamma):
    """The same update as one SGD step on 0.5 * (target - Q[s, a])^2, target fixed."""
    with torch.no_grad():
        target = r + (0.0 if terminated else gamma * Q[s_next].max())
    loss = 0.5 * (target - Q[s, a]) ** 2
    opt.zero_grad()
    loss.backward()
    opt.step()  # torch.optim.SGD([Q], lr=alpha): Q[s, a] += alpha * (target - Q[s, a])
# --8<-- [end:torch_update]


# --8<-- [start:episode]
def run_episode(env, Q, method, eps, lr, gamma, rng, max_steps=10_000) -> float:
    """One episode of online learning; returns the undiscounted return it collected."""
    s, _ = env.reset(seed=int(rng.integers(2**31)))
    a = epsilon_greedy(Q, s, eps, rng)
    total = 0.0
    for _ in range(max_steps):
        s_next, r, terminated, truncated, _ = env.step(a)
        a_next = epsilon_greedy(Q, s_next, eps, rng)
        if method == "sarsa":
            sarsa_update(Q, s, a, r, s_next, a_next, terminated, lr, gamma)
        else:
            q_learning_update(Q, s, a, r, s_next, terminated, lr, gamma)
        total += r
        if terminated or truncated:
            break
        s, a = s_next, a_next
    return total
# --8<-- [end:episode]


def greedy_path(env, Q, max_steps: int = 100):
    """Follow argmax_a Q on the deterministic cliff: visited states and the return."""
    s, _ = env.reset()
    path, total = [s], 0.0
    for _ in range(max_steps):
        s, r, terminated, _, _ = env.step(int(Q[s].argmax()))
        path.append(s)
        total += r
        if terminated:
            break
    return path, total


def model(env):
    """From env.P: transitions T[s, a, s'], mean reward R[s, a], terminal flags."""
    P = env.unwrapped.P
    nS, nA = len(P), len(P[0])
    T, R, done = np.zeros((nS, nA, nS)), np.zeros((nS, nA)), np.zeros((nS, nA, nS))
    for s in range(nS):
        for a in range(nA):
            for p, s2, r, term in P[s][a]:
                T[s, a, s2] += p
                R[s, a] += p * r
                done[s, a, s2] = term
    return T, R, done


def success_prob(T, R, done, policy=None, horizon: int = 100) -> np.ndarray:
    """Exact P(reach the goal within ``horizon`` steps) from each state, for ``policy``
    (an action per state) or, if None, for the best policy (finite-horizon value
    iteration).
    """
    V = np.zeros(T.shape[0])
    for _ in range(horizon):
        Qh = R + np.einsum("san,san,n->sa", T, 1 - done, V)
        V = Qh.max(1) if policy is None else Qh[np.arange(len(V)), policy]
    return V


def optimal_policy(T, R, done, gamma: float, num_iters: int = 2000) -> np.ndarray:
    """Greedy policy of Q* for discount gamma (value iteration): Q-learning's aim."""
    V = np.zeros(T.shape[0])
    for _ in range(num_iters):
        Qs = R + gamma * np.einsum("san,san,n->sa", T, 1 - done, V)
        V = Qs.max(1)
    return Qs.argmax(1)


def cliff(cfg: Config, rng):
    env = gym.make("CliffWalking-v1")
    curves, greedy, tables = {}, {}, {}
    for method in ("q_learning", "sarsa"):
        runs = np.zeros((cfg.cliff_runs, cfg.cliff_episodes))
        ret, Qs = [], []
        for i in progress(range(cfg.cliff_runs), desc=method):
            Q = np.zeros((48, 4))
            for e in range(cfg.cliff_episodes):
                runs[i, e] = run_episode(env, Q, method, cfg.cliff_eps, cfg.cliff_lr,
                                         1.0, rng)
            ret.append(greedy_path(env, Q)[1])
            Qs.append(Q)
        ret = np.array(ret)
        median_run = int(np.argsort(ret, kind="stable")[len(ret) // 2])  # gets drawn
        curves[method], greedy[method] = runs.mean(0), ret
        tables[method] = Qs[median_run]
    return env, curves, greedy, tables


def lake(cfg: Config, rng):
    env = gym.make("FrozenLake-v1", is_slippery=True)  # 100-step time limit
    T, R, done = model(env)
    Q = np.zeros((16, 4))
    checks, every = [], max(1, cfg.lake_episodes // cfg.lake_checks)
    decay = cfg.lake_eps_fraction * cfg.lake_episodes
    for e in progress(range(cfg.lake_episodes), desc="FrozenLake"):
        eps = max(cfg.lake_eps_end, 1 - (1 - cfg.lake_eps_end) * e / decay)
        lr = cfg.lake_lr + (cfg.lake_lr_end - cfg.lake_lr) * e / cfg.lake_episodes
        run_episode(env, Q, "q_learning", eps, lr, cfg.lake_gamma, rng)
        if (e + 1) % every == 0:
            checks.append((e + 1, success_prob(T, R, done, Q.argmax(1))[0]))
    target = success_prob(T, R, done, optimal_policy(T, R, done, cfg.lake_gamma))[0]
    return env, Q, np.array(checks), success_prob(T, R, done)[0], target


def plot_cliff(env, curves, tables, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    k = 10  # moving average over episodes
    for method, c in curves.items():
        ax.plot(np.convolve(c, np.ones(k) / k, mode="valid"),
                label=method.replace("_", "-"))
    ax.set(ylim=(-100, 0), xlabel="episode", ylabel="return per episode (online)",
           title="CliffWalking, epsilon = 0.1: return while learning")
    ax.axhline(-13, color="gray", ls="--", lw=1, label="optimal path (-13)")
    ax.legend(loc="lower right")
    save_figure(fig, out / "cliff_returns.svg")
    fig, axes = plt.subplots(2, 1, figsize=(7.6, 4.6))
    for ax, (method, Q) in zip(axes, tables.items()):
        V = Q.max(1).reshape(4, 12)
        im = ax.imshow(V, cmap="viridis", vmin=-25, vmax=0)
        fig.colorbar(im, ax=ax, label="max_a Q(s, a)", shrink=0.9)
        cliff_cells = np.ma.masked_where(~env.unwrapped._cliff, np.ones((4, 12)))
        ax.imshow(cliff_cells, cmap="gray")
        path, total = greedy_path(env, Q)
        rows, cols = np.unravel_index(path, (4, 12))
        ax.plot(cols, rows, "-o", color="C1", lw=2, ms=3)
        ax.text(0, 3, "S", ha="center", va="center", color="w", weight="bold")
        ax.text(11, 3, "G", ha="center", va="center", color="k", weight="bold")
        ax.text(5.5, 3, "cliff: reward -100, back to S", ha="center", va="center",
                color="w")
        ax.set_title(f"{method.replace('_', '-')}: greedy path, return {total:.0f}")
        ax.set_xticks([]), ax.set_yticks([]), ax.grid(False)
    save_figure(fig, out / "cliff_paths.svg")


def plot_lake(env, Q, checks, optimum, out: Path) -> None:
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9, 3.6), width_ratios=[1.5, 1])
    ax0.plot(checks[:, 0], checks[:, 1], "-o", ms=3, label="greedy policy of Q")
    ax0.axhline(optimum, color="gray", ls="--", lw=1, label=f"optimum {optimum:.3f}")
    ax0.set(xlabel="episode", ylabel="P(reach goal), exact", ylim=(0, 0.8),
            xlim=(0, checks[-1, 0] * 1.02),
            title="Q-learning on slippery FrozenLake")
    ax0.legend(loc="lower right")
    desc = env.unwrapped.desc.astype(str)
    ax1.imshow(Q.max(1).reshape(4, 4), cmap="viridis")
    arrows = {0: "←", 1: "↓", 2: "→", 3: "↑"}  # FrozenLake's action numbering
    for s in range(16):
        r, c = divmod(s, 4)
        cell = desc[r, c]
        label = cell if cell in "HG" else arrows[int(Q[s].argmax())]
        ax1.text(c, r, label, ha="center", va="center", fontsize=14,
                 color="w" if cell != "G" else "k")
    ax1.set_title("max_a Q(s, a) and greedy action")
    ax1.set_xticks([]), ax1.set_yticks([]), ax1.grid(False)
    save_figure(fig, out / "frozenlake.svg")


def main(cfg: Config = Config(), out: Path = Path("out/rl-tabular")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    rng = np.random.default_rng(cfg.seed)
    env, curves, greedy, tables = cliff(cfg, rng)
    plot_cliff(env, curves, tables, out)
    lake_env, Q, checks, optimum, target = lake(cfg, rng)
    plot_lake(lake_env, Q, checks, optimum, out)
    tail = max(1, cfg.cliff_episodes // 5)
    reached = {k: v > -100 for k, v in greedy.items()}  # -100: looped to the step cap
    return {"cliff_q_greedy_median": float(np.median(greedy["q_learning"])),
            "cliff_sarsa_greedy_median": float(np.median(greedy["sarsa"])),
            "cliff_q_optimal_runs": float((greedy["q_learning"] == -13).mean()),
            "cliff_q_greedy_reach": float(reached["q_learning"].mean()),
            "cliff_sarsa_greedy_reach": float(reached["sarsa"].mean()),
            "cliff_runs": cfg.cliff_runs,
            "cliff_q_online_return": float(curves["q_learning"][-tail:].mean()),
            "cliff_sarsa_online_return": float(curves["sarsa"][-tail:].mean()),
            "lake_greedy_success": float(checks[-1, 1]), "lake_optimum": float(optimum),
            "lake_gamma_optimum": float(target)}
