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
from mnist1d.data import get_dataset_args, make_dataset
from torch import nn

from snippets.common import progress, save_figure, seed_everything, use_style


@dataclass
class Config:
    num_samples: int = 5000  # MNIST-1D examples generated (80% train, 20% test)
    num_hiddens: int = 64  # hidden units of the GRU and of the LSTM beside it
    num_epochs: int = 20  # passes over the 4000 training sequences
    batch_size: int = 100  # sequences per update
    lr: float = 5e-3  # Adam learning rate
    seed: int = 0

    @classmethod
    def tiny(cls) -> "Config":
        return cls(num_samples=500, num_hiddens=8, num_epochs=2)


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


def train(kind: str, data, cfg: Config) -> dict:
    X, y, X_test, y_test = data
    torch.manual_seed(cfg.seed)
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


def plot(runs: dict, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.2, 3.6))
    for kind, run in runs.items():
        ax.plot(range(1, len(run["acc"]) + 1), run["acc"],
                label=f"{kind} ({run['params']} parameters)")
    ax.axhline(0.91, color="gray", ls="--", label="GRU in the MNIST-1D paper: 91%")
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.set_title("MNIST-1D, many-to-one, one recurrent layer")
    ax.legend(fontsize=8, loc="lower right")
    save_figure(fig, out / "mnist1d.svg")


def main(cfg: Config = Config(), out: Path = Path("out/rnn-gru")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    data = load(cfg)
    runs = {kind: train(kind, data, cfg) for kind in ("GRU", "LSTM")}
    plot(runs, out)
    metrics = {"num_train": len(data[0]), "num_test": len(data[2])}
    for kind, run in runs.items():
        k = kind.lower()
        metrics.update({f"{k}_test_acc": run["acc"][-1],
                        f"{k}_best_acc": max(run["acc"]),
                        f"{k}_train_cpu_s": run["cpu_s"],
                        f"{k}_params": run["params"]})
    for kind in ("RNN", "GRU", "LSTM"):
        metrics[f"params_{kind.lower()}_d1_h64"] = count_formula(kind, 1, 64)
    return metrics
