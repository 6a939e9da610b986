"""Backpropagation by hand for a 2-layer MLP (equal to autograd), gradient checking with
central differences, and a tiny reverse-mode automatic differentiation engine
(computational graph + topological order).

Page: foundations/backprop.md
Run:  python -m snippets run foundations/backprop
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from sklearn.datasets import load_digits

from snippets.common import save_figure, seed_everything, use_style


@dataclass
class Config:
    num_hiddens: int = 32  # hidden units of the 2-layer MLP
    num_epochs: int = 30  # passes over the digits training set
    batch_size: int = 64
    lr: float = 0.5  # plain SGD
    num_exprs: int = 200  # random expressions checked against torch
    check_batch: int = 8  # samples in the numerical gradient check
    check_h: float = 1e-6  # step of the central differences
    seed: int = 0

    @classmethod
    def tiny(cls) -> "Config":
        return cls(num_epochs=2, num_exprs=20)


# --8<-- [start:mlp]
def forward(X, params):
    """Z1 = X W1 + b1, H = ReLU(Z1), O = H W2 + b2. Keeps what backward needs."""
    W1, b1, W2, b2 = params
    Z1 = X @ W1 + b1  # (n, num_hiddens)
    H = torch.relu(Z1)  # derivative 0 at Z1 = 0, like the mask in backward
    O = H @ W2 + b2  # (n, 10) logits
    return O, (X, Z1, H)


def backward(O, y, cache, params):
    """Gradients of the mean cross-entropy, from the output back to W1."""
    X, Z1, H = cache
    W1, b1, W2, b2 = params
    n = len(y)
    dO = torch.softmax(O, dim=1)  # dL/dO = (softmax(O) - onehot(y)) / n
    dO[torch.arange(n), y] -= 1
    dO /= n
    dW2, db2 = H.T @ dO, dO.sum(0)  # O = H W2 + b2
    dH = dO @ W2.T
    dZ1 = dH * (Z1 > 0)  # ReLU passes the gradient only where it was active
    dW1, db1 = X.T @ dZ1, dZ1.sum(0)
    return [dW1, db1, dW2, db2]
# --8<-- [end:mlp]


# --8<-- [start:gradcheck]
def numerical_grads(loss_fn, params, h=1e-6):
    """Central differences (L(p + h e) - L(p - h e)) / 2h for every entry of every p."""
    grads = []
    for p in params:
        g = torch.zeros_like(p)
        for i in range(p.numel()):
            old = p.view(-1)[i].item()
            p.view(-1)[i] = old + h
            up = loss_fn(params)
            p.view(-1)[i] = old - h
            down = loss_fn(params)
            p.view(-1)[i] = old  # put the entry back
            g.view(-1)[i] = (up - down) / (2 * h)
        grads.append(g)
    return grads


def relative_error(grads, other) -> float:
    """||g - g~|| / (||g|| + ||g~||) over all parameters: ~1e-7 or less means right."""
    g = torch.cat([t.flatten() for t in grads])
    o = torch.cat([t.flatten() for t in other])
    return ((g - o).norm() / (g.norm() + o.norm())).item()
# --8<-- [end:gradcheck]


def mean_ce(X, y):
    """The loss of forward() as a function of the parameters, for gradient checking."""
    return lambda params: torch.nn.functional.cross_entropy(forward(X, params)[0],
                                                            y).item()


# --8<-- [start:engine]
class Value:
    """A scalar node of a computational graph that remembers how it was made."""

    def __init__(self, data, parents=(), local_grads=(), op=""):
        self.data, self.grad = float(data), 0.0
        self.parents, self.local_grads, self.op = parents, local_grads, op

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data + other.data, (self, other), (1.0, 1.0), "+")

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data * other.data, (self, other), (other.data, self.data),
                     "*")

    def __pow__(self, k: float):
        return Value(self.data**k, (self,), (k * self.data ** (k - 1),), f"**{k:g}")

    def exp(self):
        return Value(math.exp(self.data), (self,), (math.exp(self.data),), "exp")

    def log(self):
        return Value(math.log(self.data), (self,), (1 / self.data,), "log")

    def tanh(self):
        t = math.tanh(self.data)
        return Value(t, (self,), (1 - t * t,), "tanh")

    def relu(self):
        return Value(max(self.data, 0.0), (self,), (float(self.data > 0),), "relu")

    __radd__, __rmul__ = __add__, __mul__

    def __neg__(self):
        return self * -1

    def __sub__(self, other):
        return self + (-other)

    def __truediv__(self, other):
        return self * other**-1

    def backward(self):
        """Reverse mode: walk the nodes in reverse topological order (chain rule)."""
        order, seen = [], set()

        def visit(node):  # depth-first: a node is appended after all its parents
            if id(node) not in seen:
                seen.add(id(node))
                for parent in node.parents:
                    visit(parent)
                order.append(node)

        visit(self)
        self.grad = 1.0
        for node in reversed(order):
            for parent, local in zip(node.parents, node.local_grads):
                parent.grad += local * node.grad  # sum over every path to the output
# --8<-- [end:engine]


UNARY = ["exp", "log", "tanh", "relu", "square", "neg"]
BINARY = ["+", "*", "-", "/"]


def random_expression(leaves, rng: random.Random, depth: int = 4):
    """A random expression over the leaves; works for Value and torch scalars alike."""
    if depth == 0 or rng.random() < 0.2:
        return leaves[rng.randrange(len(leaves))]
    if rng.random() < 0.4:
        op, a = rng.choice(UNARY), random_expression(leaves, rng, depth - 1)
        if op == "log":  # keep the argument positive
            return (a * a + 1).log()
        if op == "exp":
            return a.tanh().exp()  # bounded, no overflow
        return {"tanh": a.tanh, "relu": a.relu, "square": lambda: a**2,
                "neg": lambda: -a}[op]()
    op = rng.choice(BINARY)
    a = random_expression(leaves, rng, depth - 1)
    b = random_expression(leaves, rng, depth - 1)
    if op == "/":
        return a / (b * b + 1)
    return {"+": a + b, "*": a * b, "-": a - b}[op]


def check_engine(num_exprs: int, seed: int) -> float:
    """Largest gap between our gradients and torch's over random expressions."""
    worst = 0.0
    for i in range(num_exprs):
        rng_vals = random.Random(seed * 1000 + i)
        values = [rng_vals.uniform(-2, 2) for _ in range(4)]
        ours = [Value(v) for v in values]
        ref = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]
        out_ours = random_expression(ours, random.Random(i)) * 1.0
        out_ref = random_expression(ref, random.Random(i)) * 1.0
        out_ours.backward()
        if out_ref.requires_grad:
            out_ref.backward()
        grads = [0.0 if t.grad is None else t.grad.item() for t in ref]
        worst = max(worst, abs(out_ours.data - out_ref.item()),
                    *(abs(v.grad - g) for v, g in zip(ours, grads)))
    return worst


