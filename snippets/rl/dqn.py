"""DQN on CartPole-v1: a replay buffer, a target network, and REINFORCE for comparison.

Page: rl/dqn.md
Run:  python -m snippets run rl/dqn
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from snippets.common import progress, save_figure, seed_everything, use_style
from snippets.rl import policy_gradient as pg

ZH = {
    "DQN, epsilon-greedy (20-episode average)": "DQN，epsilon-贪心（20 回合滑动平均）",
    "REINFORCE + baseline (16-episode batches)": "REINFORCE + 基线（每批 16 个回合）",
    "solved (475)": "解决线（475）",
    "environment steps (thousands), DQN's checks included":
        "环境步数（千），含 DQN 的检查回合",
    "environment steps of training (thousands)": "训练用的环境步数（千）",
    "return": "回报",
    "Training returns, one line per seed": "训练回报，每个种子一条线",
    "DQN greedy policy, {}-episode checks (star: kept)":
        "DQN 贪心策略的 {} 回合检查（星号：保留的网络）",
    "seed {}": "种子 {}",
}


@dataclass
class Config:
    total_steps: int = 50_000  # environment steps per seed
    num_envs: int = 4  # CartPole copies stepped together
    num_hiddens: int = 64  # width of the two hidden layers of the Q-network
    lr: float = 2.3e-3  # Adam step size
    gamma: float = 0.99  # discount
    buffer_size: int = 50_000  # replay buffer capacity (transitions)
    batch_size: int = 64  # transitions per gradient step
    learning_starts: int = 1_000  # random steps before the first update
    train_every: int = 256  # env steps between bursts of updates...
    grad_steps: int = 128  # ...of this many gradient steps
    target_every: int = 128  # gradient steps between copies into the target network
    eps_start: float = 1.0  # epsilon-greedy exploration, annealed linearly...
    eps_end: float = 0.04  # ...to this value...
    eps_fraction: float = 0.16  # ...over this fraction of total_steps
    eval_every: int = 2_500  # env steps between greedy checks (the best net is kept)
    check_episodes: int = 10  # episodes per check (they cost env steps too)
    eval_episodes: int = 100  # final greedy evaluation (gymnasium's threshold: 475)
    num_seeds: int = 3  # independent runs of both DQN and REINFORCE
    seed: int = 0

    @classmethod
    def tiny(cls) -> "Config":
        return cls(total_steps=1_200, learning_starts=400, train_every=200,
                   grad_steps=8, eval_every=600, eval_episodes=4, num_hiddens=32)


def make_env(num_envs: int):
    return gym.make_vec("CartPole-v1", num_envs=num_envs,
                        vectorization_mode="vector_entry_point")


# --8<-- [start:buffer]
class ReplayBuffer:
    """A ring of the last ``capacity`` transitions (s, a, r, s', terminated)."""

    def __init__(self, capacity: int, obs_dim: int):
        self.s = np.zeros((capacity, obs_dim), np.float32)
        self.s_next = np.zeros((capacity, obs_dim), np.float32)
        self.a = np.zeros(capacity, np.int64)
        self.r = np.zeros(capacity, np.float32)
        self.term = np.zeros(capacity, np.float32)
        self.capacity, self.size, self.pos = capacity, 0, 0

    def add(self, s, a, r, s_next, term):  # each argument holds a batch of transitions
        for i in range(len(a)):
            j = self.pos
            self.s[j], self.a[j], self.r[j], self.s_next[j], self.term[j] = (
                s[i], a[i], r[i], s_next[i], term[i])
            self.pos = (j + 1) % self.capacity
            self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator):
        idx = rng.integers(0, self.size, batch_size)  # uniform, with replacement
        return tuple(torch.as_tensor(x[idx])
                     for x in (self.s, self.a, self.r, self.s_next, self.term))
# --8<-- [end:buffer]


# --8<-- [start:store]
def store_step(buffer, obs, a, r, obs_next, terminated, truncated, prev_done):
    """Store one vectorised step; return which copies ended (their next step only
    resets). Only a real end is stored as terminal: a time limit still bootstraps."""
    keep = ~prev_done  # a copy that ended last step was reset by this one: not real
    buffer.add(obs[keep], a[keep], r[keep], obs_next[keep], terminated[keep])
    return terminated | truncated
