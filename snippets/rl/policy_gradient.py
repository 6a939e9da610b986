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

ZH = {
    "with baseline V(s)": "有基线 V(s)",
    "without baseline": "无基线",
    "TD advantage r + γV(s') - V(s)": "TD 优势 r + γV(s') - V(s)",
    "solved (475)": "解决线（475）",
    "environment steps (thousands)": "环境步数（千）",
    "mean return per batch": "每批平均回报",
    "REINFORCE on CartPole-v1: one line per seed":
        "CartPole-v1 上的 REINFORCE：每个种子一条线",
    "episodes averaged in one estimate": "一次估计所平均的回合数",
    "cosine with the reference gradient (held-out)": "与参考梯度（留出数据）的余弦",
    "Same episodes, three estimators": "同一批回合，三种估计",
}


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
    spread_episodes: int = 2  # ...of this many episodes each...
    spread_seeds: int = 3  # ...for this many half-trained agents (results averaged)
    eval_episodes: int = 100  # greedy evaluation episodes (gymnasium's threshold: 475)
    seed: int = 0

    @classmethod
    def tiny(cls) -> "Config":
        return cls(num_envs=4, num_iters=3, num_seeds=1, spread_iters=1,
                   spread_batches=4, eval_episodes=4, spread_seeds=1)


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
    """One episode per copy. states (T + 1, N, 4): s_0 .. s_T, where row t + 1 is the
    state reached by step t; actions, rewards, alive masks, real ends: (T, N)."""
    obs, _ = env.reset(seed=int(rng.integers(2**31)))
    alive = np.ones(env.num_envs, dtype=bool)
    states, actions, rewards, masks, ends = [obs], [], [], [], []
    while alive.any():
        with torch.no_grad():
            p_right = torch.softmax(policy(torch.as_tensor(obs)), dim=1)[:, 1].numpy()
        a = (p_right > 0.5) if greedy else (rng.random(env.num_envs) < p_right)
        a = a.astype(np.int64)
        actions.append(a), masks.append(alive.copy())
        obs, r, terminated, truncated, _ = env.step(a)
        states.append(obs), rewards.append(r * alive), ends.append(terminated & alive)
        alive &= ~(terminated | truncated)  # NEXT_STEP autoreset: ignore what follows
    as_t = lambda xs, dt: torch.as_tensor(np.stack(xs), dtype=dt)  # noqa: E731
    return (as_t(states, torch.float32), as_t(actions, torch.int64),
            as_t(rewards, torch.float32), as_t(masks, torch.bool),
            as_t(ends, torch.bool))
# --8<-- [end:rollout]


def evaluate(policy: nn.Module, episodes: int, seed: int) -> np.ndarray:
    """Undiscounted return of the greedy policy in ``episodes`` fresh episodes."""
    env = make_env(episodes)
    rewards = rollout(env, policy, np.random.default_rng(seed), greedy=True)[2]
    return rewards.sum(0).numpy()


# --8<-- [start:update]
def reinforce_update(policy, value, opt_pi, opt_v, batch, gamma, baseline=True):
    states, actions, rewards, masks, _ = batch  # (T + 1, N, 4), then (T, N) each
    G = reward_to_go(rewards, gamma)[masks]  # (B,) return from each visited state
    X, a = states[:-1][masks], actions[masks]  # (B, 4), (B,)
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


# --8<-- [start:td_advantage]
def td_advantage(value, batch, gamma):
    """A_t = r_{t+1} + gamma * V(s_{t+1}) - V(s_t) at every visited step, (B,).
    After a real end V(s_{t+1}) counts as 0; a time limit still bootstraps."""
    states, _, rewards, masks, ends = batch
    with torch.no_grad():
        v = value(states).squeeze(-1) * 100  # (T + 1, N): V(s_0) .. V(s_T)
    return (rewards + gamma * (~ends) * v[1:] - v[:-1])[masks]
# --8<-- [end:td_advantage]


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


ESTIMATORS = ("with baseline V(s)", "without baseline",
              "TD advantage r + γV(s') - V(s)")


