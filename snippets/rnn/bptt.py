"""Backpropagation through time: the backward pass by hand, why gradients vanish or
explode, and gradient clipping.

Page: rnn/bptt.md
Run:  python -m snippets run rnn/bptt
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from torch import nn

from snippets.common import save_figure, seed_everything, use_style
from snippets.rnn.rnn import rnn_forward


@dataclass
class Config:
    input_size: int = 4  # features per time step
    num_hiddens: int = 32  # hidden units of the RNN and the LSTM
    num_steps: int = 100  # sequence length T
    batch_size: int = 8  # sequences averaged in the gradient-norm figure
    draws: int = 5  # random weights and inputs per curve; the figure shows the median
    forget_bias: float = 3.0  # extra forget-gate bias for the "gate open" LSTM
    big_gain: float = 3.0  # W_hh scale of the LSTM that explodes anyway
    cliff_steps: int = 50  # length of the scalar RNN whose loss has a cliff
    cliff_w0: float = 1.9459  # the weight we start from, at the edge of the cliff
    lr: float = 0.1  # learning rate of the single SGD update
    max_norm: float = 1.0  # gradient clipping threshold
    seed: int = 0

    @classmethod
    def tiny(cls) -> "Config":
        return cls(num_hiddens=8, num_steps=20, batch_size=4, draws=2)


# --8<-- [start:bptt_backward]
def rnn_backward(X, H, h0, W_hh, dH):
    """BPTT by hand for rnn_forward. dH: (T, B, h) holds dl_t/dh_t, the gradient of
    the loss at step t with respect to h_t. Returns dW_xh, dW_hh, db, dh0."""
    dW_xh, dW_hh = torch.zeros(W_hh.shape[0], X.shape[2]), torch.zeros_like(W_hh)
    db, carry = torch.zeros(W_hh.shape[0]), torch.zeros_like(h0)
    for t in reversed(range(len(X))):
        delta = dH[t] + carry  # dL/dh_t: its own loss plus what came back from t + 1
        da = delta * (1 - H[t] ** 2)  # through tanh: dL/da_t, (B, h)
        h_prev = H[t - 1] if t > 0 else h0
        dW_xh += da.T @ X[t]  # outer products (h, B) @ (B, d), summed over the batch
        dW_hh += da.T @ h_prev  # the delta_t h_{t-1}^T of the formula
        db += da.sum(dim=0)
        carry = da @ W_hh  # dL/dh_{t-1} through the recurrence: W_hh^T delta
    return dW_xh, dW_hh, db, carry
# --8<-- [end:bptt_backward]


def check_backward(cfg: Config) -> float:
    """Largest gap between rnn_backward and autograd on a random sequence loss."""
    d, n, T, B = cfg.input_size, cfg.num_hiddens, 12, 3
    W_xh, W_hh = torch.randn(n, d) * 0.5, torch.randn(n, n) / n**0.5
    b, h0, X = torch.randn(n) * 0.1, torch.randn(B, n), torch.randn(T, B, d)
    C = torch.randn(T, B, n)  # loss L = sum_t <C_t, h_t>, so dl_t/dh_t = C_t
    leaves = [p.clone().requires_grad_() for p in (W_xh, W_hh, b, h0)]
    H, _ = rnn_forward(X, leaves[3], *leaves[:3])
    (H * C).sum().backward()
    ours = rnn_backward(X, H.detach(), h0, W_hh, C)
    return max((o - p.grad).abs().max().item() for o, p in zip(ours, leaves))


# --8<-- [start:bptt_jacobian]
def state_jacobians(H, W_hh):
    """dh_T/dh_t for t = 0..T of a tanh RNN, by the chain rule, newest factor left.

    H: (T, h) states h_1..h_T of one sequence; h_t = tanh(W_xh x_t + W_hh h_{t-1} + b).
    """
    J = torch.eye(W_hh.shape[0])  # dh_T/dh_T
    jacobians = [J]
    for h in reversed(H):  # h = h_T, h_{T-1}, ..., h_1
        J = J @ torch.diag(1 - h**2) @ W_hh  # one more factor, on the right
        jacobians.append(J)
    return jacobians[::-1]  # index t holds dh_T/dh_t
# --8<-- [end:bptt_jacobian]


# --8<-- [start:grad_norms]
def grad_norms_vs_gap(cell: nn.Module, X: torch.Tensor) -> torch.Tensor:
    """||dh_T/ds_t||_F for every t, averaged over the batch; s_t is the whole state.

    The state s_t is h_t for an RNN cell and (h_t, c_t) for an LSTM cell.
    """
    T, B, _ = X.shape
    h = torch.zeros(B, cell.hidden_size)
    state = (h, torch.zeros_like(h)) if isinstance(cell, nn.LSTMCell) else h
    states = []
    for x in X:
        state = cell(x, state)
        states.append(state)
    h_T = states[-1][0] if isinstance(cell, nn.LSTMCell) else states[-1]
    flat = [s for st in states for s in (st if isinstance(st, tuple) else (st,))]
    sq = torch.zeros(T, B)
    for i in range(cell.hidden_size):  # one row of the Jacobian per backward pass
        grads = torch.autograd.grad(h_T[:, i].sum(), flat, retain_graph=True)
        per_step = torch.stack(grads).reshape(T, -1, B, cell.hidden_size)
        sq += per_step.square().sum(dim=(1, 3))  # sum over (h, c) and over units
    return sq.sqrt().mean(dim=1)  # (T,): index t is the state at step t + 1
# --8<-- [end:grad_norms]


def make_cells(cfg: Config) -> dict:
    d, n = cfg.input_size, cfg.num_hiddens
    rnn, rnn_big = nn.RNNCell(d, n), nn.RNNCell(d, n)
    lstm, lstm_open, lstm_big = nn.LSTMCell(d, n), nn.LSTMCell(d, n), nn.LSTMCell(d, n)
    with torch.no_grad():
        W = rnn_big.weight_hh
        W *= 1.5 / torch.linalg.eigvals(W).abs().max()  # spectral radius 1.5
        for cell in (lstm_open, lstm_big):
            cell.bias_ih[n:2 * n] += cfg.forget_bias  # gate order: i, f, g, o
        lstm_big.weight_hh *= cfg.big_gain
    return {"rnn": rnn, "rnn_rho1.5": rnn_big, "lstm": lstm, "lstm_open": lstm_open,
            "lstm_open_big": lstm_big}


def forget_path(cell: nn.LSTMCell, X: torch.Tensor) -> tuple:
    """Forget gates f_t (T, B, h) along X, and the direct cell path prod f_j by gap:
    the root mean square over units of prod_{j > T - gap} f_j, batch-averaged."""
    h = c = torch.zeros(X.shape[1], cell.hidden_size)
    fs = []
    with torch.no_grad():
        for x in X:
            gates = x @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T
            fs.append(torch.sigmoid((gates + cell.bias_hh).chunk(4, dim=1)[1]))
            h, c = cell(x, (h, c))
    f = torch.stack(fs)  # (T, B, h)
    prods = torch.cumprod(f.flip(0), dim=0)  # gap 1, 2, ...: products of newest gates
    rms = prods.square().mean(dim=2).sqrt().mean(dim=1)
    return f, torch.cat([torch.ones(1), rms[:-1]])  # index = gap


def gradient_curves(cfg: Config) -> tuple[dict, list]:
    """Every cell kind on cfg.draws random draws of weights and inputs: curves
    (draws, T) indexed by gap, per unit (||J||_F / sqrt(h): 1 for the identity)."""
    scale, runs, curves = cfg.num_hiddens ** 0.5, [], {}
    for _ in range(cfg.draws):
        X = torch.randn(cfg.num_steps, cfg.batch_size, cfg.input_size)
        cells = make_cells(cfg)
        runs.append((cells, X))
        for k, cell in cells.items():
            curves.setdefault(k, []).append(grad_norms_vs_gap(cell, X).flip(0) / scale)
    return {k: torch.stack(c) for k, c in curves.items()}, runs


# --8<-- [start:clip]
def clip_by_norm(grads: list[torch.Tensor], max_norm: float) -> list[torch.Tensor]:
    """Rescale all gradients together when their joint norm exceeds max_norm."""
    total = torch.sqrt(sum(g.square().sum() for g in grads))
    scale = min(1.0, max_norm / (total.item() + 1e-6))
    return [g * scale for g in grads]  # same direction, shorter step
# --8<-- [end:clip]


def cliff_loss(w: torch.Tensor, steps: int) -> torch.Tensor:
    """Loss of a one-unit RNN h_t = tanh(w h_{t-1} + 0.5), h_0 = -0.9, target +0.9."""
    h = torch.full_like(w, -0.9)
    for _ in range(steps):
        h = torch.tanh(w * h + 0.5)
    return (h - 0.9) ** 2


def one_update(cfg: Config, clip: bool) -> float:
    """One SGD step from w0 with or without clip_grad_norm_; returns the new w."""
    w = nn.Parameter(torch.tensor(cfg.cliff_w0))
    cliff_loss(w, cfg.cliff_steps).backward()
    if clip:
        nn.utils.clip_grad_norm_([w], max_norm=cfg.max_norm)
    with torch.no_grad():
        w -= cfg.lr * w.grad
    return w.item()


def cliff_gradient(w: torch.Tensor, steps: int) -> torch.Tensor:
    w = w.clone().requires_grad_()
    (grad,) = torch.autograd.grad(cliff_loss(w, steps).sum(), w)
    return grad


ZH = {
    "gap T - t": "间隔 T − t",
    "RNN, PyTorch init": "RNN，PyTorch 默认初始化",
    "RNN, $W_{hh}$ spectral radius 1.5": "RNN，W_hh 谱半径 1.5",
    "LSTM, PyTorch init": "LSTM，PyTorch 默认初始化",
    "LSTM, forget-gate bias +{}, $W_{hh}$ × {}": "LSTM，遗忘门偏置 +{}，W_hh × {}",
    "LSTM, forget-gate bias +{}": "LSTM，遗忘门偏置 +{}",
    "How much the last state still depends on an earlier state":
        "最后的状态还有多依赖更早的状态",
    "start $w_0$": "起点 w₀",
    "after a clipped step": "裁剪后走一步",
    "unclipped step lands at w = {}": "不裁剪的一步落在 w = {}",
    "recurrent weight w": "循环权重 w",
    "loss": "损失",
    "Loss after T = {} steps: a cliff": "T = {} 步后的损失：一堵悬崖",
    "clipping threshold {}": "裁剪阈值 {}",
    "The gradient is huge only on the cliff": "只有悬崖上的梯度巨大",
    "|dL/dw| at $w_0$ = {}": "w₀ 处的 |dL/dw| = {}",
    "|dL/dw|": "|dL/dw|",
}


def plot_gradients(curves: dict, cfg: Config, out: Path) -> None:
    labels = {"rnn": "RNN, PyTorch init",
              "rnn_rho1.5": r"RNN, $W_{hh}$ spectral radius 1.5",
              "lstm": "LSTM, PyTorch init",
              "lstm_open": f"LSTM, forget-gate bias +{cfg.forget_bias:g}",
              "lstm_open_big": f"LSTM, forget-gate bias +{cfg.forget_bias:g}, "
                               f"$W_{{hh}}$ × {cfg.big_gain:g}"}
    styles = ["-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1))]
    fig, ax = plt.subplots(figsize=(6.6, 3.9))
    for k, (name, c) in enumerate(curves.items()):
        ax.semilogy(range(len(c)), c, ls=styles[k], lw=1.6, label=labels[name])
    ax.set_xlabel("gap T - t")
    ax.set_ylabel(r"$\|\partial h_T / \partial s_t\|_F \,/ \sqrt{h}$")
    ax.set_title("How much the last state still depends on an earlier state")
    ax.set_ylim(1e-12, 1e4)
    ax.legend(fontsize=7.5, loc="lower left")
    save_figure(fig, out / "gradient_vs_gap.svg", zh=ZH)


def plot_cliff(cfg: Config, w_plain: float, w_clip: float, out: Path) -> float:
    w = torch.cat([torch.linspace(0.0, 4.0, 801), torch.linspace(1.9, 2.0, 401)])
    w = w.sort().values  # a finer grid near the cliff
    grad = cliff_gradient(w, cfg.cliff_steps)
    loss = cliff_loss(w, cfg.cliff_steps)
    g0 = cliff_gradient(torch.tensor(cfg.cliff_w0), cfg.cliff_steps).abs().item()
    L = lambda v: cliff_loss(torch.tensor(v), cfg.cliff_steps).item()  # noqa: E731
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax.plot(w, loss, color="k", lw=1)
    ax.plot([cfg.cliff_w0], [L(cfg.cliff_w0)], "o", color="C0", label="start $w_0$")
    ax.plot([w_clip], [L(w_clip)], "s", color="C2", label="after a clipped step")
    shown = min(max(w_plain, 0.0), 4.0)
    ax.annotate(f"unclipped step lands at w = {w_plain:.0f}", xy=(shown, L(shown)),
                xytext=(0.15, 1.4), color="C1",
                arrowprops={"arrowstyle": "->", "color": "C1"})
    ax.set_xlabel("recurrent weight w")
    ax.set_ylabel("loss")
    ax.set_title(f"Loss after T = {cfg.cliff_steps} steps: a cliff")
    ax.legend(loc="upper left", fontsize=8)
    ax2.semilogy(w, grad.abs() + 1e-12, color="k", lw=1)
    ax2.plot([cfg.cliff_w0], [g0], "o", color="C0",
             label=f"|dL/dw| at $w_0$ = {g0:.0f}")
    ax2.axhline(cfg.max_norm, color="C2", ls="--",
                label=f"clipping threshold {cfg.max_norm:g}")
    ax2.set_xlabel("recurrent weight w")
    ax2.set_ylabel("|dL/dw|")
    ax2.set_title("The gradient is huge only on the cliff")
    ax2.legend(fontsize=8, loc="upper left")
    save_figure(fig, out / "cliff.svg", zh=ZH)
    return g0


def main(cfg: Config = Config(), out: Path = Path("out/rnn-bptt")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    metrics = {"backward_max_err_vs_autograd": check_backward(cfg)}
    curves, runs = gradient_curves(cfg)
    medians = {k: c.median(dim=0).values for k, c in curves.items()}
    plot_gradients(medians, cfg, out)
    last = cfg.num_steps - 1
    for k, c in medians.items():
        for g in (1, 10, 50, 99):  # tiny preset: T = 20, so gaps stop at T - 1
            metrics[f"grad_gap{g}_{k}"] = c[min(g, last)].item()
        grows = curves[k][:, last] > curves[k][:, min(10, last)]
        metrics[f"draws_growing_{k}"] = int(grows.sum())
    for k in ("rnn", "rnn_rho1.5"):
        W = torch.stack([cells[k].weight_hh.detach() for cells, _ in runs])
        metrics[f"rho_{k}"] = torch.linalg.eigvals(W).abs().amax(-1).mean().item()
        metrics[f"sigma_max_{k}"] = torch.linalg.matrix_norm(W, ord=2).mean().item()
    cells, X = runs[0]
    f, _ = forget_path(cells["lstm"], X)
    metrics["forget_mean_lstm"] = f.mean().item()
    f, direct = forget_path(cells["lstm_open"], X)
    low, high = torch.quantile(f.flatten(), torch.tensor([0.01, 0.99])).tolist()
    draw0 = curves["lstm_open"][0]  # the same draw as f and direct
    metrics.update(forget_p01_lstm_open=low, forget_p99_lstm_open=high,
                   draws=cfg.draws,
                   direct_path_gap50_lstm_open=direct[min(50, last)].item(),
                   direct_path_gap99_lstm_open=direct[min(99, last)].item(),
                   grad_gap50_lstm_open_draw0=draw0[min(50, last)].item(),
                   grad_gap99_lstm_open_draw0=draw0[last].item())
    w_plain, w_clip = one_update(cfg, clip=False), one_update(cfg, clip=True)
    grad_w0 = plot_cliff(cfg, w_plain, w_clip, out)
    metrics.update(num_steps=cfg.num_steps, num_hiddens=cfg.num_hiddens,
                   cliff_steps=cfg.cliff_steps, lr=cfg.lr, max_norm=cfg.max_norm,
                   forget_bias=cfg.forget_bias, big_gain=cfg.big_gain,
                   grad_at_w0=grad_w0, step_unclipped=abs(w_plain - cfg.cliff_w0),
                   step_clipped=abs(w_clip - cfg.cliff_w0))
    for name, w in (("start", cfg.cliff_w0), ("clipped", w_clip),
                    ("unclipped", w_plain)):
        metrics[f"loss_{name}"] = cliff_loss(torch.tensor(w), cfg.cliff_steps).item()
    return metrics


CLAIMS = {
    "hand_bptt_matches_autograd": lambda m: m["backward_max_err_vs_autograd"] < 1e-4,
    "rnn_gradient_vanishes": lambda m: m["grad_gap50_rnn"] < 1e-6 * m["grad_gap1_rnn"],
    "pytorch_init_radius_below_one": lambda m: 0.4 < m["rho_rnn"] < 0.8,
    "spectral_norm_exceeds_radius": lambda m: m["sigma_max_rnn"] > m["rho_rnn"]
    and m["sigma_max_rnn_rho1.5"] > m["rho_rnn_rho1.5"],
    "radius_1.5_does_not_vanish": lambda m: m["grad_gap99_rnn_rho1.5"]
    > m["grad_gap10_rnn_rho1.5"] > 0.1,
    "fresh_lstm_vanishes_too": lambda m: m["grad_gap50_lstm"] < 1e-6,
    "fresh_lstm_forget_gate_near_half": lambda m: 0.4 < m["forget_mean_lstm"] < 0.6,
    "open_forget_gate_keeps_gradient": lambda m: m["grad_gap50_lstm_open"] > 0.01
    and m["grad_gap50_lstm_open"] > 1e6 * m["grad_gap50_lstm"],
    "open_gates_beat_0.95_power": lambda m: m["direct_path_gap99_lstm_open"]
    > 0.95**99 and m["forget_p01_lstm_open"] < 0.95 < m["forget_p99_lstm_open"],
    "gate_paths_add_to_the_direct_path": lambda m: m["grad_gap99_lstm_open_draw0"]
    > 2 * m["direct_path_gap99_lstm_open"],
    "lstm_can_still_explode": lambda m: m["grad_gap99_lstm_open_big"] > 3
    and m["draws_growing_lstm_open_big"] > m["draws"] / 2,
    "unclipped_step_is_lr_times_gradient": lambda m: abs(
        m["step_unclipped"] - m["lr"] * m["grad_at_w0"]) < 1e-3 * m["step_unclipped"],
    "clipping_bounds_the_step": lambda m: m["step_clipped"]
    <= m["lr"] * m["max_norm"] + 1e-6,
    "clipped_step_lowers_loss": lambda m: m["loss_clipped"] < m["loss_start"]
    < m["loss_unclipped"],
}