# --8<-- [end:store]


# --8<-- [start:td_target]
def td_target(r, s_next, term, target_net, gamma):
    """y = r + gamma * max_a' Q_target(s', a'); no bootstrap from a terminal state."""
    with torch.no_grad():
        return r + gamma * (1 - term) * target_net(s_next).max(dim=1).values
# --8<-- [end:td_target]


# --8<-- [start:update]
def dqn_update(q_net, target_net, opt, batch, gamma):
    s, a, r, s_next, term = batch
    y = td_target(r, s_next, term, target_net, gamma)  # (B,) fixed regression targets
    q = q_net(s).gather(1, a[:, None]).squeeze(1)  # (B,) Q(s, a) of the actions taken
    loss = F.smooth_l1_loss(q, y)  # Huber: squared near 0, linear for big TD errors
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(q_net.parameters(), 10.0)
    opt.step()
    return loss.item()
# --8<-- [end:update]


# --8<-- [start:refinements]
def double_dqn_target(r, s_next, term, q_net, target_net, gamma):
    """Double DQN: the online net picks a', the target net scores it."""
    with torch.no_grad():
        a_next = q_net(s_next).argmax(dim=1, keepdim=True)  # (B, 1)
        q_next = target_net(s_next).gather(1, a_next).squeeze(1)
        return r + gamma * (1 - term) * q_next


def polyak_update(target_net, q_net, tau: float):
    """Soft target update: theta^- <- tau * theta + (1 - tau) * theta^-."""
    with torch.no_grad():
        for p_target, p in zip(target_net.parameters(), q_net.parameters()):
            p_target.lerp_(p, tau)
# --8<-- [end:refinements]


def evaluate(q_net: nn.Module, episodes: int, seed: int) -> np.ndarray:
    """Undiscounted return of the greedy policy argmax_a Q(s, a) in fresh episodes.
    CartPole pays 1 per step, so each return is also the episode's length in steps."""
    env = make_env(episodes)
    obs, _ = env.reset(seed=seed)
    alive, total = np.ones(episodes, dtype=bool), np.zeros(episodes)
    while alive.any():
        with torch.no_grad():
            a = q_net(torch.as_tensor(obs)).argmax(dim=1).numpy()
        obs, r, terminated, truncated, _ = env.step(a)
        total += r * alive
        alive &= ~(terminated | truncated)
    return total


def train(cfg: Config, seed: int):
    """One DQN run: the best checked Q-network, the last one, training curve, checks
    (training step, score, env steps spent on checks so far) and the checks' CPU s."""
    seed_everything(seed)
    rng = np.random.default_rng(seed)
    env = make_env(cfg.num_envs)
    q_net = nn.Sequential(nn.Linear(4, cfg.num_hiddens), nn.ReLU(),
                          nn.Linear(cfg.num_hiddens, cfg.num_hiddens), nn.ReLU(),
                          nn.Linear(cfg.num_hiddens, 2))
    target_net = copy.deepcopy(q_net)
    opt = torch.optim.Adam(q_net.parameters(), lr=cfg.lr, fused=True)
    buffer = ReplayBuffer(cfg.buffer_size, 4)
    obs, _ = env.reset(seed=seed)
    prev_done = np.zeros(cfg.num_envs, dtype=bool)
    ep_return, n_updates, check_steps, check_cpu = np.zeros(cfg.num_envs), 0, 0, 0.0
    curve, checks, best, best_score = [], [], copy.deepcopy(q_net), -1.0
    steps = range(0, cfg.total_steps, cfg.num_envs)
    for step in progress(steps, desc=f"DQN seed {seed}"):
        # --8<-- [start:act]
        eps = np.interp(step, [0, cfg.eps_fraction * cfg.total_steps],
                        [cfg.eps_start, cfg.eps_end])
        with torch.no_grad():
            a = q_net(torch.as_tensor(obs)).argmax(dim=1).numpy()
        explore = rng.random(cfg.num_envs) < eps
        a = np.where(explore, rng.integers(0, 2, cfg.num_envs), a)
        obs_next, r, terminated, truncated, _ = env.step(a)
        done = store_step(buffer, obs, a, r, obs_next, terminated, truncated, prev_done)
        # --8<-- [end:act]
        ep_return += r
        for i in np.flatnonzero(done & ~prev_done):
            curve.append((step, ep_return[i], check_steps))
            ep_return[i] = 0
        prev_done, obs = done, obs_next
        if step >= cfg.learning_starts and step % cfg.train_every < cfg.num_envs:
            for _ in range(cfg.grad_steps):
                dqn_update(q_net, target_net, opt, buffer.sample(cfg.batch_size, rng),
                           cfg.gamma)
                n_updates += 1
                if n_updates % cfg.target_every == 0:
                    target_net.load_state_dict(q_net.state_dict())
        if step % cfg.eval_every < cfg.num_envs and step >= cfg.learning_starts:
            start = time.process_time()
            returns = evaluate(q_net, cfg.check_episodes, seed=50_000 + step)
            check_steps += int(returns.sum())  # one step per unit of return
            check_cpu += time.process_time() - start
            checks.append((step, returns.mean(), check_steps))
            if returns.mean() >= best_score:
                best, best_score = copy.deepcopy(q_net), returns.mean()
    return best, q_net, np.array(curve), np.array(checks), check_cpu


