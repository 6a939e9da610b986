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
    mismatch: bool = True  # D also sees real images with a wrong label, as fakes
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
    """D(x, y): is x a real image *of class y*? Trained with mismatched real pairs
    too, a real 3 labelled 5 scores low."""

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
        # the classes we ask for, drawn with the data's label frequencies
        y_fake = y_all[torch.randint(len(y_all), (cfg.batch_size,))]
        X_fake = G(z, y_fake)
        logit_real, logit_fake = D(X, y), D(X_fake.detach(), y_fake)
        loss_fake = bce(logit_fake, torch.zeros_like(logit_fake))
        if cfg.mismatch:  # a real image with any of the nine wrong labels is a fake too
            y_wrong = (y + torch.randint(1, NUM_CLASSES, y.shape)) % NUM_CLASSES
            logit_wrong = D(X, y_wrong)
            loss_wrong = bce(logit_wrong, torch.zeros_like(logit_wrong))
            loss_fake = (loss_fake + loss_wrong) / 2  # weights 1/2 as in GAN-CLS
        loss_D = bce(logit_real, torch.ones_like(logit_real)) + loss_fake
        opt_D.zero_grad(), loss_D.backward(), opt_D.step()
        logit_fake = D(X_fake, y_fake)  # same fakes, updated D
        loss_G = bce(logit_fake, torch.ones_like(logit_fake))
        opt_G.zero_grad(), loss_G.backward(), opt_G.step()
    return G, D
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


def d_label_scores(D, X: np.ndarray, y: np.ndarray):
    """Mean D(x, y) of real digits with their true label and with the nine wrong ones,
    and how often the true label scores highest of all ten."""
    X = torch.from_numpy(X).repeat_interleave(NUM_CLASSES, dim=0)
    labels = torch.arange(NUM_CLASSES).repeat(len(y))
    with torch.no_grad():
        scores = torch.sigmoid(D(X, labels)).reshape(len(y), NUM_CLASSES).numpy()
    true = np.eye(NUM_CLASSES, dtype=bool)[y]
    return (float(scores[true].mean()), float(scores[~true].mean()),
            float((scores.argmax(axis=1) == y).mean()))


def mean_pairwise_distance(X: np.ndarray) -> float:
    """Average distance between two samples of a set: low means little variety."""
    diff = X[:, None, :] - X[None, :, :]
    n = len(X)
    return float(np.sqrt((diff ** 2).sum(-1)).sum() / (n * (n - 1)))


def nearest_distance(X: np.ndarray, X_ref: np.ndarray) -> np.ndarray:
    """Distance from each row of X to its nearest row of X_ref (0 = an exact copy)."""
    dist = torch.cdist(torch.from_numpy(X), torch.from_numpy(X_ref))  # (N, N_ref)
    return dist.min(dim=1)[0].numpy()


ZH = {
    "real (test split)": "真实数字（测试集）",
    "generated: row k asks G for class k": "生成的数字：第 k 行向 G 要类别 k",
    "class y": "类别 y",
    "real test digits": "真实测试数字",
    "generated, class asked for": "生成的数字（所要求的类别）",
    "classifier agrees (dots: mean, bars: ±1 s.e.)":
        "分类器认同的比例（点：均值，竖线：±1 标准误）",
}


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
    save_figure(fig, out / "digits_grid.png", zh=ZH)


def plot_rates(per_class, real_acc, n_real, n_fake: int, out: Path):
    """Dots with +-1 standard error (binomial): a dot's height, not a bar's length."""
    fig, ax = plt.subplots(figsize=(6, 3))
    k = np.arange(NUM_CLASSES)
    rows = ((-0.15, real_acc, n_real, "o", "real test digits"),
            (0.15, per_class, n_fake, "s", "generated, class asked for"))
    for shift, rate, n, marker, label in rows:
        se = np.sqrt(rate * (1 - rate) / n)
        ax.errorbar(k + shift, rate, yerr=se, fmt=marker, ms=5, capsize=2, label=label)
    ax.set_xticks(k), ax.set_xlabel("class y")
    ax.set_ylabel("classifier agrees (dots: mean, bars: ±1 s.e.)", fontsize=8)
    ax.legend(fontsize=8, loc="lower left")
    save_figure(fig, out / "recognition.svg", zh=ZH)


def main(cfg: Config = Config(), out: Path = Path("out/gan-conditional")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    X_train, X_test, y_train, y_test = load_data(cfg.seed)
    clf = LogisticRegression(max_iter=2000).fit(X_train, y_train)  # the judge, not D
    real_acc = np.array([(clf.predict(X_test[y_test == k]) == k).mean()
                         for k in range(NUM_CLASSES)])
    G, D = train(cfg, X_train, y_train)
    per_class, X_fake = recognition_rate(clf, G, cfg)
    plot_grid(X_fake, X_test, y_test, out)
    plot_rates(per_class, real_acc, np.bincount(y_test), cfg.num_per_class, out)
    variety = np.mean([mean_pairwise_distance(X_fake[k, :50]) /
                       mean_pairwise_distance(X_train[y_train == k][:50])
                       for k in range(NUM_CLASSES)])
    d_true, d_wrong, d_label_acc = d_label_scores(D, X_test, y_test)
    # copies of training digits would sit at distance ~0 from the training set
    copy_gen = nearest_distance(X_fake.reshape(-1, 64), X_train).mean()
    copy_test = nearest_distance(X_test, X_train).mean()
    return {"recognition_rate": float(per_class.mean()),
            "recognition_min_class": float(per_class.min()),
            "classifier_test_acc": float((clf.predict(X_test) == y_test).mean()),
            "variety_ratio": float(variety), "num_generated": int(X_fake.size // 64),
            "num_per_class": cfg.num_per_class, "num_train": len(X_train),
            "d_real_true_label": d_true, "d_real_wrong_label": d_wrong,
            "d_label_acc": d_label_acc,
            "nn_dist_generated": float(copy_gen), "nn_dist_test": float(copy_test),
            "nn_dist_ratio": float(copy_gen / copy_test)}


CLAIMS = {
    "the_judge_classifies_real_digits_well": lambda m: m["classifier_test_acc"] > 0.9,
    "generated_digits_match_the_class_asked_for":
        lambda m: m["recognition_rate"] > 0.9,
    "every_class_is_mostly_recognised": lambda m: m["recognition_min_class"] > 0.8,
    "generated_digits_vary_less_than_real_ones": lambda m: m["variety_ratio"] < 0.95,
    "generated_digits_are_not_copies_of_training_digits":
        lambda m: m["nn_dist_generated"] > 0.8 * m["nn_dist_test"],
    "d_scores_real_digits_with_a_wrong_label_low":
        lambda m: m["d_real_wrong_label"] < 0.5 * m["d_real_true_label"],
    "d_ranks_the_true_label_first": lambda m: m["d_label_acc"] > 0.8,
}
