"""A recurrent cell from scratch, the shapes of nn.RNN, padded batches of unequal
length, and how long an RNN remembers.

Page: rnn/rnn.md
Run:  python -m snippets run rnn/rnn
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence

from snippets.common import save_figure, seed_everything, use_style


@dataclass
class Config:
    input_size: int = 3  # features per time step
    num_hiddens: int = 16  # size of the hidden state h_t
    num_steps: int = 12  # sequence length T for the check against nn.RNN
    batch_size: int = 4  # sequences per batch in the check
    lengths: tuple = (9, 4, 6, 2)  # lengths of the padded batch (longest first)
    memory_hiddens: int = 64  # hidden size of the RNNs in the memory figure
    memory_steps: int = 80  # how many steps the memory figure follows
    memory_draws: int = 5  # random W_hh per radius; the figure shows their geo. mean
    radii: tuple = (0.5, 0.9, 1.0, 1.5)  # spectral radius of W_hh in the memory figure
    drives: tuple = (0.5, 0.1)  # std of the input: strong, weak
    seed: int = 0

    @classmethod
    def tiny(cls) -> "Config":
        return cls(num_steps=5, memory_hiddens=16, memory_steps=20, memory_draws=2)


# --8<-- [start:rnn_cell]
def rnn_forward(X, h, W_xh, W_hh, b_h):
    """A tanh RNN over X: (T, B, d). Returns all states (T, B, h), the last (B, h)."""
    outputs = []
    for x in X:  # one time step at a time, the same weights every step
        h = torch.tanh(x @ W_xh.T + h @ W_hh.T + b_h)  # (B, h)
        outputs.append(h)
    return torch.stack(outputs), h
# --8<-- [end:rnn_cell]


def check_against_torch(cfg: Config) -> dict:
    """Copy nn.RNN's weights into rnn_forward; compare outputs and gradients."""
    net = nn.RNN(cfg.input_size, cfg.num_hiddens)  # tanh, batch_first=False
    X = torch.randn(cfg.num_steps, cfg.batch_size, cfg.input_size)
    h0 = torch.randn(1, cfg.batch_size, cfg.num_hiddens, requires_grad=True)
    ref, _ = net(X, h0)
    ref.square().sum().backward()
    W_xh = net.weight_ih_l0.detach().clone().requires_grad_()
    W_hh = net.weight_hh_l0.detach().clone().requires_grad_()
    b_h = (net.bias_ih_l0 + net.bias_hh_l0).detach().clone().requires_grad_()
    h = h0[0].detach().clone().requires_grad_()
    ours, _ = rnn_forward(X, h, W_xh, W_hh, b_h)
    ours.square().sum().backward()
    grad_err = max((W_xh.grad - net.weight_ih_l0.grad).abs().max(),
                   (W_hh.grad - net.weight_hh_l0.grad).abs().max(),
                   (b_h.grad - net.bias_hh_l0.grad).abs().max(),
                   (h.grad - h0.grad[0]).abs().max())
    return {"max_abs_err_vs_torch": (ours - ref).abs().max().item(),
            "max_grad_err_vs_torch": grad_err.item()}


# --8<-- [start:shapes]
def shapes(B=2, T=7, d=3, h=16, V=10) -> dict:
    """The tensor shapes of the usual RNN layouts (batch_first=True everywhere)."""
    rnn = nn.RNN(d, h, batch_first=True)
    X = torch.randn(B, T, d)
    out, h_n = rnn(X)  # out: every step's top-layer state, h_n: last state per layer
    found = {"many_to_many": tuple(nn.Linear(h, V)(out).shape)}  # (B, T, V)
    found["many_to_one"] = tuple(nn.Linear(h, V)(out[:, -1]).shape)  # (B, V)
    to_input = nn.Linear(h, d)  # one-to-many: map each output to the next input
    x, state, steps = torch.randn(B, 1, d), None, []
    for _ in range(T):
        y, state = rnn(x, state)
        steps.append(y)
        x = to_input(y)  # (B, 1, d): the model's own output becomes its next input
    found["one_to_many"] = tuple(torch.cat(steps, dim=1).shape)  # (B, T, h)
    bi = nn.RNN(d, h, batch_first=True, bidirectional=True)
    out, h_n = bi(X)
    found["bidirectional_out"] = tuple(out.shape)  # (B, T, 2h): both directions
    found["bidirectional_h_n"] = tuple(h_n.shape)  # (2, B, h): one per direction
    deep = nn.RNN(d, h, num_layers=3, batch_first=True)
    out, h_n = deep(X)
    found["stacked_out"], found["stacked_h_n"] = tuple(out.shape), tuple(h_n.shape)
    return found  # bidirectional: (B, T, 2h), (2, B, h); stacked: (B, T, h), (3, B, h)