def smooth(x: np.ndarray, k: int) -> np.ndarray:
    k = max(1, min(k, len(x)))
    return np.convolve(x, np.ones(k) / k, mode="valid")


SMOOTH = 20  # DQN's epsilon-greedy returns are noisy: a 20-episode moving average


def plot(dqn_curves, pg_curves, cfg: Config, out: Path) -> None:
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 3.9), sharey=True)
    k = SMOOTH
    for i, ((curve, checks), (steps, pg_curve)) in enumerate(zip(dqn_curves,
                                                                  pg_curves)):
        if len(curve) >= k:  # x: training steps plus the check episodes run so far
            x = (curve[:, 0] + curve[:, 2]) / 1000
            ax0.plot(x[k - 1:], smooth(curve[:, 1], k), color="C0", lw=1.3,
                     label="DQN, epsilon-greedy (20-episode average)"
                     if i == 0 else None)
        ax0.plot(steps / 1000, pg_curve, color="C1", ls="--", lw=1.3,
                 label="REINFORCE + baseline (16-episode batches)" if i == 0 else None)
        if len(checks):
            ax1.plot(checks[:, 0] / 1000, checks[:, 1], ["-o", "--s", ":^"][i % 3],
                     ms=4, color=f"C{i + 2}", label=f"seed {i}")
            best = len(checks) - 1 - checks[::-1, 1].argmax()  # train() keeps the last
            ax1.plot(checks[best, 0] / 1000, checks[best, 1], "*", ms=15,
                     color=f"C{i + 2}", mec="k")
    for ax in (ax0, ax1):
        ax.axhline(475, color="gray", ls=":", lw=1, label="solved (475)")
    ax0.set(xlabel="environment steps (thousands), DQN's checks included",
            ylabel="return", title="Training returns, one line per seed",
            ylim=(0, 520))
    ax1.set(xlabel="environment steps of training (thousands)",
            title=f"DQN greedy policy, {cfg.check_episodes}-episode checks "
            "(star: kept)")
    for ax in (ax0, ax1):  # below the axes: the curves fill every corner
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8)
    save_figure(fig, out / "curves.svg", zh=ZH)


