"""Beam search: width 1 is greedy; it finds what greedy misses; length normalisation."""

import math

import torch

from snippets.attention.attention import AttnSeq2Seq
from snippets.attention.beam_search import beam_search, best, log_probs_along
from snippets.attention.seq2seq import (
    BOS, EOS, TGT_ID, Seq2Seq, encode_pairs, greedy_decode, to_string,
)

PAIRS = [("3/3/98", "1998-03-03"), ("Tuesday 3 March 1998", "1998-03-03"),
         ("the first of May, two thousand", "2000-05-01"), ("19611231", "1961-12-31")]


def test_beam_width_1_equals_greedy():
    for seed in range(3):
        torch.manual_seed(seed)
        for model in (Seq2Seq(8, 6).eval(), AttnSeq2Seq(8, 6, 5).eval()):
            for pair in PAIRS:
                X, X_len, _, _ = encode_pairs([pair])
                greedy = greedy_decode(model, X, X_len)[0][0].tolist()
                (tokens, _), = beam_search(model, X, X_len, beam_width=1)
                assert tokens == greedy[:len(tokens)]
                assert to_string(tokens) == to_string(greedy)


def test_beam_scores_are_sums_of_log_probs():
    torch.manual_seed(0)
    model = AttnSeq2Seq(8, 6, 5).eval()
    X, X_len, _, _ = encode_pairs([PAIRS[1]])
    for tokens, score in beam_search(model, X, X_len, beam_width=3):
        assert math.isclose(sum(log_probs_along(model, X, X_len, tokens)), score,
                            rel_tol=1e-4, abs_tol=1e-4)


class ToyDecoder:
    """P(1) = .6, P(2) = .4; after 1: four tokens at .25; after 2: P(3) = .9; <eos>."""

    table = {BOS: {"1": 0.6, "2": 0.4}, TGT_ID["1"]: {c: 0.25 for c in "5678"},
             TGT_ID["2"]: {"3": 0.9, "4": 0.1}}

    def encode(self, X, X_len):
        return {"x": X}, torch.zeros(len(X), 1)

    def decode_step(self, y_prev, state, memory):
        logits = torch.full((len(y_prev), len(TGT_ID)), -1e9)
        for i, y in enumerate(y_prev.tolist()):
            if y in self.table:
                for c, p in self.table[y].items():
                    logits[i, TGT_ID[c]] = math.log(p)
            else:
                logits[i, EOS] = 0.0
        return logits, state, None


def test_greedy_fails_where_beam_search_recovers():
    model = ToyDecoder()
    X, X_len = torch.zeros(1, 1, dtype=torch.long), torch.tensor([1])
    assert to_string(greedy_decode(model, X, X_len)[0][0]) == "15"  # P = .6 * .25 = .15
    tokens, score = best(beam_search(model, X, X_len, beam_width=2), alpha=0.0)
    assert to_string(tokens) == "23"
    assert math.isclose(score, math.log(0.36), rel_tol=1e-6)


def test_length_normalisation_hand_computed():
    short = ([1, 2, EOS], -3.0)  # mean log-prob per token -1.0
    long = ([1, 2, 3, 4, 5, EOS], -4.2)  # -0.7 per token, but a smaller product
    assert best([short, long], alpha=0.0) is short
    assert best([short, long], alpha=1.0) is long
    # alpha = 0.7: -3 / 3**0.7 = -1.389 vs -4.2 / 6**0.7 = -1.197
    assert best([short, long], alpha=0.7) is long