def gradient_spread(cfg: Config, policy, value, seed: int) -> dict:
    """How fast do averaged one-batch gradient estimates line up with the true gradient?

    Same batches for every estimator, no normalisation. The true gradient is stood in
    for by the with-baseline average over a second, held-out half of the batches.
    """
    env, rng = make_env(cfg.spread_episodes), np.random.default_rng(seed)
    grads = {label: [] for label in ESTIMATORS}
    for _ in range(2 * cfg.spread_batches):
        batch = rollout(env, policy, rng)
        states, actions, rewards, masks, _ = batch
        G, X, a = reward_to_go(rewards, cfg.gamma)[masks], states[:-1][masks], \
            actions[masks]
        with torch.no_grad():
            v = value(X).squeeze(1) * 100
        for label, A in zip(ESTIMATORS, (G - v, G, td_advantage(value, batch,
                                                                 cfg.gamma))):
            log_pi = torch.log_softmax(policy(X), dim=1)[torch.arange(len(a)), a]
            g = torch.autograd.grad(-(A * log_pi).mean(), list(policy.parameters()))
            grads[label].append(torch.cat([x.flatten() for x in g]))
    n = cfg.spread_batches
    reference = torch.stack(grads[ESTIMATORS[0]][n:]).mean(0)
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
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10.5, 3.8), width_ratios=[1.3, 1])
    for color, style, (label, curves) in zip(["C0", "C1"], ["-", "--"], runs.items()):
        for i, (steps, curve) in enumerate(curves):
            ax0.plot(steps / 1000, curve, color=color, ls=style, alpha=0.85, lw=1.3,
                     label=label if i == 0 else None)
    ax0.axhline(475, color="gray", ls=":", lw=1, label="solved (475)")
    ax0.set(xlabel="environment steps (thousands)", ylabel="mean return per batch",
            title="REINFORCE on CartPole-v1: one line per seed")
    ax0.legend(loc="lower right", fontsize=9)
    for color, (style, marker), (label, (episodes, cos, _)) in zip(
            ["C0", "C1", "C2"], [("-", "o"), ("--", "s"), (":", "^")], spread.items()):
        ax1.plot(episodes, cos, ls=style, marker=marker, color=color, label=label)
    ax1.set_xscale("log", base=2)
    sizes = spread[ESTIMATORS[0]][0]
    ax1.set_xticks(sizes, [f"{k:g}" for k in sizes])
    ax1.minorticks_off()
    ax1.set(xlabel="episodes averaged in one estimate", ylim=(0, 1),
            ylabel="cosine with the reference gradient (held-out)",
            title="Same episodes, three estimators")
    ax1.legend(loc="lower right", fontsize=8)
    save_figure(fig, out / "reinforce.svg", zh=ZH)


def main(cfg: Config = Config(), out: Path = Path("out/rl-policy_gradient")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    runs = {"with baseline V(s)": [], "without baseline": []}
    evals, steps_to_solve = [], {k: [] for k in runs}
    solved = {k: 0 for k in runs}
    for s in range(cfg.seed, cfg.seed + cfg.num_seeds):
        for label, use in (("with baseline V(s)", True), ("without baseline", False)):
            policy, _, steps, curve = train(cfg, s, cfg.num_iters, baseline=use)
            runs[label].append((steps, curve))
            steps_to_solve[label].append(steps[-1])
            solved[label] += int(len(curve) >= 2 and min(curve[-2:]) >= cfg.solved)
            if use:
                evals.append(evaluate(policy, cfg.eval_episodes, 10_000 + s).mean())
    spreads = []
    for s in range(cfg.seed, cfg.seed + cfg.spread_seeds):  # half-trained agents
        policy, value, _, _ = train(cfg, s, cfg.spread_iters)
        spreads.append(gradient_spread(cfg, policy, value, seed=20_000 + s))
    spread = {k: (spreads[0][k][0], np.mean([sp[k][1] for sp in spreads], 0),
                  float(np.mean([sp[k][2] for sp in spreads]))) for k in ESTIMATORS}
    plot(runs, spread, out)
    rel = {k: v[2] for k, v in spread.items()}
    cos = {k: v[1] for k, v in spread.items()}
    mc, none, td = ESTIMATORS
    steps_mean = {k: float(np.mean(v)) for k, v in steps_to_solve.items()}
    return {"eval_mean_return": float(np.mean(evals)),
            "eval_worst_seed": float(min(evals)), "num_seeds": cfg.num_seeds,
            "num_envs": cfg.num_envs, "eval_episodes": cfg.eval_episodes,
            "solved_threshold": cfg.solved, "spread_iters": cfg.spread_iters,
            "spread_episodes": cfg.spread_episodes, "spread_seeds": cfg.spread_seeds,
            "seeds_solved_with_baseline": solved[mc],
            "seeds_solved_without_baseline": solved[none],
            "env_steps_with_baseline": steps_mean[mc],
            "env_steps_without_baseline": steps_mean[none],
            "rel_var_with_baseline": rel[mc], "rel_var_without_baseline": rel[none],
            "rel_var_td_advantage": rel[td],
            "rel_var_ratio": rel[none] / rel[mc],
            "cos_one_batch_with_baseline": float(cos[mc][0]),
            "cos_one_batch_without_baseline": float(cos[none][0]),
            "cos_one_batch_td": float(cos[td][0]),
            "cos_most_with_baseline": float(cos[mc][-1]),
            "cos_most_without_baseline": float(cos[none][-1]),
            "cos_most_td": float(cos[td][-1]),
            "spread_most_episodes": float(spread[mc][0][-1])}


CLAIMS = {
    "baseline_agent_solves_every_seed": lambda m: m["eval_worst_seed"] >= 475,
    "both_variants_reach_the_stop_rule_on_every_seed": lambda m:
        m["seeds_solved_with_baseline"] == m["num_seeds"]
        and m["seeds_solved_without_baseline"] == m["num_seeds"],
    "baseline_cuts_relative_variance_several_fold": lambda m: m["rel_var_ratio"] > 3,
    "baseline_estimate_closer_to_true_gradient": lambda m:
        m["cos_one_batch_with_baseline"] > m["cos_one_batch_without_baseline"] + 0.1
        and m["cos_most_with_baseline"] > m["cos_most_without_baseline"] + 0.1,
    "td_advantage_has_the_least_variance": lambda m: m["rel_var_td_advantage"]
    < m["rel_var_with_baseline"] / 10,
    "td_advantage_is_biased_by_a_rough_critic": lambda m: m["cos_most_td"]
    < m["cos_most_with_baseline"] - 0.15,
}