def main(cfg: Config = Config(), out: Path = Path("out/rl-dqn")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # CPU seconds of one thread, whatever the machine
    try:
        return run(cfg, out)
    finally:
        torch.set_num_threads(threads)


def run(cfg: Config, out: Path) -> dict:
    pg_cfg = pg.Config() if cfg.total_steps >= 10_000 else pg.Config.tiny()
    m, dqn_curves, pg_curves = {}, [], []
    seeds = range(cfg.seed, cfg.seed + cfg.num_seeds)
    for s in seeds:
        start = time.process_time()
        q_net, last_net, curve, checks, check_cpu = train(cfg, s)
        m[f"dqn_seed{s}_cpu_s"] = time.process_time() - start
        m[f"dqn_seed{s}_check_cpu_s"] = check_cpu
        m[f"dqn_seed{s}_train_cpu_s"] = m[f"dqn_seed{s}_cpu_s"] - check_cpu
        m[f"dqn_seed{s}_return"] = evaluate(q_net, cfg.eval_episodes, 10_000 + s).mean()
        m[f"dqn_seed{s}_last_net"] = evaluate(last_net, cfg.eval_episodes,
                                              10_000 + s).mean()
        m[f"dqn_seed{s}_check_steps"] = checks[-1, 2] if len(checks) else 0.0
        m[f"dqn_seed{s}_total_steps"] = cfg.total_steps + m[f"dqn_seed{s}_check_steps"]
        dqn_curves.append((curve, checks))
        start = time.process_time()
        policy, _, steps, pg_curve = pg.train(pg_cfg, s, pg_cfg.num_iters)
        m[f"reinforce_seed{s}_cpu_s"] = time.process_time() - start
        m[f"reinforce_seed{s}_return"] = pg.evaluate(policy, cfg.eval_episodes,
                                                     10_000 + s).mean()
        m[f"reinforce_seed{s}_steps"] = steps[-1]
        m[f"cpu_ratio_seed{s}"] = (m[f"dqn_seed{s}_train_cpu_s"]
                                   / m[f"reinforce_seed{s}_cpu_s"])
        pg_curves.append((steps, pg_curve))
    plot(dqn_curves, pg_curves, cfg, out)
    per_seed = lambda key: np.array([m[key.format(s)] for s in seeds])  # noqa: E731
    for algo in ("dqn", "reinforce"):
        returns = per_seed(algo + "_seed{}_return")
        m[f"{algo}_mean_return"] = returns.mean()
        m[f"{algo}_worst_seed"] = returns.min()
        m[f"{algo}_seeds_solved"] = np.sum(returns >= 475)
    last = per_seed("dqn_seed{}_last_net")
    m.update(dqn_last_net_mean=last.mean(), dqn_last_net_best=last.max(),
             dqn_check_steps_mean=per_seed("dqn_seed{}_check_steps").mean(),
             dqn_total_steps_mean=per_seed("dqn_seed{}_total_steps").mean(),
             dqn_total_steps_max=per_seed("dqn_seed{}_total_steps").max(),
             reinforce_steps_mean=per_seed("reinforce_seed{}_steps").mean(),
             reinforce_steps_min=per_seed("reinforce_seed{}_steps").min(),
             cpu_ratio_min=per_seed("cpu_ratio_seed{}").min(),
             cpu_ratio_max=per_seed("cpu_ratio_seed{}").max(),
             dqn_env_steps=cfg.total_steps, num_seeds=cfg.num_seeds,
             num_envs=cfg.num_envs, eps_end=cfg.eps_end,
             eps_fraction=cfg.eps_fraction, eval_every=cfg.eval_every,
             check_episodes=cfg.check_episodes, smooth_episodes=SMOOTH,
             num_checks=len(dqn_curves[0][1]),
             eval_episodes=cfg.eval_episodes, train_every=cfg.train_every,
             grad_steps=cfg.grad_steps, num_hiddens=cfg.num_hiddens)
    return {k: float(v) for k, v in m.items()}


CLAIMS = {
    "kept_dqn_network_solves_every_seed": lambda m: m["dqn_seeds_solved"]
    == m["num_seeds"],
    "reinforce_solves_every_seed": lambda m: m["reinforce_seeds_solved"]
    == m["num_seeds"],
    "last_dqn_network_does_much_worse": lambda m: m["dqn_last_net_mean"]
    < 0.6 * m["dqn_mean_return"],
    "dqn_trains_on_fewer_steps_than_reinforce": lambda m: m["dqn_env_steps"]
    < m["reinforce_steps_min"],
    "checks_cost_a_large_share_of_dqn_steps": lambda m: m["dqn_check_steps_mean"]
    > 0.3 * m["dqn_env_steps"],
    "counting_checks_dqn_loses_its_step_advantage": lambda m:
        m["dqn_total_steps_mean"] > 0.9 * m["reinforce_steps_mean"],
    "dqn_needs_several_times_reinforce_cpu": lambda m: m["cpu_ratio_min"] > 5,
}
