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
    eval_every: int = 2_500  # env steps between 10-episode greedy checks (best is kept)
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


def evaluate(q_net: nn.Module, episodes: int, seed: int) -> np.ndarray:
    """Undiscounted return of the greedy policy argmax_a Q(s, a) in fresh episodes."""
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
    """One DQN run: the best checked Q-network, the last one, training/check curves."""
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
    ep_return, n_updates = np.zeros(cfg.num_envs), 0
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
        keep = ~prev_done  # after an episode ends the next step only resets that copy
        buffer.add(obs[keep], a[keep], r[keep], obs_next[keep], terminated[keep])
        # --8<-- [end:act]
        ep_return += r
        for i in np.flatnonzero((terminated | truncated) & keep):
            curve.append((step, ep_return[i]))
            ep_return[i] = 0
        prev_done, obs = terminated | truncated, obs_next
        if step >= cfg.learning_starts and step % cfg.train_every < cfg.num_envs:
            for _ in range(cfg.grad_steps):
                dqn_update(q_net, target_net, opt, buffer.sample(cfg.batch_size, rng),
                           cfg.gamma)
                n_updates += 1
                if n_updates % cfg.target_every == 0:
                    target_net.load_state_dict(q_net.state_dict())
        if step % cfg.eval_every < cfg.num_envs and step >= cfg.learning_starts:
            score = evaluate(q_net, 10, seed=50_000 + step).mean()
            checks.append((step, score))
            if score >= best_score:
                best, best_score = copy.deepcopy(q_net), score
    return best, q_net, np.array(curve), np.array(checks)


def smooth(x: np.ndarray, k: int) -> np.ndarray:
    k = max(1, min(k, len(x)))
    return np.convolve(x, np.ones(k) / k, mode="valid")


def plot(dqn_curves, pg_curves, out: Path) -> None:
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    k = 20  # DQN training episodes are short and noisy: a 20-episode moving average
    for i, ((curve, checks), (steps, pg_curve)) in enumerate(zip(dqn_curves,
                                                                  pg_curves)):
        if len(curve) >= k:
            ax0.plot(curve[k - 1:, 0] / 1000, smooth(curve[:, 1], k), color="C0",
                     lw=1.2, label="DQN, epsilon-greedy (20-episode average)"
                     if i == 0 else None)
        ax0.plot(steps / 1000, pg_curve, color="C1", lw=1.2,
                 label="REINFORCE + baseline (16-episode batches)" if i == 0 else None)
        if len(checks):
            ax1.plot(checks[:, 0] / 1000, checks[:, 1], "-o", ms=3, color=f"C{i + 2}",
                     label=f"seed {i}")
            best = len(checks) - 1 - checks[::-1, 1].argmax()  # train() keeps the last
            ax1.plot(checks[best, 0] / 1000, checks[best, 1], "*", ms=14,
                     color=f"C{i + 2}", mec="k")
    for ax in (ax0, ax1):
        ax.axhline(475, color="gray", ls="--", lw=1)
        ax.set_xlabel("environment steps (thousands)")
    ax0.set(ylabel="return", title="Training returns, one line per seed", ylim=(0, 520))
    ax0.legend(loc="lower right", fontsize=8)
    ax1.set(title="DQN greedy policy, 10-episode checks (star: kept)")
    ax1.legend(loc="lower right", fontsize=8)
    save_figure(fig, out / "curves.svg")


def main(cfg: Config = Config(), out: Path = Path("out/rl-dqn")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    pg_cfg = pg.Config() if cfg.total_steps >= 10_000 else pg.Config.tiny()
    metrics, dqn_curves, pg_curves = {}, [], []
    for s in range(cfg.seed, cfg.seed + cfg.num_seeds):
        start = time.process_time()
        q_net, last_net, curve, checks = train(cfg, s)
        metrics[f"dqn_seed{s}_cpu_s"] = time.process_time() - start
        metrics[f"dqn_seed{s}_return"] = evaluate(q_net, cfg.eval_episodes,
                                                  10_000 + s).mean()
        metrics[f"dqn_seed{s}_last_net"] = evaluate(last_net, cfg.eval_episodes,
                                                    10_000 + s).mean()
        dqn_curves.append((curve, checks))
        start = time.process_time()
        policy, _, steps, pg_curve = pg.train(pg_cfg, s, pg_cfg.num_iters)
        metrics[f"reinforce_seed{s}_cpu_s"] = time.process_time() - start
        metrics[f"reinforce_seed{s}_return"] = pg.evaluate(policy, cfg.eval_episodes,
                                                           10_000 + s).mean()
        metrics[f"reinforce_seed{s}_steps"] = steps[-1]
        pg_curves.append((steps, pg_curve))
    plot(dqn_curves, pg_curves, out)
    for algo in ("dqn", "reinforce"):
        returns = [v for k, v in metrics.items() if k.startswith(f"{algo}_seed")
                   and k.endswith("return")]
        metrics[f"{algo}_mean_return"] = np.mean(returns)
        metrics[f"{algo}_worst_seed"] = np.min(returns)
        metrics[f"{algo}_seeds_solved"] = np.sum(np.array(returns) >= 475)
    metrics["dqn_env_steps"] = cfg.total_steps
    metrics["num_seeds"] = cfg.num_seeds
    return {k: float(v) for k, v in metrics.items()}
