"""GRU from scratch, its parameter count against the LSTM, and a GRU on MNIST-1D.

Page: rnn/gru.md
Run:  python -m snippets run rnn/gru
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from snippets.common import progress, save_figure, seed_everything, use_style


@dataclass
class Config:
    num_samples: int = 5000  # MNIST-1D examples generated (80% train, 20% test)
    num_hiddens: int = 64  # hidden units of the GRU and of the LSTM beside it
    num_epochs: int = 20  # passes over the 4000 training sequences
    batch_size: int = 100  # sequences per update
    lr: float = 5e-3  # Adam learning rate
    seeds: tuple = (0, 1)  # every model is trained once per seed (same data)
    seed: int = 0  # the data's seed

    @classmethod
    def tiny(cls) -> "Config":
        return cls(num_samples=500, num_hiddens=8, num_epochs=2)


# The MNIST-1D paper's GRU (greydanus/mnist1d, notebooks/models.py and the
# classification notebook): bidirectional, 6 hidden units, a linear layer on all 40
# outputs, 5 134 parameters, Adam 0.01, batch 100, 6 000 updates. It reports 91%.
PAPER_GRU_ACC = 0.91


# --8<-- [start:gru_cell]
def gru_cell(x, h, W_ih, W_hh, b_ih, b_hh):
    """One GRU step with nn.GRUCell's layout: rows stacked as (r, z, n)."""
    x_r, x_z, x_n = (x @ W_ih.T + b_ih).chunk(3, dim=1)
    h_r, h_z, h_n = (h @ W_hh.T + b_hh).chunk(3, dim=1)
    r = torch.sigmoid(x_r + h_r)  # reset gate: how much of h the candidate may use
    z = torch.sigmoid(x_z + h_z)  # update gate: how much of h to keep
    n = torch.tanh(x_n + r * h_n)  # candidate state
    return (1 - z) * n + z * h  # keep z of the old state, take 1 - z of the new
# --8<-- [end:gru_cell]


# --8<-- [start:count]
def count_formula(kind: str, d: int, h: int) -> int:
    """Parameters of one layer: blocks x (input + recurrent weights + 2 biases)."""
    blocks = {"RNN": 1, "GRU": 3, "LSTM": 4}[kind]
    return blocks * (h * d + h * h + 2 * h)


def count_torch(kind: str, d: int, h: int) -> int:
    return sum(p.numel() for p in getattr(nn, kind)(d, h).parameters())
# --8<-- [end:count]


def load(cfg: Config):
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()  # generated locally from templates, nothing downloaded
    args.num_samples, args.seed = cfg.num_samples, cfg.seed + 42
    data = make_dataset(args)
    X, X_test = (torch.tensor(data[k], dtype=torch.float32)[..., None]  # (N, 40, 1)
                 for k in ("x", "x_test"))
    return X, torch.tensor(data["y"]), X_test, torch.tensor(data["y_test"])


# --8<-- [start:model]
class Classifier(nn.Module):
    """Many-to-one: read the whole sequence, classify from the last hidden state."""

    def __init__(self, kind: str, num_hiddens: int, num_classes: int = 10):
        super().__init__()
        self.rnn = getattr(nn, kind)(1, num_hiddens, batch_first=True)
        self.head = nn.Linear(num_hiddens, num_classes)

    def forward(self, X):  # X: (B, 40, 1)
        out, _ = self.rnn(X)  # (B, 40, h)
        return self.head(out[:, -1])  # (B, 10) logits
# --8<-- [end:model]