# --8<-- [end:shapes]


# --8<-- [start:padding]
def last_valid(out, lengths):
    """out: (B, T, h) of a padded batch; the state at each sequence's own last step."""
    return out[torch.arange(len(out)), lengths - 1]  # (B, h)


def masked_mean(per_step, lengths):
    """Mean of a (B, T) per-step loss over the real steps only, padding excluded."""
    T = per_step.shape[1]
    mask = torch.arange(T)[None, :] < lengths[:, None]  # (B, T): True on real steps
    return (per_step * mask).sum() / mask.sum()
# --8<-- [end:padding]


def padded_batch(cfg: Config) -> dict:
    """Sequences of unequal length: padded, run as is, and run packed."""
    rnn = nn.RNN(cfg.input_size, cfg.num_hiddens, batch_first=True)
    seqs = [torch.randn(n, cfg.input_size) for n in cfg.lengths]
    # --8<-- [start:packing]
    X = pad_sequence(seqs, batch_first=True)  # (B, T_max, d), zeros after each end
    lengths = torch.tensor([len(s) for s in seqs])
    out, _ = rnn(X)  # padding steps are computed too, after each sequence's end
    packed = pack_padded_sequence(X, lengths, batch_first=True, enforce_sorted=False)
    _, h_n = rnn(packed)  # the packed run stops each sequence at its own length
    # --8<-- [end:packing]
    alone = torch.stack([rnn(s[None])[1][0, 0] for s in seqs])  # one at a time
    return {"pad_last_valid_err": (last_valid(out, lengths) - alone).abs().max().item(),
            "pad_packed_err": (h_n[0] - alone).abs().max().item(),
            "pad_out_last_err": (out[:, -1] - alone).abs().max().item()}


def memory_curves(cfg: Config, drive: float) -> tuple[dict, dict]:
    """How fast a tanh RNN forgets a change v of h_0: ||(dh_t/dh_0) v|| with |v| = 1.

    Each radius gets cfg.memory_draws random W_hh; the curve is their geometric mean.
    Also returns the mean slope tanh' = 1 - h^2 along each trajectory.
    """
    n, gen = cfg.memory_hiddens, torch.Generator().manual_seed(cfg.seed)
    curves, slopes = {}, {}
    for rho in cfg.radii:
        logs, slope = [], []
        for _ in range(cfg.memory_draws):
            X = torch.randn(cfg.memory_steps, 1, n, generator=gen) * drive
            W = torch.randn(n, n, generator=gen)
            W_hh = W * rho / torch.linalg.eigvals(W).abs().max()  # spectral radius rho
            H, _ = rnn_forward(X, torch.zeros(1, n), torch.eye(n), W_hh, torch.zeros(n))
            v = torch.randn(1, n, generator=gen)
            v, norms = v / v.norm(), []
            for h in H:  # the change moves with the linearised step diag(1 - h^2) W_hh
                v = (1 - h**2) * (v @ W_hh.T)
                norms.append(v.norm().clamp_min(1e-30).log())
            logs.append(torch.stack(norms))
            slope.append((1 - H**2).mean())
        curves[rho] = torch.stack(logs).mean(0).exp().tolist()
        slopes[rho] = torch.stack(slope).mean().item()
    return curves, slopes


def steps_to_forget(curve: list[float], level: float = 1e-3) -> int:
    """First step at which the change is below level; -1 if it never is."""
    return next((t for t, v in enumerate(curve, start=1) if v < level), -1)