def train_mlp(cfg: Config):
    """SGD on digits with hand-written gradients; autograd checked every step."""
    X, y = load_digits(return_X_y=True)
    X, y = torch.tensor(X / 16, dtype=torch.float64), torch.tensor(y)
    perm = torch.randperm(len(X))
    tr, te = perm[:1300], perm[1300:]
    params = [torch.randn(64, cfg.num_hiddens, dtype=torch.float64) * (2 / 64) ** 0.5,
              torch.zeros(cfg.num_hiddens, dtype=torch.float64),
              torch.randn(cfg.num_hiddens, 10, dtype=torch.float64)
              / cfg.num_hiddens**0.5,
              torch.zeros(10, dtype=torch.float64)]
    losses, gaps_per_step = [], []
    for _ in range(cfg.num_epochs):
        for idx in torch.randperm(len(tr)).split(cfg.batch_size):
            Xb, yb = X[tr[idx]], y[tr[idx]]
            O, cache = forward(Xb, params)
            grads = backward(O, yb, cache, params)
            leaves = [p.clone().requires_grad_(True) for p in params]
            loss = torch.nn.functional.cross_entropy(forward(Xb, leaves)[0], yb)
            auto = torch.autograd.grad(loss, leaves)
            gaps_per_step.append(max((g - a).abs().max().item()
                                     for g, a in zip(grads, auto)))
            params = [p - cfg.lr * g for p, g in zip(params, grads)]
            losses.append(loss.item())
    acc = (forward(X[te], params)[0].argmax(1) == y[te]).double().mean().item()
    return losses, gaps_per_step, acc, params, (X[tr], y[tr])


def gradient_check(params, data, cfg: Config) -> dict:
    """Hand-written gradients vs central differences, and a deliberately buggy backward
    (the 1/n of the mean forgotten) vs the same numbers."""
    X, y = data[0][:cfg.check_batch], data[1][:cfg.check_batch]
    params = [p.clone() for p in params]
    numeric = numerical_grads(mean_ce(X, y), params, cfg.check_h)
    O, cache = forward(X, params)
    hand = backward(O, y, cache, params)
    buggy = [g * len(y) for g in hand]  # what backward gives without "dO /= n"
    return {"gradcheck_rel_err": relative_error(hand, numeric),
            "gradcheck_buggy_rel_err": relative_error(buggy, numeric)}