def train(kind: str, data, cfg: Config, seed: int) -> dict:
    X, y, X_test, y_test = data
    torch.manual_seed(seed)
    net = Classifier(kind, cfg.num_hiddens)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    accs, start = [], time.process_time()
    for _ in progress(range(cfg.num_epochs), desc=kind):
        for idx in torch.randperm(len(X)).split(cfg.batch_size):
            loss = F.cross_entropy(net(X[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            accs.append((net(X_test).argmax(1) == y_test).float().mean().item())
    return {"acc": accs, "cpu_s": time.process_time() - start,
            "params": sum(p.numel() for p in net.parameters())}


ZH = {
    "{} ({} parameters)": "{}（{} 个参数）",
    "{} ({} parameters), seed {}": "{}（{} 个参数），种子 {}",
    "GRU in the MNIST-1D paper: {}": "MNIST-1D 论文中的 GRU：{}",
    "epoch": "轮数（epoch）",
    "test accuracy": "测试准确率",
    "MNIST-1D, many-to-one, one recurrent layer": "MNIST-1D，多对一，一层循环层",
}


def plot(runs: dict, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.2, 3.6))
    styles = {"GRU": "-", "LSTM": "--"}
    for (kind, seed), run in runs.items():
        ax.plot(range(1, len(run["acc"]) + 1), run["acc"], ls=styles[kind],
                color="C0" if kind == "GRU" else "C1", alpha=1 if seed == 0 else 0.5,
                label=f"{kind} ({run['params']} parameters), seed {seed}")
    ax.axhline(PAPER_GRU_ACC, color="gray", ls=":",
               label=f"GRU in the MNIST-1D paper: {PAPER_GRU_ACC:.0%}")
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.set_title("MNIST-1D, many-to-one, one recurrent layer")
    ax.legend(fontsize=7.5, loc="lower right")
    save_figure(fig, out / "mnist1d.svg", zh=ZH)


def main(cfg: Config = Config(), out: Path = Path("out/rnn-gru")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    data = load(cfg)
    runs = {(kind, s): train(kind, data, cfg, s) for kind in ("GRU", "LSTM")
            for s in cfg.seeds}
    plot(runs, out)
    metrics = {"num_train": len(data[0]), "num_test": len(data[2]),
               "seq_len": data[0].shape[1], "num_epochs": cfg.num_epochs,
               "num_seeds": len(cfg.seeds), "lr": cfg.lr, "batch_size": cfg.batch_size,
               "updates": cfg.num_epochs * -(-len(data[0]) // cfg.batch_size),
               "paper_gru_acc": PAPER_GRU_ACC}
    for kind in ("GRU", "LSTM"):
        k, mine = kind.lower(), [runs[kind, s] for s in cfg.seeds]
        n = len(mine)
        metrics.update({f"{k}_test_acc": sum(r["acc"][-1] for r in mine) / n,
                        f"{k}_min_test_acc": min(r["acc"][-1] for r in mine),
                        f"{k}_best_acc": sum(max(r["acc"]) for r in mine) / n,
                        f"{k}_half_acc": sum(r["acc"][len(r["acc"]) // 2 - 1]
                                             for r in mine) / n,
                        f"{k}_train_cpu_s": sum(r["cpu_s"] for r in mine) / n,
                        f"{k}_params": mine[0]["params"]})
        for s, r in zip(cfg.seeds, mine):
            metrics[f"{k}_seed{s}_test_acc"] = r["acc"][-1]
            metrics[f"{k}_seed{s}_half_acc"] = r["acc"][len(r["acc"]) // 2 - 1]
    for kind in ("RNN", "GRU", "LSTM"):
        metrics[f"params_{kind.lower()}_d1_h64"] = count_formula(kind, 1, 64)
    return metrics


# Published numbers this demo reruns (listed on the site's results page).
REPRODUCES = [
    {"what": ("GRU test accuracy on MNIST-1D (worst seed)",
              "GRU 在 MNIST-1D 上的测试准确率（最差的种子）"),
     "source": "Greydanus & Kobak, MNIST-1D, Table 1", "paper": "paper_gru_acc",
     "metric": "gru_min_test_acc", "format": ".1%",
     "claim": "gru_reaches_the_paper_level"},
]

CLAIMS = {
    "gru_has_three_quarters_of_lstm_params": lambda m: 4 * m["params_gru_d1_h64"]
    == 3 * m["params_lstm_d1_h64"],
    "gru_ahead_at_half_budget_on_every_seed": lambda m: min(
        m["gru_seed0_half_acc"], m["gru_seed1_half_acc"]) > max(
        m["lstm_seed0_half_acc"], m["lstm_seed1_half_acc"]),
    "gru_ahead_at_the_end_on_every_seed": lambda m: min(
        m["gru_seed0_test_acc"], m["gru_seed1_test_acc"]) > max(
        m["lstm_seed0_test_acc"], m["lstm_seed1_test_acc"]),
    "fewer_parameters_did_not_train_faster": lambda m: m["gru_train_cpu_s"]
    > 0.9 * m["lstm_train_cpu_s"],
    "gru_reaches_the_paper_level": lambda m: m["gru_min_test_acc"]
    > m["paper_gru_acc"] - 0.03,
}