ZH = {
    "strong input (std {})": "强输入（标准差 {}）",
    "weak input (std {})": "弱输入（标准差 {}）",
    "time step t": "时间步 t",
    "spectral radius ρ of $W_{hh}$": "循环权重 W_hh 的谱半径 ρ",
    "ρ = {}": "ρ = {}",
    "What is left of a small change of $h_0$ after t steps": "初始状态 h0 的微小改动在 t 步后还剩多少",
}


def plot_memory(by_drive: dict, cfg: Config, out: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    styles = ["-", "--", "-.", ":"]
    for ax, (drive, curves) in zip(axes, by_drive.items()):
        for k, (rho, c) in enumerate(curves.items()):
            ax.semilogy(range(1, len(c) + 1), c, ls=styles[k % 4], lw=1.6,
                        label=f"ρ = {rho}")
        ax.axhline(1.0, color="gray", lw=0.8)
        name = "strong" if drive == max(cfg.drives) else "weak"
        ax.set_title(f"{name} input (std {drive})")
        ax.set_xlabel("time step t")
        ax.set_ylim(1e-12, 1e4)
    axes[0].set_ylabel(r"$\|(\partial h_t / \partial h_0)\, v\| \;/\; \|v\|$")
    axes[1].legend(title="spectral radius ρ of $W_{hh}$", fontsize=8, title_fontsize=8)
    fig.suptitle("What is left of a small change of $h_0$ after t steps", y=1.03)
    save_figure(fig, out / "memory.svg", zh=ZH)


def main(cfg: Config = Config(), out: Path = Path("out/rnn-rnn")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    metrics = check_against_torch(cfg)
    metrics.update(padded_batch(cfg))
    by_drive = {}
    for drive in cfg.drives:
        name = "strong" if drive == max(cfg.drives) else "weak"
        curves, slopes = memory_curves(cfg, drive)
        by_drive[drive] = curves
        metrics[f"{name}_drive_std"] = drive
        for rho, c in curves.items():
            metrics[f"{name}_rho{rho}_steps_to_1e-3"] = steps_to_forget(c)
            metrics[f"{name}_rho{rho}_left_at_end"] = c[-1]
            metrics[f"{name}_rho{rho}_mean_slope"] = slopes[rho]
    plot_memory(by_drive, cfg, out)
    metrics["memory_steps"] = cfg.memory_steps
    metrics["memory_draws"] = cfg.memory_draws
    found = shapes()
    metrics["bidirectional_width"] = found["bidirectional_out"][-1]
    metrics["stacked_layers"] = found["stacked_h_n"][0]
    metrics["num_params_rnn"] = sum(p.numel() for p in nn.RNN(3, 16).parameters())
    return metrics


CLAIMS = {
    "scratch_rnn_matches_nn_rnn": lambda m: m["max_abs_err_vs_torch"] < 1e-5
    and m["max_grad_err_vs_torch"] < 1e-4,
    "packed_and_last_valid_equal_one_at_a_time": lambda m: m["pad_packed_err"] < 1e-5
    and m["pad_last_valid_err"] < 1e-5,
    "out_last_step_is_wrong_for_padded_sequences": lambda m: m["pad_out_last_err"]
    > 1e-2,
    "smaller_radius_forgets_sooner": lambda m: 0
    < m["strong_rho0.5_steps_to_1e-3"] < m["strong_rho0.9_steps_to_1e-3"]
    <= m["strong_rho1.0_steps_to_1e-3"],
    "radius_one_still_forgets": lambda m: m["strong_rho1.0_left_at_end"] < 1e-3
    and m["weak_rho1.0_left_at_end"] < 1.0,
    "radius_1.5_decays_under_strong_input": lambda m: m["strong_rho1.5_left_at_end"]
    < 0.1,
    "radius_1.5_grows_under_weak_input": lambda m: m["weak_rho1.5_left_at_end"] > 1,
    "strong_input_saturates_tanh": lambda m: m["strong_rho1.5_mean_slope"]
    < m["weak_rho1.5_mean_slope"] - 0.03,
}
