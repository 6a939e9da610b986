"""Sequence outputs: many-to-one, CTC for shorter outputs, and an encoder-decoder.

Page: rnn/sequence-outputs.md
Run:  python -m snippets run rnn/sequence_outputs
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from snippets.common import progress, save_figure, seed_everything, use_style

BLANK = 0  # CTC's extra "no symbol here" class; symbols are 1..num_symbols


@dataclass
class Config:
    num_symbols: int = 4  # alphabet size (labels 1..4)
    num_frames: int = 24  # input length T
    max_len: int = 4  # label sequences have 2..max_len symbols
    noise: float = 0.5  # std of the Gaussian noise added to every input frame
    num_hiddens: int = 32  # hidden units of every GRU
    batch_size: int = 64  # sequences per update
    num_updates: int = 600  # updates for each of the three models
    lr: float = 0.01  # Adam learning rate
    num_test: int = 500  # test sequences
    seed: int = 0

    @classmethod
    def tiny(cls) -> "Config":
        return cls(num_hiddens=8, num_updates=10, num_test=50)


# --8<-- [start:data]
def make_data(n: int, cfg: Config, gen: torch.Generator):
    """Frames of noisy one-hot symbols, each held 2-4 frames, with silences between.

    Returns X: (n, T, 1 + num_symbols), labels: (n, max_len) 0-padded, lengths: (n,).
    """
    T, K = cfg.num_frames, cfg.num_symbols
    frames = torch.zeros(n, T, dtype=torch.long)  # 0 = silence
    labels = torch.zeros(n, cfg.max_len, dtype=torch.long)
    lengths = torch.randint(2, cfg.max_len + 1, (n,), generator=gen)
    for b in range(n):
        t = 0
        for j in range(int(lengths[b])):
            k = int(torch.randint(1, K + 1, (1,), generator=gen))
            t += int(torch.randint(1, 3, (1,), generator=gen))  # 1-2 silent frames
            hold = int(torch.randint(2, 5, (1,), generator=gen))
            frames[b, t:t + hold], labels[b, j] = k, k
            t += hold
    noise = cfg.noise * torch.randn(n, T, K + 1, generator=gen)
    X = F.one_hot(frames, K + 1).float() + noise
    return X, labels, lengths
# --8<-- [end:data]


# --8<-- [start:ctc_forward]
def ctc_nll(log_probs: torch.Tensor, target: list[int], blank: int = BLANK):
    """-log p(target | x) by the CTC forward recursion. log_probs: (T, C).

    The target gets a blank before, between and after its symbols (length 2L + 1);
    alpha[s] sums, in log space, every path prefix that ends in state s."""
    ext = [blank]
    for k in target:
        ext += [k, blank]
    T, S = len(log_probs), len(ext)
    alpha = torch.full((S,), -torch.inf)
    alpha[0] = log_probs[0, blank]  # a path starts with a blank ...
    if target:
        alpha[1] = log_probs[0, ext[1]]  # ... or with the first symbol
    for t in range(1, T):
        prev = alpha.clone()
        for s in range(S):
            terms = [prev[s]]  # stay on the same state (a repeat)
            if s > 0:
                terms.append(prev[s - 1])  # move on by one state
            if s > 1 and ext[s] != blank and ext[s] != ext[s - 2]:
                terms.append(prev[s - 2])  # skip the blank between different symbols
            alpha[s] = torch.logsumexp(torch.stack(terms), 0) + log_probs[t, ext[s]]
    return -torch.logsumexp(alpha[-2:], 0)  # end on the last symbol or the last blank
# --8<-- [end:ctc_forward]


# --8<-- [start:greedy]
def greedy_decode(log_probs: torch.Tensor, blank: int = BLANK) -> list[int]:
    """Best class per frame, then merge repeats, then drop blanks. log_probs: (T, C)."""
    decoded, prev = [], blank
    for k in log_probs.argmax(dim=-1).tolist():
        if k != prev and k != blank:
            decoded.append(k)
        prev = k
    return decoded
# --8<-- [end:greedy]


# --8<-- [start:models]
class FrameTagger(nn.Module):
    """Many-to-many, one output per frame: a bidirectional GRU, C = 1 + num_symbols."""

    def __init__(self, C: int, num_hiddens: int):
        super().__init__()
        self.rnn = nn.GRU(C, num_hiddens, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * num_hiddens, C)

    def forward(self, X):  # (B, T, C) -> (B, T, C) log-probabilities
        return self.head(self.rnn(X)[0]).log_softmax(-1)


class Counter(nn.Module):
    """Many-to-one: how many symbols does the sequence hold? (classes 0..max_len)."""

    def __init__(self, C: int, num_hiddens: int, num_classes: int):
        super().__init__()
        self.rnn = nn.GRU(C, num_hiddens, batch_first=True)
        self.head = nn.Linear(num_hiddens, num_classes)

    def forward(self, X):  # (B, T, C) -> (B, num_classes) logits
        return self.head(self.rnn(X)[1][-1])


class EncoderDecoder(nn.Module):
    """The encoder squeezes the input into one state; the decoder emits the symbols."""

    def __init__(self, C: int, num_hiddens: int):
        super().__init__()
        self.encoder = nn.GRU(C, num_hiddens, batch_first=True)
        self.embed = nn.Embedding(C + 1, num_hiddens)  # symbols, <eos>=0 and <bos>=C
        self.decoder = nn.GRU(num_hiddens, num_hiddens, batch_first=True)
        self.head = nn.Linear(num_hiddens, C)

    def forward(self, X, prev):  # prev: (B, L) previous tokens (teacher forcing)
        _, context = self.encoder(X)  # (1, B, h): the whole input in one vector
        out, _ = self.decoder(self.embed(prev), context)
        return self.head(out)  # (B, L, C) logits for the next token

    @torch.no_grad()
    def generate(self, X, max_len: int):
        _, state = self.encoder(X)
        tok = torch.full((len(X), 1), self.embed.num_embeddings - 1)  # <bos>
        out = []
        for _ in range(max_len + 1):
            y, state = self.decoder(self.embed(tok), state)
            tok = self.head(y).argmax(-1)  # feed back the model's own guess
            out.append(tok)
        return torch.cat(out, dim=1)  # (B, max_len + 1)
# --8<-- [end:models]


# --8<-- [start:decoder_io]
def decoder_io(labels: torch.Tensor, C: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher forcing: the decoder reads <bos>, y_1, y_2, ... and must predict
    y_1, y_2, ..., <eos>. labels: (B, L), 0-padded, so 0 doubles as <eos>."""
    B = len(labels)
    target = torch.cat([labels, torch.zeros(B, 1, dtype=torch.long)], 1)  # (B, L + 1)
    prev = torch.cat([torch.full((B, 1), C), target[:, :-1]], 1)  # shifted right
    return prev, target


