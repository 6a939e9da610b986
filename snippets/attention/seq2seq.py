"""Encoder-decoder without attention: human-readable dates to ISO, and where it breaks.

Page: attention/seq2seq.md
Run:  python -m snippets run attention/seq2seq

Also home of what the other demos of the chapter share: the date generator (dates
from Python's datetime, written in formats defined here, from "3/3/98" to "Tuesday,
March the third, nineteen ninety-eight"), the character vocabularies, the GRU
encoder, the training loop, greedy decoding, the evaluation and the figure that
compares models format by format; and BLEU, the score the page quotes papers in.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import random
import re
import string
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from snippets.common import progress, save_figure, seed_everything, use_style


@dataclass
class Config:
    num_train: int = 40_000  # training pairs (dates from the training set of days)
    num_test: int = 4_000  # test pairs, all on held-out days
    embed_size: int = 32  # size of each character embedding
    num_hiddens: int = 64  # GRU state size (the encoder has two directions)
    batch_size: int = 128  # pairs per optimiser step
    num_steps: int = 800  # optimiser steps
    lr: float = 3e-3  # peak of the one-cycle schedule
    format_days: int = 400  # held-out days written in every format for the figure
    seed: int = 0  # seeds data, initialisation and batching

    @classmethod
    def tiny(cls) -> "Config":
        return cls(num_train=512, num_test=256, num_steps=12, batch_size=64,
                   format_days=32)


# --8<-- [start:formats]
ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen").split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
ORD = ("_ first second third fourth fifth sixth seventh eighth ninth tenth eleventh "
       "twelfth").split()


def number_words(n: int) -> str:  # 0 <= n < 100: 98 -> "ninety-eight"
    return ONES[n] if n < 20 else TENS[n // 10] + (f"-{ONES[n % 10]}" if n % 10 else "")


def ordinal_words(n: int) -> str:  # 1 <= n <= 31: 23 -> "twenty-third"
    if n < 13:
        return ORD[n]
    if n % 10 == 0:
        return TENS[n // 10][:-1] + "ieth"
    return number_words(n) + "th" if n < 20 else f"{TENS[n // 10]}-{ORD[n % 10]}"


def year_words(y: int) -> str:  # 1998 -> "nineteen ninety-eight"
    if y < 2000:
        return f"nineteen {number_words(y - 1900)}"
    if y < 2010:
        return "two thousand" + (f" and {ONES[y - 2000]}" if y > 2000 else "")
    return f"twenty {number_words(y - 2000)}"


def suffix(n: int) -> str:
    return "th" if 10 < n < 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


FIELDS = {  # field -> how a date is written in it
    "d": lambda t: str(t.day), "dd": lambda t: f"{t.day:02d}",
    "m": lambda t: str(t.month), "mm": lambda t: f"{t.month:02d}",
    "yy": lambda t: f"{t.year % 100:02d}", "yyyy": lambda t: str(t.year),
    "month": lambda t: calendar.month_name[t.month],
    "mon": lambda t: calendar.month_abbr[t.month],
    "weekday": lambda t: calendar.day_name[t.weekday()],
    "wd": lambda t: calendar.day_abbr[t.weekday()],
    "dth": lambda t: f"{t.day}{suffix(t.day)}",
    "dwords": lambda t: ordinal_words(t.day), "ywords": lambda t: year_words(t.year),
}
FORMATS = [  # no input is ambiguous: d/m formats put the day first, yyyymmdd is fixed
    "{d}/{m}/{yy}", "{yyyy}{mm}{dd}", "{dd}.{mm}.{yyyy}", "{d} {mon} {yyyy}",
    "{month} {d}, {yyyy}", "{wd}, {d} {mon} {yy}", "{weekday} {d} {month} {yyyy}",
    "{weekday}, the {dth} of {month}, {yyyy}", "the {dwords} of {month}, {ywords}",
    "{weekday}, {month} the {dwords}, {ywords}",
]
FIRST, LAST = dt.date(1950, 1, 1), dt.date(2049, 12, 31)  # two-digit years stay unique


def render(day: dt.date, fmt: str) -> str:
    """One human-readable way of writing ``day``: render(1998-03-03, "{d}/{m}/{yy}")."""
    return re.sub(r"\{(\w+)\}", lambda m: FIELDS[m.group(1)](day), fmt)
# --8<-- [end:formats]


def field_spans(day: dt.date, fmt: str) -> dict[str, tuple[int, int]]:
    """Where each field lies in render(day, fmt): {"yy": (6, 8)} for "13/11/48"."""
    spans, text = {}, ""
    for literal, field in re.findall(r"([^{]*)(?:\{(\w+)\})?", fmt):
        text += literal
        if field:
            spans[field] = (len(text), len(text) + len(FIELDS[field](day)))
            text += FIELDS[field](day)
    return spans


def all_days() -> list[dt.date]:
    return [FIRST + dt.timedelta(n) for n in range((LAST - FIRST).days + 1)]


def split_days(seed: int, test_frac: float = 0.1) -> tuple[list, list]:
    """Train and held-out days: no test date is ever seen in training, in any format."""
    days = all_days()
    random.Random(seed).shuffle(days)
    cut = int(len(days) * test_frac)
    return days[cut:], days[:cut]


def make_pairs(days: list, n: int, rng: random.Random) -> list[tuple[str, str]]:
    """``n`` (human, ISO) pairs: a random day of ``days`` in a random format."""
    picks = [(rng.choice(days), rng.choice(FORMATS)) for _ in range(n)]
    return [(render(d, f), d.isoformat()) for d, f in picks]


# --8<-- [start:vocab]
PAD, BOS, EOS = 0, 1, 2
SRC_CHARS = ["<pad>"] + sorted(set(string.ascii_letters + string.digits + " ,./-'"))
TGT_CHARS = ["<pad>", "<bos>", "<eos>"] + list("0123456789-")
SRC_ID = {c: i for i, c in enumerate(SRC_CHARS)}
TGT_ID = {c: i for i, c in enumerate(TGT_CHARS)}
TGT_LEN = len("1998-03-03") + 1  # ten characters, then <eos>


def encode_pairs(pairs):
    """Pad sources to one length; decoder input <bos> + ISO, target ISO + <eos>."""
    X_len = torch.tensor([len(s) for s, _ in pairs])
    X = torch.full((len(pairs), int(X_len.max())), PAD)
    for i, (src, _) in enumerate(pairs):
        X[i, :len(src)] = torch.tensor([SRC_ID[c] for c in src])
    Y = torch.tensor([[TGT_ID[c] for c in iso] for _, iso in pairs])
    bos, eos = torch.full((len(pairs), 1), BOS), torch.full((len(pairs), 1), EOS)
    return X, X_len, torch.cat([bos, Y], 1), torch.cat([Y, eos], 1)
# --8<-- [end:vocab]


def to_string(tokens) -> str:
    """Target token ids -> text, stopping at the first <eos>."""
    chars = []
    for t in tokens:
        if int(t) == EOS:
            break
        chars.append(TGT_CHARS[int(t)] if int(t) > EOS else "?")
    return "".join(chars)


# --8<-- [start:encoder]
def flip_padded(H, X_len):
    """Reverse each sequence within its own length; padding stays at the end."""
    T = H.shape[1]
    idx = X_len[:, None] - 1 - torch.arange(T)[None]  # (B, T)
    idx = torch.where(idx >= 0, idx, torch.arange(T)[None])
    return H.gather(1, idx[..., None].expand(-1, -1, H.shape[-1]))


class Encoder(nn.Module):
    """Characters -> embeddings -> bidirectional GRU: a 2h-vector per position."""

    def __init__(self, embed_size: int, num_hiddens: int):
        super().__init__()
        self.embedding = nn.Embedding(len(SRC_CHARS), embed_size, padding_idx=PAD)
        self.fwd = nn.GRU(embed_size, num_hiddens, batch_first=True)  # left to right
        self.bwd = nn.GRU(embed_size, num_hiddens, batch_first=True)  # right to left

    def forward(self, X, X_len):
        E = self.embedding(X)  # (B, T, e)
        H_f, _ = self.fwd(E)  # padding comes last, so it never reaches a real position
        H_b = flip_padded(self.bwd(flip_padded(E, X_len))[0], X_len)
        H = torch.cat([H_f, H_b], dim=-1)  # (B, T, 2h): both sides of each character
        last = H_f[torch.arange(len(X)), X_len - 1]  # forward state after the last char
        return H, torch.cat([last, H_b[:, 0]], dim=-1)  # (B, T, 2h), (B, 2h)
# --8<-- [end:encoder]


# --8<-- [start:seq2seq]
class Seq2Seq(nn.Module):
    """Cho et al. (2014): the input becomes ONE vector c; the decoder sees only c."""

    def __init__(self, embed_size: int, num_hiddens: int):
        super().__init__()
        self.encoder = Encoder(embed_size, num_hiddens)
        self.init_state = nn.Linear(2 * num_hiddens, num_hiddens)
        self.embedding = nn.Embedding(len(TGT_CHARS), embed_size)
        self.rnn = nn.GRU(embed_size + 2 * num_hiddens, num_hiddens, batch_first=True)
        self.dense = nn.Linear(num_hiddens + 2 * num_hiddens, len(TGT_CHARS))

    def encode(self, X, X_len):
        _, c = self.encoder(X, X_len)  # c: (B, 2h), everything the decoder will know
        return {"c": c}, torch.tanh(self.init_state(c))

    def decode_step(self, y_prev, state, memory):
        """One step: (B,) previous tokens -> (B, V) logits, new state, no weights."""
        x = torch.cat([self.embedding(y_prev), memory["c"]], dim=-1)  # (B, e + 2h)
        _, s = self.rnn(x[:, None], state[None])
        s = s[0]  # (B, h)
        return self.dense(torch.cat([s, memory["c"]], dim=-1)), s, None

    def forward(self, X, X_len, Y_in):
        """Teacher forcing: every decoder input is known in advance, so all steps go
        into ONE nn.GRU call; inside it the steps still run one after another."""
        memory, state = self.encode(X, X_len)
        c = memory["c"][:, None].expand(-1, Y_in.shape[1], -1)  # (B, T_out, 2h)
        S, _ = self.rnn(torch.cat([self.embedding(Y_in), c], dim=-1), state[None])
        return self.dense(torch.cat([S, c], dim=-1))  # (B, T_out, V)
# --8<-- [end:seq2seq]


def batches(X_len, batch_size: int, gen: torch.Generator):
    """Index batches of similar input length (less padding), in random order."""
    order = torch.randperm(len(X_len), generator=gen)
    chunks = order.split(batch_size * 50)
    out = [c[X_len[c].argsort()].split(batch_size) for c in chunks]
    out = [b for chunk in out for b in chunk]
    return [out[i] for i in torch.randperm(len(out), generator=gen)]


# --8<-- [start:train]
def train(model, data, cfg) -> list[float]:
    """Teacher forcing, cross-entropy on every output character, Adam, clipping."""
    X, X_len, Y_in, Y_out = data
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(optimizer, cfg.lr,
                                                total_steps=cfg.num_steps)
    gen, queue, losses = torch.Generator().manual_seed(cfg.seed), [], []
    for _ in progress(range(cfg.num_steps), desc="train"):
        queue = queue or batches(X_len, cfg.batch_size, gen)
        idx = queue.pop()
        T = int(X_len[idx].max())
        y_hat = model(X[idx, :T], X_len[idx], Y_in[idx])  # (B, T_out, V)
        loss = F.cross_entropy(y_hat.flatten(0, 1), Y_out[idx].flatten())
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        sched.step()
        losses.append(loss.item())
    return losses
# --8<-- [end:train]


# --8<-- [start:greedy]
@torch.no_grad()
def greedy_decode(model, X, X_len, max_len: int = TGT_LEN):
    """At each step keep only the most likely character and feed it back in."""
    memory, state = model.encode(X, X_len)
    y, tokens, weights = torch.full((len(X),), BOS), [], []
    for _ in range(max_len):
        logits, state, alpha = model.decode_step(y, state, memory)
        y = logits.argmax(-1)
        tokens.append(y)
        weights.append(alpha)
    attn = torch.stack(weights, 1) if weights[0] is not None else None  # (B, T_out, T)
    return torch.stack(tokens, 1), attn
# --8<-- [end:greedy]


# --8<-- [start:bleu]
def ngrams(tokens, n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def clipped_precision(candidate, references, n: int) -> float:
    """p_n: candidate n-grams, each counted at most as often as in one reference."""
    counts, most = ngrams(candidate, n), Counter()
    for ref in references:
        most |= ngrams(ref, n)  # per n-gram, its largest count in any reference
    clipped = sum(min(c, most[g]) for g, c in counts.items())
    return clipped / max(sum(counts.values()), 1)


def bleu(candidate, references, max_n: int = 4) -> float:
    """Papineni et al. (2002), one sentence: BP * exp(mean_n log p_n)."""
    precisions = [clipped_precision(candidate, references, n)
                  for n in range(1, max_n + 1)]
    if not candidate or min(precisions) == 0:
        return 0.0
    r = min((abs(len(ref) - len(candidate)), len(ref)) for ref in references)[1]
    bp = 1.0 if len(candidate) > r else math.exp(1 - r / len(candidate))
    return bp * math.exp(sum(map(math.log, precisions)) / max_n)
# --8<-- [end:bleu]


BUCKETS = [(0, 10), (10, 20), (20, 30), (30, 45), (45, 70)]  # input length, characters
FORMAT_NAMES = ["_".join(re.findall(r"\{(\w+)\}", f)) for f in FORMATS]  # d_m_yy...


def exact_matches(model, pairs) -> torch.Tensor:
    """One bool per pair: greedy output equals the ISO date (all ten characters)."""
    model.eval()
    X, X_len, _, _ = encode_pairs(pairs)
    tokens, _ = greedy_decode(model, X, X_len)
    return torch.tensor([to_string(t) == iso for t, (_, iso) in zip(tokens, pairs)])


def evaluate(model, pairs) -> dict:
    """Exact match overall and per input-length bucket (with each bucket's size)."""
    right = exact_matches(model, pairs)
    X_len = torch.tensor([len(src) for src, _ in pairs])
    out = {"exact_match": right.float().mean().item()}
    for lo, hi in BUCKETS:
        keep = (X_len >= lo) & (X_len < hi)
        acc = right[keep].float().mean().item() if keep.any() else 0.0
        out[f"acc_len_{lo}_{hi}"] = acc
        out[f"n_len_{lo}_{hi}"] = int(keep.sum())
    return out


def make_data(cfg):
    """Training pairs from training days, test pairs from held-out days."""
    train_days, test_days = split_days(cfg.seed)
    rng = random.Random(cfg.seed)
    return (make_pairs(train_days, cfg.num_train, rng),
            make_pairs(test_days, cfg.num_test, rng))


def by_format(model, days) -> dict:
    """Exact match per format, every one of ``days`` written in every format; and the
    length effect with the format held fixed: accuracy on the shorter half of a
    format's inputs minus accuracy on its longer half, averaged over the formats
    whose length varies."""
    out, gaps = {}, []
    for fmt, name in zip(FORMATS, FORMAT_NAMES):
        pairs = [(render(d, fmt), d.isoformat()) for d in days]
        right = exact_matches(model, pairs).float()
        lengths = torch.tensor([len(src) for src, _ in pairs])
        out[f"acc_{name}"] = right.mean().item()
        longer = lengths > lengths.float().median()
        if longer.any():
            gaps.append(right[~longer].mean().item() - right[longer].mean().item())
    out["within_format_length_gap"] = sum(gaps) / len(gaps)
    return out


def input_lengths(days) -> tuple[int, int]:
    """Shortest and longest input over ``days`` in every format (characters)."""
    lengths = [len(render(d, f)) for d in days for f in FORMATS]
    return min(lengths), max(lengths)


def smooth(curve, k: int = 20) -> list[float]:
    """Moving average over ``k`` steps (fewer at the start)."""
    return [sum(curve[max(0, i - k + 1):i + 1]) / len(curve[max(0, i - k + 1):i + 1])
            for i in range(len(curve))]


EXAMPLE = dt.date(1998, 3, 3)  # the figure labels each format with this day
ZH = {
    "training loss (moving average of 20 steps)": "训练损失（20 步滑动平均）",
    "step": "训练步数", "cross-entropy": "交叉熵",
    "no attention": "无注意力", "attention": "有注意力",
    "exact match on held-out days": "留出日期上的完全正确率",
    "per input format, {} held-out days each (shortest at the top)":
        "按输入写法，每种 {} 个留出日期（最短的在最上面）",
}


def plot_by_format(scores: dict, losses: dict, num_days: int, out: Path) -> None:
    """Left: training loss. Right: exact match per format (held-out days), per model."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.2), width_ratios=[1, 1.3],
                                   gridspec_kw={"wspace": 0.75})
    for k, (label, curve) in enumerate(losses.items()):
        ax1.plot(smooth(curve), lw=1.2, ls=["-", "--"][k % 2], label=label)
    ax1.set(yscale="log", xlabel="step", ylabel="cross-entropy",
            title="training loss (moving average of 20 steps)")
    ax1.legend()
    order = sorted(range(len(FORMATS)), key=lambda i: len(render(EXAMPLE, FORMATS[i])))
    width = 0.8 / len(scores)
    for k, (label, accs) in enumerate(scores.items()):
        ys = [i + (k - (len(scores) - 1) / 2) * width for i in range(len(FORMATS))]
        ax2.barh(ys, [accs[f"acc_{FORMAT_NAMES[i]}"] for i in order], width,
                 label=label, hatch=["", "//"][k % 2], edgecolor="white")
    ax2.set_yticks(range(len(FORMATS)), [render(EXAMPLE, FORMATS[i]) for i in order],
                   fontsize=8)
    ax2.set(xlabel="exact match on held-out days", xlim=(0, 1),
            title=f"per input format, {num_days} held-out days each "
            "(shortest at the top)")
    ax2.invert_yaxis()
    ax2.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    inputs = {render(EXAMPLE, f): render(EXAMPLE, f) for f in FORMATS}  # stay English
    save_figure(fig, out / "by_format.png", zh={**ZH, **inputs})


def main(cfg: Config = Config(), out: Path = Path("out/attention-seq2seq")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    train_pairs, test_pairs = make_data(cfg)
    model = Seq2Seq(cfg.embed_size, cfg.num_hiddens)
    losses = train(model, encode_pairs(train_pairs), cfg)
    test_days = split_days(cfg.seed)[1][:cfg.format_days]
    formats = by_format(model, test_days)
    plot_by_format({"no attention": formats}, {"no attention": losses},
                   len(test_days), out)
    accs = [formats[f"acc_{name}"] for name in FORMAT_NAMES]
    shortest, longest = input_lengths(all_days())
    return {**evaluate(model, test_pairs), **formats,
            "worst_format_acc": min(accs), "best_format_acc": max(accs),
            "final_loss": sum(losses[-50:]) / len(losses[-50:]),
            "num_params": sum(p.numel() for p in model.parameters()),
            "num_formats": len(FORMATS), "num_steps": cfg.num_steps,
            "batch_size": cfg.batch_size, "format_days": len(test_days),
            "shortest_input": shortest, "longest_input": longest}


OTHER_FORMATS = [f"acc_{n}" for n in FORMAT_NAMES if n != "yyyy_mm_dd"]
CLAIMS = {
    "yyyymmdd_is_the_hardest_format":
        lambda m: m["acc_yyyy_mm_dd"] < min(m[k] for k in OTHER_FORMATS) - 0.1,
    "spelled_out_years_trail_weekday_d_month_yyyy":
        lambda m: max(m["acc_dwords_month_ywords"],
                      m["acc_weekday_month_dwords_ywords"])
        < m["acc_weekday_d_month_yyyy"] - 0.05,
    "shortest_length_group_is_the_worst":
        lambda m: m["acc_len_0_10"] < min(m["acc_len_10_20"], m["acc_len_20_30"],
                                          m["acc_len_30_45"], m["acc_len_45_70"]),
    "length_within_one_format_barely_matters":
        lambda m: abs(m["within_format_length_gap"]) < 0.05,
    "one_vector_leaves_many_errors": lambda m: m["exact_match"] < 0.85,
}
