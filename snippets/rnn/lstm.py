"""LSTM from scratch, and an adding problem that a plain RNN cannot learn.

Page: rnn/lstm.md
Run:  python -m snippets run rnn/lstm
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from torch import nn

from snippets.common import progress, save_figure, seed_everything, use_style


@dataclass
class Config:
    num_steps: int = 100  # sequence length T of the main experiment
    lengths: tuple = (10, 25, 50, 100)  # lengths T of the accuracy-vs-length curve
    num_hiddens: int = 32  # hidden units of every model
    batch_size: int = 64  # fresh training sequences per update
    num_updates: int = 800  # updates per run: 51 200 training sequences in all
    lr: float = 0.02  # Adam learning rate of the LSTM and the GRU (tuned for the LSTM)
    rnn_lrs: tuple = (0.003, 0.01, 0.02)  # the RNN's grid; it uses its best at T = 10
    max_norm: float = 1.0  # gradient clipping threshold
    forget_bias: float = 1.0  # added to the LSTM forget-gate bias at init
    eval_every: int = 50  # updates between two test evaluations
    num_test: int = 1000  # test sequences (fixed); as many for validation
    tolerance: float = 0.08  # correct if |error| < this: 4% of the target range [0, 2]
    window: int = 2000  # the paper's rule: this many recent sequences all correct
    seed: int = 0

    @classmethod
    def tiny(cls) -> "Config":
        return cls(num_hiddens=8, batch_size=16, num_updates=20, eval_every=10,
                   num_test=100, window=200)


# --8<-- [start:lstm_cell]
def lstm_cell(x, state, W_ih, W_hh, b_ih, b_hh):
    """One LSTM step with nn.LSTMCell's layout: gates stacked as (i, f, g, o)."""
    h, c = state
    gates = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh  # (B, 4h)
    i, f, g, o = gates.chunk(4, dim=1)
    i, f, o = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o)  # gates in (0, 1)
    g = torch.tanh(g)  # candidate content
    c = f * c + i * g  # keep part of the old memory, write part of the new
    h = o * torch.tanh(c)  # expose part of the memory
    return h, c
# --8<-- [end:lstm_cell]