def until_eos(tokens: list[int], eos: int = 0) -> list[int]:
    """What the decoder said before its first <eos> (all of it if it never stops)."""
    return tokens[:tokens.index(eos)] if eos in tokens else tokens
# --8<-- [end:decoder_io]


def step_losses(models: dict, X, labels, lengths, cfg: Config) -> dict:
    B, T, C = X.shape
    # --8<-- [start:ctc_loss]
    log_probs = models["ctc"](X).transpose(0, 1)  # nn.CTCLoss wants (T, B, C)
    ctc = nn.CTCLoss(blank=BLANK)(log_probs, labels, torch.full((B,), T), lengths)
    # --8<-- [end:ctc_loss]
    count = F.cross_entropy(models["count"](X), lengths)
    prev, target = decoder_io(labels, C)
    seq = F.cross_entropy(models["encdec"](X, prev).transpose(1, 2), target)
    return {"ctc": ctc, "count": count, "encdec": seq}


def evaluate(models: dict, X, labels, lengths, clean, cfg: Config) -> dict:
    with torch.no_grad():
        log_probs = models["ctc"](X)
        truth = [labels[b, :lengths[b]].tolist() for b in range(len(X))]
        decoded = [greedy_decode(lp) for lp in log_probs]
        count = models["count"](X).argmax(1) == lengths
        gen = models["encdec"].generate(X, cfg.max_len)
        encdec = [until_eos(g.tolist()) == t for g, t in zip(gen, truth)]
    emitting = (log_probs.argmax(-1) != BLANK).sum().item()  # frames not given to blank
    symbol_frames = (clean.argmax(-1) != 0).sum().item()  # frames that hold a symbol
    return {"ctc_seq_acc": sum(d == t for d, t in zip(decoded, truth)) / len(truth),
            "count_acc": count.float().mean().item(),
            "encdec_seq_acc": sum(encdec) / len(encdec),
            "blank_frame_frac": 1 - emitting / log_probs.shape[:2].numel(),
            "silence_frame_frac": 1 - symbol_frames / clean.shape[:2].numel(),
            "emitting_frames_per_symbol": emitting / max(1, sum(map(len, decoded))),
            "held_frames_per_symbol": symbol_frames / lengths.sum().item()}


