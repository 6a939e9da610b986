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

ZH = {
    "Q-learning": "Q 学习",
    "SARSA, epsilon and alpha decaying": "SARSA，epsilon 与 α 逐渐减小",
    "episode": "回合",
    "return per episode (online, symlog scale)": "每回合回报（在线，对称对数坐标）",
    "CliffWalking, epsilon = 0.1: return while learning":
        "CliffWalking，epsilon = 0.1：学习过程中的回报",
    "optimal path (-13)": "最优路径（-13）",
    "max_a Q(s, a)": "max_a Q(s, a)",
    "cliff: reward -100, back to S": "悬崖：奖励 -100，回到 S",
    "Q-learning: greedy path, return {}": "Q 学习：贪心路径，回报 {}",
    "SARSA: greedy path, return {}": "SARSA：贪心路径，回报 {}",
    "greedy policy of Q": "Q 的贪心策略",
    "best policy, 100-step limit ({})": "最优策略，100 步上限（{}）",
    "best stationary policy for γ = 0.99 ({})": "γ = 0.99 下最优的固定策略（{}）",
    "P(reach goal), exact": "P(到达终点)，精确值",
    "Q-learning on slippery FrozenLake": "打滑冰湖上的 Q 学习",
    "max_a Q(s, a) and greedy action": "max_a Q(s, a) 与贪心动作",
    "after {} sweep": "第 {} 轮扫描后",
    "after {} sweeps": "第 {} 轮扫描后",
    "V* and its greedy actions": "V* 及其贪心动作",
    "Value iteration on slippery FrozenLake (γ = 0.99): V_k(s)":
        "打滑冰湖上的价值迭代（γ = 0.99）：V_k(s)",
}


@dataclass
class Config:
    cliff_episodes: int = 500  # episodes per run on CliffWalking-v1
    cliff_runs: int = 11  # independent runs averaged (odd, so a median run exists)
    cliff_lr: float = 0.5  # step size alpha on the cliff (as in Sutton & Barto)
    cliff_eps: float = 0.1  # fixed epsilon of the epsilon-greedy behaviour
    cliff_lr_end: float = 0.05  # decaying arm: alpha falls linearly to this value
    #                             while epsilon falls linearly to 0 (SARSA only)
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


GREEDY_MAX_STEPS = 100  # a greedy walk that has not ended by then is looping


def greedy_path(env, Q, max_steps: int = GREEDY_MAX_STEPS):
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


# --8<-- [start:value_iteration]
def backup(T, R, done, V, gamma):
    """Q(s, a) = R(s, a) + gamma * sum_s' T(s, a, s') V(s'); nothing after an end."""
    return R + gamma * np.einsum("san,san,n->sa", T, 1 - done, V)


def value_iteration(T, R, done, gamma: float, tol: float = 1e-10):
    """Sweep V(s) <- max_a Q(s, a) until it stops moving: V*, Q* and the sweeps used."""
    V = np.zeros(T.shape[0])
    for sweep in range(1, 100_000):
        Q = backup(T, R, done, V, gamma)
        V, change = Q.max(1), np.abs(Q.max(1) - V).max()
        if change < tol:
            return V, Q, sweep
    raise RuntimeError("no convergence: is gamma < 1 or every policy proper?")
# --8<-- [end:value_iteration]


def success_prob(T, R, done, policy=None, horizon: int = 100) -> np.ndarray:
    """Exact P(reach the goal within ``horizon`` steps) from each state, for ``policy``
    (an action per state) or, if None, for the best policy (finite-horizon value
    iteration: V_k = max_a backup(V_{k-1}) with gamma = 1, k = 1..horizon).
    """
    V = np.zeros(T.shape[0])
    for _ in range(horizon):
        Qh = backup(T, R, done, V, 1.0)
        V = Qh.max(1) if policy is None else Qh[np.arange(len(V)), policy]
    return V


def optimal_policy(T, R, done, gamma: float) -> np.ndarray:
    """Greedy policy of Q* for discount gamma (value iteration): Q-learning's aim."""
    return value_iteration(T, R, done, gamma)[1].argmax(1)


