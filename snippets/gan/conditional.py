"""A conditional GAN on scikit-learn's 8x8 digits: ask for a class, get that digit.

Page: gan/conditional.md
Run:  python -m snippets run gan/conditional
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from torch import nn

from snippets.common import progress, save_figure, seed_everything, use_style

NUM_CLASSES = 10


@dataclass
class Config:
    latent_dim: int = 16  # z ~ N(0, I)
    num_hiddens: int = 256  # width of G and D (two hidden layers each)
    num_steps: int = 3000  # alternating D/G steps
    batch_size: int = 128
    lr: float = 2e-4  # Adam, betas (0.5, 0.999) as in DCGAN
    num_per_class: int = 200  # generated samples per class for the recognition check
    seed: int = 0

    @classmethod
    def tiny(cls) -> "Config":
        return cls(num_steps=60, num_hiddens=64, num_per_class=20)


def load_data(seed: int):
    """Digits scaled to [-1, 1] (G ends in tanh), and a held-out split for the judge."""
    digits = load_digits()
    X = digits.data.astype(np.float32) / 8 - 1  # pixel values 0..16 -> -1..1
    return train_test_split(X, digits.target, test_size=0.25, random_state=seed,
                            stratify=digits.target)


# --8<-- [start:models]
class Generator(nn.Module):
    """G(z, y): the label enters as a one-hot vector concatenated with the noise."""

    def __init__(self, latent_dim: int, num_hiddens: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim + NUM_CLASSES, num_hiddens), nn.LeakyReLU(0.2),
            nn.Linear(num_hiddens, num_hiddens), nn.LeakyReLU(0.2),
            nn.Linear(num_hiddens, 64), nn.Tanh())  # 64 pixels in [-1, 1]

    def forward(self, z, y):
        return self.net(torch.cat([z, F.one_hot(y, NUM_CLASSES).float()], dim=1))


class Discriminator(nn.Module):
    """D(x, y): is x a real image *of class y*? A real 3 labelled 5 must score low."""

    def __init__(self, num_hiddens: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(64 + NUM_CLASSES, num_hiddens), nn.LeakyReLU(0.2),
            nn.Linear(num_hiddens, num_hiddens), nn.LeakyReLU(0.2),
            nn.Linear(num_hiddens, 1))

    def forward(self, X, y):
        return self.net(torch.cat([X, F.one_hot(y, NUM_CLASSES).float()], dim=1))
# --8<-- [end:models]


# --8<-- [start:embedding]
def first_layer_with_embedding(linear: nn.Linear, latent_dim: int):
    """Linear([z, one_hot(y)]) == Linear_z(z) + Embedding(y): the label adds a learned
    per-class vector. Returns that (Linear, Embedding) pair with the same weights."""
    W_z, W_y = linear.weight[:, :latent_dim], linear.weight[:, latent_dim:]
    lin = nn.Linear(latent_dim, linear.out_features)
    emb = nn.Embedding(NUM_CLASSES, linear.out_features)
    with torch.no_grad():
        lin.weight.copy_(W_z), lin.bias.copy_(linear.bias)
        emb.weight.copy_(W_y.T)  # row y of the table = column y of W_y
    return lin, emb
# --8<-- [end:embedding]


# --8<-- [start:train]
def train(cfg: Config, X_train: np.ndarray, y_train: np.ndarray):
    X_all, y_all = torch.from_numpy(X_train), torch.from_numpy(y_train).long()
    G, D = Generator(cfg.latent_dim, cfg.num_hiddens), Discriminator(cfg.num_hiddens)
    opt_G = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    bce = F.binary_cross_entropy_with_logits
    for _ in progress(range(cfg.num_steps), desc="cgan"):
        idx = torch.randint(len(X_all), (cfg.batch_size,))
        X, y = X_all[idx], y_all[idx]
        z = torch.randn(cfg.batch_size, cfg.latent_dim)
        y_fake = torch.randint(NUM_CLASSES, (cfg.batch_size,))  # the classes we ask for
        X_fake = G(z, y_fake)
        logit_real, logit_fake = D(X, y), D(X_fake.detach(), y_fake)
        loss_D = (bce(logit_real, torch.ones_like(logit_real))
                  + bce(logit_fake, torch.zeros_like(logit_fake)))
        opt_D.zero_grad(), loss_D.backward(), opt_D.step()
        logit_fake = D(X_fake, y_fake)  # same fakes, updated D
        loss_G = bce(logit_fake, torch.ones_like(logit_fake))
        opt_G.zero_grad(), loss_G.backward(), opt_G.step()
    return G
# --8<-- [end:train]


# --8<-- [start:check]
def recognition_rate(clf, G, cfg: Config):
    """Ask G for num_per_class digits of each class; how often does clf agree?"""
    y_wanted = torch.arange(NUM_CLASSES).repeat_interleave(cfg.num_per_class)
    with torch.no_grad():
        X_fake = G(torch.randn(len(y_wanted), cfg.latent_dim), y_wanted).numpy()
    y_hat = clf.predict(X_fake)
    per_class = (y_hat == y_wanted.numpy()).reshape(NUM_CLASSES, -1).mean(axis=1)
    return per_class, X_fake.reshape(NUM_CLASSES, cfg.num_per_class, 64)
# --8<-- [end:check]


def mean_pairwise_distance(X: np.ndarray) -> float:
    """Average distance between two samples of a set: low means little variety."""
    diff = X[:, None, :] - X[None, :, :]
    n = len(X)
    return float(np.sqrt((diff ** 2).sum(-1)).sum() / (n * (n - 1)))


def plot_grid(X_fake: np.ndarray, X_real: np.ndarray, y_real: np.ndarray, out: Path):
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.6))
    for ax, title, rows in ((axes[0], "real (test split)",
                             [X_real[y_real == k][:10] for k in range(NUM_CLASSES)]),
                            (axes[1], "generated: row k asks G for class k",
                             [X_fake[k, :10] for k in range(NUM_CLASSES)])):
        img = -np.ones((90, 90))  # 8x8 digits with a 1-pixel blank gap
        for r, row in enumerate(rows):
            for c, x in enumerate(row):
                img[9 * r:9 * r + 8, 9 * c:9 * c + 8] = x.reshape(8, 8)
        ax.imshow(img, cmap="gray_r", vmin=-1, vmax=1)
        ax.set_yticks(np.arange(NUM_CLASSES) * 9 + 3.5, [str(k) for k in range(10)])
        ax.set_xticks([]), ax.grid(False), ax.set_title(title)
    axes[0].set_ylabel("class y")
    save_figure(fig, out / "digits_grid.png")


def plot_rates(per_class: np.ndarray, real_acc: np.ndarray, out: Path):
    fig, ax = plt.subplots(figsize=(6, 3))
    k = np.arange(NUM_CLASSES)
    ax.bar(k - 0.2, real_acc, 0.4, label="real test digits")
    ax.bar(k + 0.2, per_class, 0.4, label="generated, class asked for")
    ax.set_xticks(k), ax.set_ylim(0.7, 1.0), ax.set_xlabel("class y")
    ax.set_ylabel("classifier agrees (axis from 0.7)")
    ax.legend(fontsize=8, loc="lower left")
    save_figure(fig, out / "recognition.svg")


def main(cfg: Config = Config(), out: Path = Path("out/gan-conditional")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    X_train, X_test, y_train, y_test = load_data(cfg.seed)
    clf = LogisticRegression(max_iter=2000).fit(X_train, y_train)  # the judge, not D
    real_acc = np.array([(clf.predict(X_test[y_test == k]) == k).mean()
                         for k in range(NUM_CLASSES)])
    G = train(cfg, X_train, y_train)
    per_class, X_fake = recognition_rate(clf, G, cfg)
    plot_grid(X_fake, X_test, y_test, out)
    plot_rates(per_class, real_acc, out)
    variety = np.mean([mean_pairwise_distance(X_fake[k, :50]) /
                       mean_pairwise_distance(X_train[y_train == k][:50])
                       for k in range(NUM_CLASSES)])
    return {"recognition_rate": float(per_class.mean()),
            "recognition_min_class": float(per_class.min()),
            "classifier_test_acc": float((clf.predict(X_test) == y_test).mean()),
            "variety_ratio": float(variety), "num_generated": int(X_fake.size // 64)}