ZH = {
    "input channel\n(0 = silence)": "输入通道\n（0 = 静音）",
    "target {}   ->   greedy CTC decode {}": "目标 {}   →   CTC 贪心解码 {}",
    "blank": "空白",
    "frame t": "帧 t",
    "output class": "输出类别",
    "input value": "输入值",
    "$p_t(k \\mid x)$": "$p_t(k \\mid x)$",
    "true symbol (before noise)": "真实符号（加噪声前）",
}


def plot_ctc(model: nn.Module, X, labels, lengths, clean, out: Path) -> None:
    with torch.no_grad():
        probs = model(X[:1])[0].exp()  # (T, C)
    target = labels[0, :lengths[0]].tolist()
    fig, axes = plt.subplots(2, 2, figsize=(7.4, 4.6), width_ratios=[1, 0.025],
                             gridspec_kw={"wspace": 0.05})
    (ax0, cax0), (ax1, cax1) = axes
    ax1.sharex(ax0)
    im0 = ax0.imshow(X[0].T.numpy(), aspect="auto", cmap="Greys", origin="lower")
    fig.colorbar(im0, cax=cax0, label="input value")
    symbol = clean[0].argmax(-1)  # the true symbol of each frame, before the noise
    ax0.plot(range(len(symbol)), symbol, "o", mfc="none", mec="C1", ms=7,
             label="true symbol (before noise)")
    ax0.legend(fontsize=7, loc="upper right", framealpha=0.9)
    ax0.set_ylabel("input channel\n(0 = silence)")
    decoded = greedy_decode(probs.log())
    ax0.set_title(f"target {target}   ->   greedy CTC decode {decoded}")
    im = ax1.imshow(probs.T.numpy(), aspect="auto", cmap="viridis", origin="lower",
                    vmin=0, vmax=1)
    C = probs.shape[1]
    ax1.set_yticks(range(C), ["blank"] + [str(k) for k in range(1, C)])
    ax1.set_xlabel("frame t")
    ax1.set_ylabel("output class")
    for ax in (ax0, ax1):
        ax.grid(False)
    fig.colorbar(im, cax=cax1, label=r"$p_t(k \mid x)$")
    save_figure(fig, out / "ctc.svg", zh=ZH)


def main(cfg: Config = Config(), out: Path = Path("out/rnn-sequence_outputs")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    gen, C = torch.Generator().manual_seed(cfg.seed), cfg.num_symbols + 1
    models = {"ctc": FrameTagger(C, cfg.num_hiddens),
              "count": Counter(C, cfg.num_hiddens, cfg.max_len + 1),
              "encdec": EncoderDecoder(C, cfg.num_hiddens)}
    params = [p for m in models.values() for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=cfg.lr)  # three separate models, one optimizer
    for _ in progress(range(cfg.num_updates), desc="train"):
        X, labels, lengths = make_data(cfg.batch_size, cfg, gen)
        losses = step_losses(models, X, labels, lengths, cfg)
        opt.zero_grad()
        sum(losses.values()).backward()
        for m in models.values():
            nn.utils.clip_grad_norm_(m.parameters(), 5.0)
        opt.step()
    test = make_data(cfg.num_test, cfg, torch.Generator().manual_seed(123))
    gen = torch.Generator().manual_seed(123)  # same draws as `test`, without noise
    clean = make_data(cfg.num_test, replace(cfg, noise=0.0), gen)[0]
    plot_ctc(models["ctc"], *test, clean, out)
    metrics = evaluate(models, *test, clean, cfg)
    metrics.update({f"final_loss_{k}": v.item() for k, v in losses.items()})
    metrics.update(num_frames=cfg.num_frames, num_updates=cfg.num_updates,
                   num_test=cfg.num_test, num_hiddens=cfg.num_hiddens)
    return metrics


CLAIMS = {
    "ctc_reads_most_sequences": lambda m: m["ctc_seq_acc"] > 0.5,
    "counter_counts_most_sequences": lambda m: m["count_acc"] > 0.7,
    "encdec_trails_ctc": lambda m: m["encdec_seq_acc"] < m["ctc_seq_acc"] - 0.1,
    "ctc_blanks_more_than_the_silence": lambda m: m["blank_frame_frac"]
    > m["silence_frame_frac"] + 0.05,
    "ctc_emits_on_fewer_frames_than_a_symbol_lasts": lambda m: m[
        "emitting_frames_per_symbol"] < m["held_frames_per_symbol"] - 0.5,
}