def cliff_run(env, method, cfg: Config, rng, decay: bool = False):
    """One run of online learning on the cliff: returns per episode and the Q-table."""
    Q, returns = np.zeros((48, 4)), np.zeros(cfg.cliff_episodes)
    for e in range(cfg.cliff_episodes):
        frac = e / cfg.cliff_episodes
        eps = cfg.cliff_eps * (1 - frac) if decay else cfg.cliff_eps
        lr = cfg.cliff_lr + (cfg.cliff_lr_end - cfg.cliff_lr) * frac if decay \
            else cfg.cliff_lr
        returns[e] = run_episode(env, Q, method, eps, lr, 1.0, rng)
    return returns, Q


ARMS = {"q_learning": ("q_learning", False), "sarsa": ("sarsa", False),
        "sarsa_decay": ("sarsa", True)}  # name: (update rule, decaying eps/alpha)


def cliff(cfg: Config, rng):
    env = gym.make("CliffWalking-v1")
    curves, greedy, tables = {}, {}, {}
    for arm, (method, decay) in ARMS.items():
        runs, ret, Qs = [], [], []
        for _ in progress(range(cfg.cliff_runs), desc=arm):
            returns, Q = cliff_run(env, method, cfg, rng, decay)
            runs.append(returns), ret.append(greedy_path(env, Q)[1]), Qs.append(Q)
        ret = np.array(ret)
        median_run = int(np.argsort(ret, kind="stable")[len(ret) // 2])  # gets drawn
        curves[arm], greedy[arm], tables[arm] = np.mean(runs, 0), ret, Qs[median_run]
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
    return env, Q, np.array(checks)


LABELS = {"q_learning": "Q-learning", "sarsa": "SARSA",
          "sarsa_decay": "SARSA, epsilon and alpha decaying"}
STYLES = {"q_learning": "-", "sarsa": "--", "sarsa_decay": ":"}


SMOOTH = 10  # episodes in the moving average of the cliff's learning curves


def plot_cliff(env, curves, tables, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.8, 3.6))
    k = SMOOTH
    for arm, c in curves.items():
        ax.plot(np.arange(k, len(c) + 1), np.convolve(c, np.ones(k) / k, "valid"),
                ls=STYLES[arm], lw=1.6, label=LABELS[arm])
    ax.set_yscale("symlog", linthresh=10)  # early returns reach the thousands
    ticks = [-13, -25, -50, -100, -250, -500, -1000]
    ax.set_yticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    ax.set(xlabel="episode", ylabel="return per episode (online, symlog scale)",
           title="CliffWalking, epsilon = 0.1: return while learning")
    ax.axhline(-13, color="gray", lw=1, label="optimal path (-13)")
    ax.legend(loc="lower right")
    save_figure(fig, out / "cliff_returns.svg", zh=ZH)
    fig, axes = plt.subplots(2, 1, figsize=(7.6, 4.6))
    for ax, arm in zip(axes, ("q_learning", "sarsa")):
        Q = tables[arm]
        im = ax.imshow(Q.max(1).reshape(4, 12), cmap="viridis", vmin=-25, vmax=0)
        fig.colorbar(im, ax=ax, label="max_a Q(s, a)", shrink=0.9)
        cliff_cells = np.ma.masked_where(~env.unwrapped._cliff, np.ones((4, 12)))
        ax.imshow(cliff_cells, cmap="gray")
        path, total = greedy_path(env, Q)
        rows, cols = np.unravel_index(path, (4, 12))
        ax.plot(cols, rows, "-o", color="C3", lw=2, ms=3)
        ax.text(0, 3, "S", ha="center", va="center", color="w", weight="bold")
        ax.text(11, 3, "G", ha="center", va="center", color="k", weight="bold")
        ax.text(5.5, 3, "cliff: reward -100, back to S", ha="center", va="center",
                color="w")
        ax.set_title(f"{LABELS[arm]}: greedy path, return {total:.0f}")
        ax.set_xticks([]), ax.set_yticks([]), ax.grid(False)
    save_figure(fig, out / "cliff_paths.svg", zh=ZH)


ARROWS = {0: "←", 1: "↓", 2: "→", 3: "↑"}  # FrozenLake's action numbering


def draw_lake(ax, desc, values, actions=None, **imshow):
    """The 4x4 lake coloured by ``values``; in each open cell its greedy arrow (or,
    without ``actions``, its value)."""
    im = ax.imshow(values.reshape(4, 4), cmap="viridis", **imshow)
    for s in range(16):
        r, c = divmod(s, 4)
        cell = desc[r, c]
        if cell in "HG":
            label, size = cell, 12
        elif actions is None:
            label, size = f"{values[s]:.2f}", 9
        else:
            label, size = ARROWS[int(actions[s])], 13
        ax.text(c, r, label, ha="center", va="center", fontsize=size,
                color="w" if values[s] < 0.6 * imshow.get("vmax", 1) else "k")
    ax.set_xticks([]), ax.set_yticks([]), ax.grid(False)
    return im


def plot_lake(env, Q, checks, optimum, target, out: Path) -> None:
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9.6, 3.6), width_ratios=[1.5, 1])
    ax0.plot(checks[:, 0], checks[:, 1], "-o", ms=3, label="greedy policy of Q")
    ax0.axhline(optimum, color="gray", ls="--", lw=1,
                label=f"best policy, 100-step limit ({optimum:.3f})")
    ax0.axhline(target, color="k", ls=":", lw=1.2,
                label=f"best stationary policy for γ = 0.99 ({target:.3f})")
    ax0.set(xlabel="episode", ylabel="P(reach goal), exact", ylim=(0, 0.85),
            xlim=(0, checks[-1, 0] * 1.02),
            title="Q-learning on slippery FrozenLake")
    ax0.legend(loc="lower right", fontsize=8)
    desc = env.unwrapped.desc.astype(str)
    V = Q.max(1)
    im = draw_lake(ax1, desc, V, Q.argmax(1), vmin=0, vmax=max(V.max(), 1e-9))
    fig.colorbar(im, ax=ax1, shrink=0.85, label="max_a Q(s, a)")
    ax1.set_title("max_a Q(s, a) and greedy action", fontsize=10)
    save_figure(fig, out / "frozenlake.svg", zh=ZH)


