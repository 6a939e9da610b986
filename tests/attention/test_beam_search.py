"""Beam search: width 1 is greedy; it finds what greedy misses; length normalisation."""

import math

import torch

from snippets.attention.attention import AttnSeq2Seq
from snippets.attention.beam_search import (
    beam_search, best, first_difference, log_probs_along, sample_decode, target_tokens,
)
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


def test_products_of_probabilities_underflow_where_sums_of_logs_do_not():
    """Seed: the objective is "a product of many probabilities below 1". Computed as
    written (the wrong version), two 200-step outputs both score exactly 0 in float32
    and cannot be told apart; sums of log-probabilities rank them."""
    better, worse = torch.full((200,), 0.5), torch.full((200,), 0.4)
    assert better.prod() == 0 and worse.prod() == 0
    assert better.log().sum() > worse.log().sum()


def test_a_finished_hypothesis_takes_a_slot_and_is_kept():
    """The variant the page describes: <eos> chosen at step 1 takes one of the B = 2
    places, so "2" drops out; the finished one is returned with the rest."""

    class EarlyEnd(ToyDecoder):
        table = {BOS: {"<eos>": 0.5, "1": 0.3, "2": 0.2}}  # after "1": <eos>

    X, X_len = torch.zeros(1, 1, dtype=torch.long), torch.tensor([1])
    hyps = beam_search(EarlyEnd(), X, X_len, beam_width=2, max_len=2)
    tokens = [t for t, _ in hyps]
    assert tokens[:2] == [[EOS], [TGT_ID["1"], EOS]]
    assert not any(t[0] == TGT_ID["2"] for t in tokens)
    assert math.isclose(hyps[0][1], math.log(0.5), rel_tol=1e-6)
    # the raw sum prefers stopping at once (.5 > .3); per token, "1" wins
    assert best(hyps, alpha=0.0)[0] == [EOS]
    assert best(hyps, alpha=1.0)[0] == [TGT_ID["1"], EOS]


def test_sampling_with_top_1_or_a_tiny_temperature_is_greedy():
    for seed in range(2):
        torch.manual_seed(seed)
        model = AttnSeq2Seq(8, 6, 5).eval()
        X, X_len, _, _ = encode_pairs(PAIRS)
        greedy = greedy_decode(model, X, X_len)[0]
        gen = torch.Generator().manual_seed(0)
        assert torch.equal(sample_decode(model, X, X_len, top_k=1, gen=gen), greedy)
        assert torch.equal(sample_decode(model, X, X_len, temperature=1e-4, gen=gen),
                           greedy)


def test_sampling_follows_the_tempered_distribution():
    """First step of the toy decoder: P(1) = .6, P(2) = .4. At temperature tau the
    probabilities become p^(1/tau), renormalised; top_k = 1 never draws "2"."""
    model = ToyDecoder()
    X = torch.zeros(4000, 1, dtype=torch.long)
    X_len = torch.ones(4000, dtype=torch.long)
    gen = torch.Generator().manual_seed(0)
    for tau in (1.0, 2.0, 0.5):
        first = sample_decode(model, X, X_len, temperature=tau, gen=gen, max_len=1)
        share = (first[:, 0] == TGT_ID["1"]).float().mean().item()
        expected = 0.6 ** (1 / tau) / (0.6 ** (1 / tau) + 0.4 ** (1 / tau))
        assert abs(share - expected) < 0.03, (tau, share, expected)
    first = sample_decode(model, X, X_len, gen=gen, max_len=1)  # default: tau = 1
    assert abs((first[:, 0] == TGT_ID["1"]).float().mean().item() - 0.6) < 0.03
    first = sample_decode(model, X, X_len, top_k=1, gen=gen, max_len=1)
    assert (first[:, 0] == TGT_ID["1"]).all()
    two = sample_decode(model, X, X_len, top_k=2, gen=gen, max_len=2)
    assert set(two[:, 0].tolist()) == {TGT_ID["1"], TGT_ID["2"]}


def test_helpers_of_the_demo():
    assert target_tokens("1998-03-03") == [TGT_ID[c] for c in "1998-03-03"] + [EOS]
    assert first_difference([1, 2, 3], [1, 2, 3]) == 0
    assert first_difference([1, 2, 3], [1, 5, 3]) == 2
    assert first_difference([1, 2], [1, 2, 3]) == 3