# --8<-- [start:adding_data]
def adding_data(n: int, T: int, gen: torch.Generator):
    """X: (n, T, 2) = (value in [0, 1], marker 0/1); y = sum of the 2 marked values."""
    values = torch.rand(n, T, generator=gen)
    first = torch.randint(0, T // 2, (n,), generator=gen)  # one marker in each half
    second = torch.randint(T // 2, T, (n,), generator=gen)
    markers = torch.zeros(n, T)
    markers[torch.arange(n), first] = 1.0
    markers[torch.arange(n), second] = 1.0
    return torch.stack([values, markers], dim=-1), (values * markers).sum(dim=1)
# --8<-- [end:adding_data]


# --8<-- [start:model]
class Net(nn.Module):
    """A recurrent layer (RNN, LSTM or GRU) read at the last step by a linear head."""

    def __init__(self, kind: str, num_hiddens: int, forget_bias: float = 0.0):
        super().__init__()
        self.rnn = getattr(nn, kind)(2, num_hiddens, batch_first=True)
        self.head = nn.Linear(num_hiddens, 1)
        if kind == "LSTM":  # start with the forget gate mostly open
            with torch.no_grad():
                self.rnn.bias_hh_l0[num_hiddens:2 * num_hiddens] += forget_bias

    def forward(self, X):  # X: (B, T, 2)
        out, _ = self.rnn(X)  # (B, T, h)
        return self.head(out[:, -1]).squeeze(-1)  # (B,)
# --8<-- [end:model]


def initial_gates(net: Net) -> dict:
    """The LSTM's gates (i, f, o) for a zero input and a zero state, per unit."""
    n = net.rnn.hidden_size
    b = (net.rnn.bias_ih_l0 + net.rnn.bias_hh_l0).detach()
    return {k: torch.sigmoid(b[j * n:(j + 1) * n]) for k, j in (("i", 0), ("f", 1),
                                                                  ("o", 3))}


# --8<-- [start:train]
def train(kind: str, T: int, cfg: Config, lr: float) -> dict:
    """Online training on fresh sequences; the test MSE is logged every eval_every."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    X_test, y_test = adding_data(cfg.num_test, T, torch.Generator().manual_seed(123))
    net = Net(kind, cfg.num_hiddens, cfg.forget_bias)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    recent, solved, norms = deque(maxlen=cfg.window), -1, []
    seen, curve = [], []
    for step in progress(range(1, cfg.num_updates + 1), desc=f"{kind} T={T}"):
        X, y = adding_data(cfg.batch_size, T, gen)
        err = net(X) - y
        recent.extend(err.detach().abs().tolist())  # the paper's stop rule, online
        if solved < 0 and len(recent) == cfg.window and max(recent) < cfg.tolerance:
            solved = step * cfg.batch_size
        opt.zero_grad()
        err.square().mean().backward()
        norms.append(nn.utils.clip_grad_norm_(net.parameters(), cfg.max_norm).item())
        opt.step()
        if step % cfg.eval_every == 0:
            with torch.no_grad():
                y_hat = net(X_test)
            seen.append(step * cfg.batch_size)
            curve.append((y_hat - y_test).square().mean().item())
    # --8<-- [end:train]
    X_val, y_val = adding_data(cfg.num_test, T, torch.Generator().manual_seed(456))
    with torch.no_grad():
        val_mse = (net(X_val) - y_val).square().mean().item()
    correct = ((y_hat - y_test).abs() < cfg.tolerance).float().mean().item()
    return {"net": net, "seen": seen, "mse": curve, "acc": correct, "val_mse": val_mse,
            "solved_window": solved, "max_grad_norm": max(norms),
            "clipped_frac": sum(n > cfg.max_norm for n in norms) / len(norms)}


def solved_after(run: dict, goal: float = 0.01) -> float:
    """Training sequences seen when the test MSE first fell below goal (-1: never)."""
    return next((s for s, m in zip(run["seen"], run["mse"]) if m < goal), -1)


def gate_trace(net: Net, T: int):
    """Run the trained LSTM step by step on one test sequence, keeping c_t and gates."""
    X, _ = adding_data(1, T, torch.Generator().manual_seed(7))
    p = [w.detach() for w in (net.rnn.weight_ih_l0, net.rnn.weight_hh_l0,
                              net.rnn.bias_ih_l0, net.rnn.bias_hh_l0)]
    h = c = torch.zeros(1, net.rnn.hidden_size)
    cs, gates = [], []
    for x in X[0]:
        pre = (x[None] @ p[0].T + p[2] + h @ p[1].T + p[3]).chunk(4, dim=1)
        gates.append(torch.sigmoid(torch.stack([pre[0][0], pre[1][0], pre[3][0]])))
        h, c = lstm_cell(x[None], (h, c), *p)
        cs.append(c[0])
    return X[0], torch.stack(cs), torch.stack(gates)  # (T, h), (T, 3, h): i, f, o


ZH = {
    "{}, lr = {}": "{}，学习率 {}",
    "always predict the mean ({})": "永远预测均值（{}）",
    "goal: MSE {}": "目标：MSE {}",
    "training sequences seen": "见过的训练序列数",
    "test MSE": "测试 MSE",
    "Adding problem, T = {}, same budget for all": "加法问题，T = {}，预算相同",
    "sequence length T": "序列长度 T",
    "test accuracy (|error| < {})": "测试正确率（|误差| < {}）",
    "always predict the mean": "永远预测均值",
    "Same budget ({} sequences) at every T": "每个 T 的预算相同（{} 条序列）",
    "input value": "输入值",
    "A trained LSTM on one test sequence (red lines: the two markers)":
        "训练好的 LSTM 读一条测试序列（红线：两个标记）",
    "cell state $c_t$, unit {}": "单元 {} 的单元状态 c_t",
    "gates of unit {}": "单元 {} 的门",
    "input gate $i_t$": "输入门 i_t",
    "forget gate $f_t$": "遗忘门 f_t",
    "output gate $o_t$": "输出门 o_t",
    "time step t": "时间步 t",
}


def plot_curves(runs: dict, baseline: float, cfg: Config, out: Path) -> None:
    styles = {"LSTM": "-", "GRU": "--"}
    fig, ax = plt.subplots(figsize=(6.6, 3.8))
    for (kind, lr), run in runs.items():
        ls = styles.get(kind, ":")
        ax.semilogy(run["seen"], run["mse"], ls=ls, lw=1.6, label=f"{kind}, lr = {lr}")
    ax.axhline(baseline, color="gray", lw=2, alpha=0.5,
               label=f"always predict the mean ({baseline:.3f})")
    ax.axhline(0.01, color="k", ls="--", lw=0.8, label="goal: MSE 0.01")
    ax.set_xlabel("training sequences seen")
    ax.set_ylabel("test MSE")
    ax.set_title(f"Adding problem, T = {cfg.num_steps}, same budget for all")
    ax.legend(fontsize=7.5, loc="lower left")
    save_figure(fig, out / "adding_curves.svg", zh=ZH)


def plot_lengths(acc: dict, chance: float, cfg: Config, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    markers = {"RNN": "s:", "LSTM": "o-", "GRU": "^--"}
    for kind, by_T in acc.items():
        ax.plot(list(by_T), list(by_T.values()), markers[kind], label=kind)
    ax.axhline(chance, color="gray", lw=2, alpha=0.5, label="always predict the mean")
    ax.set_xlabel("sequence length T")
    ax.set_ylabel(f"test accuracy (|error| < {cfg.tolerance:g})")
    ax.set_ylim(-0.02, 1.02)
    budget = cfg.num_updates * cfg.batch_size
    ax.set_title(f"Same budget ({budget:,} sequences) at every T")
    ax.legend(fontsize=8)
    save_figure(fig, out / "accuracy_vs_length.svg", zh=ZH)


def writer_unit(net: Net, cfg: Config) -> tuple[dict, tuple]:
    """The unit whose input gate opens most at the markers, and its gate averages."""
    X, cs, gates = gate_trace(net, cfg.num_steps)
    marked = X[:, 1] > 0
    i_gate = gates[:, 0]
    u = (i_gate[marked].mean(0) - i_gate[~marked].mean(0)).argmax()  # the "writer"
    found = {"gate_input_at_markers": i_gate[marked, u].mean().item(),
             "gate_input_elsewhere": i_gate[~marked, u].mean().item(),
             "gate_forget_mean": gates[:, 1, u].mean().item(),
             "gate_forget_min": gates[:, 1, u].min().item(),
             "cell_change_elsewhere": (cs[1:, u] - cs[:-1, u]).abs()[~marked[1:]]
             .mean().item(),
             "cell_change_at_markers": (cs[1:, u] - cs[:-1, u]).abs()[marked[1:]]
             .mean().item()}
    return found, (X, cs[:, u], gates[:, :, u], u.item())


def plot_gates(trace: tuple, out: Path) -> None:
    X, c, gates, u = trace
    t = range(1, len(X) + 1)
    fig, axes = plt.subplots(3, 1, figsize=(6.6, 5.8), sharex=True)
    axes[0].plot(t, X[:, 0], color="gray", lw=0.8)
    for m in torch.nonzero(X[:, 1] > 0)[:, 0]:
        axes[0].axvline(m.item() + 1, color="C1", lw=2)
    axes[0].set_ylabel("input value")
    title = "A trained LSTM on one test sequence (red lines: the two markers)"
    axes[0].set_title(title)
    axes[1].plot(t, c, color="k", lw=1.8)
    axes[1].set_ylabel(f"cell state $c_t$, unit {u}")
    names = (("input gate $i_t$", "-"), ("forget gate $f_t$", "--"),
             ("output gate $o_t$", ":"))
    for k, (name, ls) in enumerate(names):
        axes[2].plot(t, gates[:, k], ls=ls, lw=1.5, label=name)
    axes[2].set_ylim(0, 1.05)
    axes[2].set_ylabel(f"gates of unit {u}")
    axes[2].set_xlabel("time step t")
    axes[2].legend(fontsize=8, loc="center right")
    save_figure(fig, out / "gates.svg", zh=ZH)


def main(cfg: Config = Config(), out: Path = Path("out/rnn-lstm")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    T = cfg.num_steps
    # the RNN gets its own learning rate: the best of its grid at T = 10
    sweep = {(T_, lr): train("RNN", T_, cfg, lr) for T_ in (min(cfg.lengths), T)
             for lr in cfg.rnn_lrs}
    rnn_lr = min(cfg.rnn_lrs, key=lambda lr: sweep[min(cfg.lengths), lr]["val_mse"])
    lrs = {"RNN": rnn_lr, "LSTM": cfg.lr, "GRU": cfg.lr}
    runs = {k: sweep[T, rnn_lr] if k == "RNN" else train(k, T, cfg, cfg.lr)
            for k in lrs}
    acc = {k: {} for k in lrs}
    for T_ in cfg.lengths:
        for k, lr in lrs.items():
            if T_ == T:
                run = runs[k]
            else:
                run = sweep.get((T_, lr)) if k == "RNN" else None
                run = run or train(k, T_, cfg, lr)
            acc[k][T_] = run["acc"]
    X_test, y_test = adding_data(cfg.num_test, T, torch.Generator().manual_seed(123))
    baseline = (y_test - y_test.mean()).square().mean().item()
    chance = ((y_test - 1).abs() < cfg.tolerance).float().mean().item()
    shown = {(k, lrs[k]): runs[k] for k in ("LSTM", "GRU")}
    shown.update({("RNN", lr): sweep[T, lr] for lr in cfg.rnn_lrs})
    plot_curves(shown, baseline, cfg, out)
    plot_lengths(acc, chance, cfg, out)
    gates, trace = writer_unit(runs["LSTM"]["net"], cfg)
    plot_gates(trace, out)
    metrics = {"train_sequences": cfg.num_updates * cfg.batch_size, "num_steps": T,
               "lr": cfg.lr, "rnn_lr": rnn_lr, "tolerance": cfg.tolerance,
               "window": cfg.window, "max_norm": cfg.max_norm, "baseline_mse": baseline,
               "chance_acc": chance, "num_test": cfg.num_test, **gates}
    for lr in cfg.rnn_lrs:
        metrics[f"rnn_T{min(cfg.lengths)}_lr{lr}_val_mse"] = sweep[
            min(cfg.lengths), lr]["val_mse"]
        metrics[f"rnn_T{T}_lr{lr}_test_mse"] = sweep[T, lr]["mse"][-1]
    for k in lrs:
        key = k.lower()
        metrics[f"{key}_params"] = sum(p.numel() for p in runs[k]["net"].parameters())
        metrics[f"{key}_test_mse"] = runs[k]["mse"][-1]
        metrics[f"{key}_solved_after"] = solved_after(runs[k])
        metrics[f"{key}_solved_window"] = runs[k]["solved_window"]
        metrics[f"{key}_max_grad_norm"] = runs[k]["max_grad_norm"]
        metrics[f"{key}_clipped_frac"] = runs[k]["clipped_frac"]
        metrics.update({f"{key}_acc_T{T_}": a for T_, a in acc[k].items()})
    return metrics


CLAIMS = {
    "lstm_learns_T100": lambda m: m["lstm_test_mse"] < 0.01
    and m["lstm_solved_after"] > 0,
    "gru_learns_T100": lambda m: m["gru_test_mse"] < 0.01,
    "rnn_stays_at_the_mean_at_T100_for_every_lr": lambda m: min(
        m["rnn_T100_lr0.003_test_mse"], m["rnn_T100_lr0.01_test_mse"],
        m["rnn_T100_lr0.02_test_mse"]) > 0.8 * m["baseline_mse"],
    "rnn_learns_T10_with_its_own_lr": lambda m: min(
        m["rnn_T10_lr0.003_val_mse"], m["rnn_T10_lr0.01_val_mse"],
        m["rnn_T10_lr0.02_val_mse"]) < 0.01 and m["rnn_acc_T10"] > 0.5,
    "gated_models_beat_rnn_at_every_length": lambda m: all(
        min(m[f"lstm_acc_T{T}"], m[f"gru_acc_T{T}"]) > m[f"rnn_acc_T{T}"]
        for T in (10, 25, 50, 100)),
    "rnn_at_chance_from_T25": lambda m: max(m["rnn_acc_T25"], m["rnn_acc_T50"],
                                            m["rnn_acc_T100"]) < 1.5 * m["chance_acc"],
    "paper_rule_is_stricter_than_the_mse_goal": lambda m: all(
        m[f"{k}_solved_window"] < 0 or m[f"{k}_solved_window"] > m[f"{k}_solved_after"]
        for k in ("lstm", "gru")),
    "writer_unit_input_gate_opens_at_markers_only": lambda m: m[
        "gate_input_at_markers"] > 0.5 > 0.1 > m["gate_input_elsewhere"],
    "writer_unit_forget_gate_stays_open": lambda m: m["gate_forget_mean"] > 0.9,
    "writer_unit_cell_holds_between_markers": lambda m: m["cell_change_elsewhere"]
    < 0.05 * m["cell_change_at_markers"],
    "lstm_gradients_still_need_clipping": lambda m: m["lstm_max_grad_norm"]
    > m["max_norm"],
}