def plot_value_iteration(env, T, R, done, gamma, out: Path, shown=(1, 2, 4, 8, 32)):
    """V_k after k sweeps: value spreads back from the goal about a cell per sweep."""
    desc = env.unwrapped.desc.astype(str)
    V_star, Q_star, _ = value_iteration(T, R, done, gamma)
    fig, axes = plt.subplots(2, 3, figsize=(8.4, 5.8))
    axes = axes.flatten()
    V = np.zeros(T.shape[0])
    for k in range(1, max(shown) + 1):
        V = backup(T, R, done, V, gamma).max(1)
        if k in shown:
            ax = axes[shown.index(k)]
            draw_lake(ax, desc, V, vmin=0, vmax=V_star.max())
            ax.set_title(f"after {k} sweep" + ("s" if k > 1 else ""), fontsize=10)
    im = draw_lake(axes[-1], desc, V_star, Q_star.argmax(1), vmin=0,
                   vmax=V_star.max())
    axes[-1].set_title("V* and its greedy actions", fontsize=10)
    fig.colorbar(im, ax=axes, shrink=0.8, label="V(s)")
    fig.suptitle("Value iteration on slippery FrozenLake (γ = 0.99): V_k(s)")
    save_figure(fig, out / "value_iteration.svg", zh=ZH)


