"""Training deep nets well: vanishing gradients (sigmoid vs ReLU), the variance argument
behind He/Xavier initialization, early stopping on a validation split, and dropout
(inverted, as PyTorch does it, vs test-time scaling; and as an implicit ensemble).

Page: foundations/training.md
Run:  python -m snippets run foundations/training
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from snippets.common import save_figure, seed_everything, use_style


@dataclass
class Config:
    depth: int = 10  # hidden layers of the deep net in the vanishing-gradient demo
    deep_width: int = 64  # units per hidden layer there
    deep_epochs: int = 20  # epochs of SGD for the sigmoid and ReLU deep nets
    init_depth: int = 20  # layers of the plain ReLU stack in the initialization check
    init_width: int = 256  # its width (= fan-in of every layer)
    num_hiddens: int = 256  # hidden units of the net for early stopping and dropout
    n_train: int = 300  # a small training set makes overfitting visible
    n_val: int = 300  # validation split, used only to choose the epoch
    num_epochs: int = 200  # full-batch Adam epochs for early stopping and dropout
    lr: float = 1e-2  # Adam's step size for the overfitting net
    p: float = 0.5  # dropout probability (of zeroing a unit)
    patience: int = 30  # stop after this many epochs without a new best val loss
    num_masks: int = 20000  # Monte Carlo masks for the dropout-expectation figure
    num_ensemble: int = 100  # random sub-networks averaged in the ensemble check
    seeds: tuple = (0, 1, 2)  # inits/masks for the dropout comparison (same data split)
    seed: int = 0

    @classmethod
    def tiny(cls) -> "Config":
        return cls(depth=4, deep_epochs=1, num_epochs=10, num_masks=500, patience=3,
                   init_depth=5, init_width=32, num_ensemble=5, seeds=(0,))


def load(cfg: Config):
    X, y = load_digits(return_X_y=True)
    X, y = torch.tensor(X / 16, dtype=torch.float32), torch.tensor(y)
    perm = torch.randperm(len(X))
    a, b = cfg.n_train, cfg.n_train + cfg.n_val
    tr, va, te = perm[:a], perm[a:b], perm[b:]
    return (X[tr], y[tr]), (X[va], y[va]), (X[te], y[te])


def deep_net(act: type, cfg: Config) -> nn.Sequential:
    layers, width = [], 64
    for _ in range(cfg.depth):
        layers += [nn.Linear(width, cfg.deep_width), act()]
        width = cfg.deep_width
    net = nn.Sequential(*layers, nn.Linear(width, 10))
    for m in net:  # the init designed for each activation: He for ReLU, Glorot else
        if isinstance(m, nn.Linear):
            if act is nn.ReLU:
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            else:
                nn.init.xavier_normal_(m.weight)
            nn.init.zeros_(m.bias)
    return net


# --8<-- [start:init]
def init_check(depth: int, width: int, var_times_fan_in: float, seed: int = 0):
    """A plain ReLU stack with W ~ N(0, c / fan_in): the std of every layer's
    pre-activation z (forward) and of dL/dz (backward), input side first."""
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(512, width, generator=gen)
    Ws = [torch.randn(width, width, generator=gen) * (var_times_fan_in / width) ** 0.5
          for _ in range(depth)]
    zs = []
    for W in Ws:
        z = a @ W.T  # (n, width); biases 0
        z.requires_grad_(True) if not z.requires_grad else z.retain_grad()
        zs.append(z)
        a = torch.relu(z)
    (a * torch.randn(a.shape, generator=gen)).sum().backward()  # a random scalar loss
    return [z.std().item() for z in zs], [z.grad.std().item() for z in zs]
# --8<-- [end:init]


def signal_per_layer(net: nn.Sequential, X) -> list[float]:
    """How much each hidden layer's output still varies across inputs (mean over units
    of the std over samples): the input-dependent part of the forward signal."""
    out = []
    with torch.no_grad():
        for m in net:
            X = m(X)
            if not isinstance(m, nn.Linear):  # after each activation
                out.append(X.std(0).mean().item())
    return out


# --8<-- [start:grad_norms]
def layer_grad_norms(net: nn.Sequential, X, y) -> list[float]:
    """||dL/dW|| for every Linear layer, input side first."""
    net.zero_grad()
    F.cross_entropy(net(X), y).backward()
    return [m.weight.grad.norm().item() for m in net if isinstance(m, nn.Linear)]
# --8<-- [end:grad_norms]


def vanishing(cfg: Config, train):
    X, y = train
    norms, losses, signal = {}, {}, {}
    for name, act in [("sigmoid", nn.Sigmoid), ("ReLU", nn.ReLU)]:
        torch.manual_seed(cfg.seed)
        net = deep_net(act, cfg)
        norms[name] = layer_grad_norms(net, X, y)
        signal[name] = signal_per_layer(net, X)
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        losses[name] = []
        for _ in range(cfg.deep_epochs):
            for idx in torch.randperm(len(X)).split(32):
                loss = F.cross_entropy(net(X[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            with torch.no_grad():
                losses[name].append(F.cross_entropy(net(X), y).item())
    return norms, losses, signal


# --8<-- [start:dropout]
def dropout_inverted(H, p: float, training: bool):
    """PyTorch's convention: kept units times 1/(1-p) in training; identity at test."""
    if not training or p == 0:
        return H
    if p == 1:
        return torch.zeros_like(H)  # every unit dropped (dividing by 1 - p = 0 fails)
    mask = (torch.rand_like(H) > p).float()
    return H * mask / (1 - p)