def plot_graph(out: Path) -> None:
    """The graph of L = tanh(w*x + b) with each node's value and gradient."""
    x, w, b = Value(0.5), Value(-1.5), Value(0.8)
    for v, name in [(x, "x"), (w, "w"), (b, "b")]:
        v.op = name
    z = w * x
    s = z + b
    L = s.tanh()
    L.backward()
    pos = {id(x): (0, 2), id(w): (0, 1), id(b): (0, 0), id(z): (1, 1.5),
           id(s): (2, 0.75), id(L): (3, 0.75)}
    fig, ax = plt.subplots(figsize=(9, 3.6))
    for node in [x, w, b, z, s, L]:
        px, py = pos[id(node)]
        for parent in node.parents:
            qx, qy = pos[id(parent)]
            ax.annotate("", (px - 0.28, py), (qx + 0.28, qy),
                        arrowprops=dict(arrowstyle="->", color="gray"))
        ax.text(px, py, f"{node.op}\nvalue {node.data:.3f}\ngrad {node.grad:.3f}",
                ha="center", va="center", fontsize=9,
                bbox=dict(boxstyle="round",
                          fc="#fde9d9" if node.parents else "#cfe2f3"))
    ax.set_xlim(-0.5, 3.5), ax.set_ylim(-0.5, 2.5), ax.axis("off")
    ax.set_title("L = tanh(w·x + b): forward values (left→right), gradients ∂L/∂node "
                 "(right→left)")
    save_figure(fig, out / "graph.svg", zh=ZH)


ZH = {
    "{}\nvalue {}\ngrad {}": "{}\n值 {}\n梯度 {}",
    "L = tanh(w·x + b): forward values (left→right), gradients ∂L/∂node (right→left)":
        "L = tanh(w·x + b)：前向计算值（从左到右），梯度 ∂L/∂节点（从右到左）",
    "SGD step": "SGD 步数", "cross-entropy": "交叉熵",
    "training loss, hand-written gradients only": "训练损失（只用手写梯度）",
    "max |hand-written − autograd| per step": "每一步的 max |手写 − 自动求导|",
    "float64 machine epsilon": "float64 机器精度",
    "2-layer MLP, {} epochs of SGD": "两层 MLP，SGD 训练 {} 轮",
}


def plot_loss(losses, gaps, cfg: Config, out: Path) -> None:
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 3.2))
    ax.plot(losses, lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("SGD step"), ax.set_ylabel("cross-entropy")
    ax.set_title("training loss, hand-written gradients only")
    bx.plot(gaps, ".", ms=2)
    bx.axhline(torch.finfo(torch.float64).eps, color="gray", ls="--",
               label="float64 machine epsilon")
    bx.set_yscale("log"), bx.set_ylim(1e-20, 1e-12)
    bx.set_xlabel("SGD step"), bx.set_title("max |hand-written − autograd| per step")
    bx.legend(fontsize=8)
    fig.suptitle(f"2-layer MLP, {cfg.num_epochs} epochs of SGD", fontsize=10, y=1.03)
    save_figure(fig, out / "mlp_loss.svg", zh=ZH)


def main(cfg: Config = Config(), out: Path = Path("out/foundations-backprop")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    losses, gaps, acc, params, train = train_mlp(cfg)
    plot_loss(losses, gaps, cfg, out)
    plot_graph(out)
    return {"mlp_grad_max_err": max(gaps), "mlp_test_acc": acc,
            "final_loss": losses[-1],
            "first_loss": losses[0], "num_sgd_steps": len(gaps),
            "engine_max_err": check_engine(cfg.num_exprs, cfg.seed),
            "num_exprs": cfg.num_exprs, "check_batch": cfg.check_batch,
            **gradient_check(params, train, cfg)}


CLAIMS = {
    "hand_backprop_equals_autograd_every_step": lambda m: m["mlp_grad_max_err"] < 1e-12,
    "engine_equals_torch": lambda m: m["engine_max_err"] < 1e-9,
    "hand_gradients_train_the_net": lambda m: m["mlp_test_acc"] > 0.9
    and m["final_loss"] < 0.25 * m["first_loss"],
    "gradient_check_passes": lambda m: m["gradcheck_rel_err"] < 1e-7,
    "gradient_check_catches_a_forgotten_mean": lambda m: m["gradcheck_buggy_rel_err"]
    > 0.1,
}