def main(cfg: Config = Config(), out: Path = Path("out/rl-tabular")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    rng = np.random.default_rng(cfg.seed)
    env, curves, greedy, tables = cliff(cfg, rng)
    plot_cliff(env, curves, tables, out)
    lake_env, Q, checks = lake(cfg, rng)
    T, R, done = model(lake_env)
    V_star, Q_star, sweeps = value_iteration(T, R, done, cfg.lake_gamma)
    optimum = success_prob(T, R, done)[0]
    target = success_prob(T, R, done, Q_star.argmax(1))[0]
    plot_lake(lake_env, Q, checks, optimum, target, out)
    plot_value_iteration(lake_env, T, R, done, cfg.lake_gamma, out)
    tail = max(1, cfg.cliff_episodes // 5)
    m = {"cliff_runs": cfg.cliff_runs, "cliff_episodes": cfg.cliff_episodes,
         "cliff_eps": cfg.cliff_eps, "cliff_tail_episodes": tail,
         "smooth_episodes": SMOOTH, "greedy_max_steps": GREEDY_MAX_STEPS,
         "lake_episodes": cfg.lake_episodes}
    for arm in ARMS:
        g = greedy[arm]
        m[f"cliff_{arm}_greedy_median"] = float(np.median(g))
        m[f"cliff_{arm}_greedy_reach"] = float((g > -100).mean())  # -100: step cap
        m[f"cliff_{arm}_optimal_runs"] = float((g == -13).mean())
        m[f"cliff_{arm}_online_return"] = float(curves[arm][-tail:].mean())
    others = [Q_star[0, a] for a in (1, 2, 3)]
    m.update({
        "lake_greedy_success": float(checks[-1, 1]), "lake_optimum": float(optimum),
        "lake_gamma_optimum": float(target), "lake_vi_sweeps": sweeps,
        "lake_greedy_start_action": float(Q[0].argmax()),
        "lake_opt_start_action": float(Q_star[0].argmax()),
        "lake_opt_cell4_action": float(Q_star[4].argmax()),
        "lake_Qstar_start_left": float(Q_star[0, 0]),
        "lake_Qstar_start_best_other": float(max(others)),
        "lake_Vstar_cell1": float(V_star[1]), "lake_Vstar_cell4": float(V_star[4]),
        "lake_Vstar_row2_best_cell": float(4 + np.argmax(V_star[4:8])),
        "vi_cells_valued_after_1_sweep": float((backup(T, R, done, np.zeros(16),
                                                        cfg.lake_gamma).max(1) > 0)
                                               .sum()),
        "vi_cell_valued_after_1_sweep": float(np.argmax(backup(
            T, R, done, np.zeros(16), cfg.lake_gamma).max(1))),
    })
    return m


LEFT = 0  # FrozenLake's action "left"
CLAIMS = {
    "q_learning_greedy_walks_the_edge_in_every_run": lambda m:
        m["cliff_q_learning_optimal_runs"] == 1,
    "sarsa_earns_more_online": lambda m: m["cliff_sarsa_online_return"]
    > m["cliff_q_learning_online_return"] + 10,
    "sarsa_greedy_path_is_longer": lambda m: m["cliff_sarsa_greedy_median"] < -13,
    "sarsa_greedy_sometimes_loops_with_constant_alpha": lambda m:
        m["cliff_sarsa_greedy_reach"] < 1,
    "decaying_eps_and_alpha_sarsa_always_reaches_goal": lambda m:
        m["cliff_sarsa_decay_greedy_reach"] == 1,
    "decayed_sarsa_still_takes_the_safe_route": lambda m:
        m["cliff_sarsa_decay_optimal_runs"] == 0
        and m["cliff_sarsa_decay_greedy_median"] < -13,
    "decaying_eps_raises_sarsa_online_return": lambda m:
        m["cliff_sarsa_decay_online_return"] > m["cliff_sarsa_online_return"],
    "q_learning_reaches_the_gamma_optimum": lambda m: m["lake_greedy_success"]
    > m["lake_gamma_optimum"] - 0.005,
    "stationary_optimum_just_below_finite_horizon_optimum": lambda m:
        0 < m["lake_optimum"] - m["lake_gamma_optimum"] < 0.01,
    "optimal_policy_goes_left_at_start_and_cell_4": lambda m:
        m["lake_opt_start_action"] == LEFT and m["lake_opt_cell4_action"] == LEFT,
    "left_at_start_wins_by_a_small_margin": lambda m: 0
    < m["lake_Qstar_start_left"] - m["lake_Qstar_start_best_other"] < 0.03,
    "one_sweep_values_only_the_cell_next_to_the_goal": lambda m:
        m["vi_cells_valued_after_1_sweep"] == 1
        and m["vi_cell_valued_after_1_sweep"] == 14,
    "q_learning_agrees_with_value_iteration_at_the_start": lambda m:
        m["lake_greedy_start_action"] == m["lake_opt_start_action"],
    "cell_4_beats_cell_1": lambda m: m["lake_Vstar_cell4"] > m["lake_Vstar_cell1"]
    and m["lake_Vstar_row2_best_cell"] == 4,
}