def dropout_classic(H, p: float, training: bool):
    """The original paper's convention: no scaling in training, times (1-p) at test."""
    if not training:
        return H * (1 - p)  # equivalently: scale the next layer's weights by (1 - p)
    return H * (torch.rand_like(H) > p).float()
# --8<-- [end:dropout]


class MLP(nn.Module):
    def __init__(self, cfg: Config, p: float):
        super().__init__()
        self.l1 = nn.Linear(64, cfg.num_hiddens)
        self.l2 = nn.Linear(cfg.num_hiddens, 10)
        self.p = p

    def forward(self, X):
        H = dropout_inverted(torch.relu(self.l1(X)), self.p, self.training)
        return self.l2(H)


# --8<-- [start:early_stopping]
def fit(cfg: Config, data, p: float, seed: int = 0):
    """Full-batch Adam; early stopping keeps the weights of the best validation loss.
    Returns the history and the net with those weights restored."""
    (X, y), (X_val, y_val), (X_test, y_test) = data
    torch.manual_seed(seed)
    net = MLP(cfg, p)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    hist = {"train": [], "val": []}
    best = (float("inf"), 0, None)  # (val loss, epoch, weights)
    for epoch in range(1, cfg.num_epochs + 1):
        net.train()
        loss = F.cross_entropy(net(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        net.eval()
        with torch.no_grad():
            hist["train"].append(F.cross_entropy(net(X), y).item())
            hist["val"].append(F.cross_entropy(net(X_val), y_val).item())
        if "stop" in hist:
            continue  # stopped: keep training only to draw what would have come next
        if hist["val"][-1] < best[0]:
            weights = {k: v.clone() for k, v in net.state_dict().items()}
            best = (hist["val"][-1], epoch, weights)
        elif epoch - best[1] >= cfg.patience:
            hist["stop"] = epoch  # early stopping ends here and keeps the best weights
    with torch.no_grad():
        hist["last_acc"] = (net(X_test).argmax(1) == y_test).float().mean().item()
        net.load_state_dict(best[2])
        hist["best_acc"] = (net(X_test).argmax(1) == y_test).float().mean().item()
        hist["val_acc"] = (net(X_val).argmax(1) == y_val).float().mean().item()
    hist["best_epoch"], hist["best_val"] = best[1], best[0]
    return hist, net
# --8<-- [end:early_stopping]


# --8<-- [start:ensemble]
def ensemble_acc(net: MLP, X, y, num_masks: int) -> float:
    """Average the softmax of num_masks random sub-networks (dropout left on)."""
    net.train()
    with torch.no_grad():
        probs = torch.stack([F.softmax(net(X), 1) for _ in range(num_masks)]).mean(0)
    net.eval()
    return (probs.argmax(1) == y).float().mean().item()
# --8<-- [end:ensemble]


CONVENTIONS = {"inverted (PyTorch)": "倒置丢弃法（PyTorch）",
               "classic (scale at test)": "原始约定（测试时缩放）"}
ZH = {
    "layer (1 = next to the input)": "层（1 = 紧挨输入）", "‖∂L/∂W‖ at init": "初始化时的 ‖∂L/∂W‖",
    "gradient norm per layer, one batch": "各层梯度范数（一个批次）",
    "epoch": "轮数", "training loss": "训练损失",
    "{} hidden layers, same SGD": "{} 个隐藏层，相同的 SGD",
    "training loss (dropout off)": "训练损失（测量时关闭 dropout）", "validation": "验证损失",
    "chosen epoch {}": "选中第 {} 轮",
    "stopped at {} (patience {})": "在第 {} 轮停止（patience {}）",
    "no dropout": "不用 dropout", "dropout p = {}": "dropout p = {}",
    "cross-entropy": "交叉熵", "w · dropout(h)": "w · dropout(h)",
    "p = {}: each convention's train mean = its own test value":
        "p = {}：每种约定训练时的均值 = 它自己的测试值",
    "layer": "层", "std of z (forward)": "z 的标准差（前向）",
    "std of ∂L/∂z (backward)": "∂L/∂z 的标准差（反向）",
    "Var(W) = 1/n_in (LeCun; halves per ReLU layer)":
        "Var(W) = 1/n_in（LeCun；每层 ReLU 减半）",
    "Var(W) = 2/n_in (He)": "Var(W) = 2/n_in（He）",
    "Var(W) = 4/n_in (doubles per layer)": "Var(W) = 4/n_in（每层翻倍）",
    "ReLU stack, {} layers of width {}": "ReLU 堆叠网络，{} 层，宽 {}",
    **{f"{k}: {part}": f"{v}：{zh}" for k, v in CONVENTIONS.items()
       for part, zh in [("train", "训练时"), ("mean over masks", "各掩码的均值"),
                        ("test-time value", "测试时的值")]},
}
INITS = {"Var(W) = 1/n_in (LeCun; halves per ReLU layer)": 1.0,
         "Var(W) = 2/n_in (He)": 2.0, "Var(W) = 4/n_in (doubles per layer)": 4.0}


def plot_init(stds: dict, cfg: Config, out: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharex=True)
    for (name, (fwd, bwd)), style in zip(stds.items(), ["v-", "o-", "^-"]):
        layers = range(1, len(fwd) + 1)
        axes[0].plot(layers, fwd, style, ms=4, label=name)
        axes[1].plot(layers, bwd, style, ms=4, label=name)
    for ax, title in zip(axes, ["std of z (forward)", "std of ∂L/∂z (backward)"]):
        ax.set_yscale("log"), ax.set_xlabel("layer"), ax.set_title(title)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"ReLU stack, {cfg.init_depth} layers of width {cfg.init_width}",
                 fontsize=10, y=1.02)
    save_figure(fig, out / "init.svg", zh=ZH)


def plot_vanishing(norms, losses, out: Path) -> None:
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 3.6))
    for (name, v), style in zip(norms.items(), ["o-", "s--"]):
        ax.plot(range(1, len(v) + 1), v, style, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("layer (1 = next to the input)"), ax.set_ylabel("‖∂L/∂W‖ at init")
    ax.set_title("gradient norm per layer, one batch"), ax.legend()
    for (name, v), style in zip(losses.items(), ["o-", "s--"]):
        bx.plot(range(1, len(v) + 1), v, style, label=name)
    bx.set_xlabel("epoch"), bx.set_ylabel("training loss")
    bx.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    bx.set_title(f"{len(norms['ReLU']) - 1} hidden layers, same SGD"), bx.legend()
    save_figure(fig, out / "vanishing.svg", zh=ZH)


def plot_curves(runs: dict, cfg: Config, out: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
    for ax, (name, h) in zip(axes, runs.items()):
        ax.plot(range(1, len(h["train"]) + 1), h["train"],
                label="training loss (dropout off)")
        ax.plot(range(1, len(h["val"]) + 1), h["val"], "--", label="validation")
        ax.axvline(h["best_epoch"], color="k", ls="--", lw=1,
                   label=f"chosen epoch {h['best_epoch']}")
        if "stop" in h:
            ax.axvline(h["stop"], color="gray", ls=":", lw=1,
                       label=f"stopped at {h['stop']} (patience {cfg.patience})")
        ax.set_yscale("log"), ax.set_xlabel("epoch"), ax.set_title(name)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("cross-entropy")
    save_figure(fig, out / "early_stopping.svg", zh=ZH)


def plot_expectation(cfg: Config, out: Path) -> dict:
    """Next-layer input w·dropout(h) over random masks, for both conventions; and how
    far the test-time value is from the mean once a non-linearity follows."""
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)  # the masks (torch.rand_like) do not depend on the runs
    h = torch.rand(50, generator=gen)
    w = torch.randn(50, generator=gen)
    H = h.expand(cfg.num_masks, -1)
    samples = {"inverted (PyTorch)": dropout_inverted(H, cfg.p, True) @ w,
               "classic (scale at test)": dropout_classic(H, cfg.p, True) @ w}
    tests = {"inverted (PyTorch)": dropout_inverted(h, cfg.p, False) @ w,
             "classic (scale at test)": dropout_classic(h, cfg.p, False) @ w}
    fig, ax = plt.subplots(figsize=(7, 3.4))
    gaps = {}
    for i, (name, s) in enumerate(samples.items()):
        ax.hist(s, bins=60, alpha=0.45, color=f"C{i}", density=True,
                hatch=["", "//"][i], label=f"{name}: train")
        ax.axvline(s.mean(), color=f"C{i}", lw=2, label=f"{name}: mean over masks")
        ax.axvline(tests[name], color=f"C{i}", ls=":", lw=2,
                   label=f"{name}: test-time value")
        gaps[name] = (s.mean() - tests[name]).abs().item()
        gaps[name + " se"] = (s.std() / len(s) ** 0.5).item()
    ax.set_xlabel("w · dropout(h)"), ax.legend(fontsize=7)
    ax.set_title(f"p = {cfg.p}: each convention's train mean = its own test value")
    save_figure(fig, out / "dropout_expectation.svg", zh=ZH)
    s, t = samples["inverted (PyTorch)"], tests["inverted (PyTorch)"]
    after = torch.relu(s - t)  # a ReLU unit whose bias puts the test value at its kink
    gaps["nonlinear"] = after.mean().item()  # test-time output: relu(0) = 0
    gaps["nonlinear se"] = (after.std() / len(after) ** 0.5).item()
    return gaps


def main(cfg: Config = Config(), out: Path = Path("out/foundations-training")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    data = load(cfg)
    norms, losses, signal = vanishing(cfg, data[0])
    plot_vanishing(norms, losses, out)
    stds = {name: init_check(cfg.init_depth, cfg.init_width, c, cfg.seed)
            for name, c in INITS.items()}
    plot_init(stds, cfg, out)
    runs = {(p, seed): fit(cfg, data, p, seed)
            for seed in cfg.seeds for p in (0.0, cfg.p)}
    first = cfg.seeds[0]
    plain, drop = runs[0.0, first][0], runs[cfg.p, first][0]
    plot_curves({"no dropout": plain, f"dropout p = {cfg.p}": drop}, cfg, out)
    gaps = plot_expectation(cfg, out)
    X_test, y_test = data[2]

    def mean(p, key):
        return sum(runs[p, s][0][key] for s in cfg.seeds) / len(cfg.seeds)

    (lecun_f, lecun_b), (he_f, he_b), (big_f, big_b) = stds.values()
    return {"depth": cfg.depth, "deep_width": cfg.deep_width,
            "deep_epochs": cfg.deep_epochs, "n_train": cfg.n_train, "n_val": cfg.n_val,
            "n_test": len(y_test), "num_masks": cfg.num_masks,
            "num_seeds": len(cfg.seeds), "init_depth": cfg.init_depth,
            "sigmoid_grad_ratio": norms["sigmoid"][0] / norms["sigmoid"][-1],
            "relu_grad_ratio": norms["ReLU"][0] / norms["ReLU"][-1],
            "sigmoid_final_loss": losses["sigmoid"][-1],
            "relu_final_loss": losses["ReLU"][-1],
            "sigmoid_signal_ratio": signal["sigmoid"][-1] / signal["sigmoid"][0],
            "relu_signal_ratio": signal["ReLU"][-1] / signal["ReLU"][0],
            "init_lecun_fwd_ratio": lecun_f[-1] / lecun_f[0],
            "init_he_fwd_ratio": he_f[-1] / he_f[0],
            "init_big_fwd_ratio": big_f[-1] / big_f[0],
            "init_lecun_bwd_ratio": lecun_b[0] / lecun_b[-1],
            "init_he_bwd_ratio": he_b[0] / he_b[-1],
            "init_big_bwd_ratio": big_b[0] / big_b[-1],
            "best_epoch": plain["best_epoch"],
            "stop_epoch": plain.get("stop", cfg.num_epochs),
            "train_final_loss": plain["train"][-1], "val_best_loss": plain["best_val"],
            "acc_best_epoch": plain["best_acc"], "acc_last_epoch": plain["last_acc"],
            "dropout_best_epoch": drop["best_epoch"],
            "dropout_acc_best": drop["best_acc"], "dropout_acc_last": drop["last_acc"],
            "mean_val_loss_plain": mean(0.0, "best_val"),
            "mean_val_loss_dropout": mean(cfg.p, "best_val"),
            "mean_val_acc_plain": mean(0.0, "val_acc"),
            "mean_val_acc_dropout": mean(cfg.p, "val_acc"),
            "mean_acc_best_plain": mean(0.0, "best_acc"),
            "mean_acc_best_dropout": mean(cfg.p, "best_acc"),
            "seeds_dropout_lower_val_loss": sum(
                runs[cfg.p, s][0]["best_val"] < runs[0.0, s][0]["best_val"]
                for s in cfg.seeds),
            "max_early_vs_last_acc_gap": max(abs(h["best_acc"] - h["last_acc"])
                                             for h, _ in runs.values()),
            "ensemble_acc": ensemble_acc(runs[cfg.p, first][1], X_test, y_test,
                                         cfg.num_ensemble),
            "num_ensemble": cfg.num_ensemble,
            "mc_gap_inverted": gaps["inverted (PyTorch)"],
            "mc_se_inverted": gaps["inverted (PyTorch) se"],
            "mc_gap_classic": gaps["classic (scale at test)"],
            "mc_se_classic": gaps["classic (scale at test) se"],
            "mc_gap_nonlinear": gaps["nonlinear"],
            "mc_se_nonlinear": gaps["nonlinear se"]}


CLAIMS = {
    "sigmoid_gradients_vanish_towards_the_input": lambda m: m["sigmoid_grad_ratio"]
    < 1e-3,
    "relu_gradients_stay_the_same_order": lambda m: 0.1 < m["relu_grad_ratio"] < 10,
    "sigmoid_net_stays_near_uniform_guessing": lambda m: m["sigmoid_final_loss"] > 2.0,
    "relu_net_trains": lambda m: m["relu_final_loss"] < 0.5,
    "sigmoid_forward_signal_collapses": lambda m: m["sigmoid_signal_ratio"] < 1e-3
    and m["relu_signal_ratio"] > 0.1,
    "he_init_keeps_the_scale": lambda m: 0.25 < m["init_he_fwd_ratio"] < 4
    and 0.25 < m["init_he_bwd_ratio"] < 4,
    "other_variances_vanish_or_explode": lambda m: m["init_lecun_fwd_ratio"] < 0.01
    and m["init_big_fwd_ratio"] > 100 and m["init_lecun_bwd_ratio"] < 0.01
    and m["init_big_bwd_ratio"] > 100,
    "training_loss_far_below_validation": lambda m: m["train_final_loss"]
    < 0.01 * m["val_best_loss"],
    "early_stopped_about_as_good_as_fully_trained": lambda m:
        m["max_early_vs_last_acc_gap"] < 0.015,
    "dropout_lowers_validation_loss_on_every_seed": lambda m:
        m["seeds_dropout_lower_val_loss"] == m["num_seeds"],
    "dropout_helps_on_average_over_seeds": lambda m: m["mean_val_acc_dropout"]
    > m["mean_val_acc_plain"] and m["mean_acc_best_dropout"] > m["mean_acc_best_plain"],
    "weight_scaling_matches_the_ensemble": lambda m:
        abs(m["ensemble_acc"] - m["dropout_acc_best"]) < 0.02,
    "each_convention_matches_its_test_value": lambda m: m["mc_gap_inverted"]
    < 4 * m["mc_se_inverted"] and m["mc_gap_classic"] < 4 * m["mc_se_classic"],
    "after_a_nonlinearity_the_test_value_is_off": lambda m: m["mc_gap_nonlinear"]
    > 20 * m["mc_se_nonlinear"],
}
