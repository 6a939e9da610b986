"""CTC: greedy decoding and the forward recursion against nn.CTCLoss and against
brute force; the encoder-decoder's <bos>/<eos> plumbing; the synthetic data."""

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

from snippets.rnn.sequence_outputs import (BLANK, Config, Counter, EncoderDecoder,
                                           FrameTagger, ctc_nll, decoder_io,
                                           greedy_decode, make_data, step_losses,
                                           until_eos)


def _frames(path, C=4):
    """Log-probabilities whose argmax per frame follows `path`."""
    return F.one_hot(torch.tensor(path), C).float().mul(5).log_softmax(-1)


def test_greedy_decode_merges_repeats_then_drops_blanks():
    assert greedy_decode(_frames([1, 1, 0, 1, 2, 2, 0, 0, 3])) == [1, 1, 2, 3]
    assert greedy_decode(_frames([0, 0, 0])) == []
    assert greedy_decode(_frames([2, 2, 2, 3, 3])) == [2, 3]


def collapse(path):
    """B: merge repeats, then drop blanks (the map every CTC path goes through)."""
    return [k for k, _ in itertools.groupby(path) if k != BLANK]


def brute_force_nll(log_probs, target):
    """Sum over every path of length T that collapses to the target (T small)."""
    T, C = log_probs.shape
    total = [sum(log_probs[t, k] for t, k in enumerate(path))
             for path in itertools.product(range(C), repeat=T)
             if collapse(path) == target]
    return -torch.logsumexp(torch.stack(total), 0)


def test_ctc_forward_recursion_equals_brute_force_and_nn_ctcloss():
    torch.manual_seed(0)
    for T, C, target in ((5, 3, [1, 2]), (5, 3, [1, 1]), (4, 2, [1]), (5, 4, [3, 1, 3]),
                         (3, 3, [2, 2])):
        log_probs = torch.randn(T, C).log_softmax(-1)
        ours = ctc_nll(log_probs, target)
        assert torch.isclose(ours, brute_force_nll(log_probs, target), atol=1e-5)
        ref = nn.CTCLoss(blank=BLANK, reduction="sum")(
            log_probs[:, None], torch.tensor([target]), torch.tensor([T]),
            torch.tensor([len(target)]))
        assert torch.isclose(ours, ref, atol=1e-4)


def test_ctc_forward_recursion_on_the_hand_case_and_an_impossible_target():
    log_probs = torch.full((2, 2), math.log(0.5))
    assert torch.isclose(ctc_nll(log_probs, [1]), torch.tensor(-math.log(0.75)))
    assert torch.isinf(ctc_nll(log_probs, [1, 1]))  # 'a a' needs three frames
    # the empty target: the only path is all blanks
    assert torch.isclose(ctc_nll(log_probs, []), torch.tensor(-2 * math.log(0.5)))


def test_without_a_blank_a_repeated_symbol_cannot_be_written():
    """'1 1' needs a blank between the 1s; without one the frames read as a single 1."""
    assert greedy_decode(_frames([1, 1, 1, 1])) == [1]
    assert greedy_decode(_frames([1, 1, BLANK, 1])) == [1, 1]


def test_ctc_loss_on_a_hand_computed_case():
    """T = 2, uniform over {blank, a}: paths giving 'a' are (a,a), (a,-), (-,a)."""
    log_probs = torch.full((2, 1, 2), math.log(0.5))  # (T, B, C)
    loss = nn.CTCLoss(blank=0)(log_probs, torch.tensor([[1]]), torch.tensor([2]),
                               torch.tensor([1]))
    # reduction='mean' divides by the target length (1 here)
    assert torch.isclose(loss, torch.tensor(-math.log(3 * 0.25)), atol=1e-6)


def test_data_fits_and_labels_match_frames():
    cfg = Config()
    X, labels, lengths = make_data(200, cfg, torch.Generator().manual_seed(0))
    assert X.shape == (200, cfg.num_frames, cfg.num_symbols + 1)
    assert lengths.min() >= 2 and lengths.max() <= cfg.max_len
    clean = make_data(200, Config(noise=0.0), torch.Generator().manual_seed(0))
    for b in range(20):  # decoding the clean one-hot frames recovers the label exactly
        assert greedy_decode(clean[0][b].log()) == clean[1][b, :clean[2][b]].tolist()


def test_decoder_reads_bos_then_the_previous_symbol_and_must_end_with_eos():
    labels = torch.tensor([[3, 1, 0, 0], [2, 2, 4, 1]])  # lengths 2 and 4, 0-padded
    prev, target = decoder_io(labels, C=5)
    assert target.tolist() == [[3, 1, 0, 0, 0], [2, 2, 4, 1, 0]]  # ..., <eos> = 0
    assert prev[:, 0].tolist() == [5, 5]  # <bos> = C
    assert torch.equal(prev[:, 1:], target[:, :-1])  # shifted right by one: no copying
    assert until_eos([3, 1, 0, 2, 2]) == [3, 1] and until_eos([2, 2]) == [2, 2]


def test_seed_mistake_the_decoder_needs_eos_not_ctc_blanks():
    """The notes: the encoder-decoder, like many-to-less, needs an extra 'empty' class.
    Treating its output the CTC way (collapse repeats, drop 'empty') destroys a
    repeated symbol; reading up to <eos> keeps it and lets the model set the length."""
    said = [3, 3, 1, 0, 2]  # the decoder's tokens: '3 3 1', then <eos>, then noise
    assert until_eos(said) == [3, 3, 1]
    assert collapse(said) != [3, 3, 1]  # the notes' reading: [3, 1, 2]


def test_generate_feeds_back_its_own_guesses_starting_from_bos():
    torch.manual_seed(0)
    C = 5
    for _ in range(3):
        model = EncoderDecoder(C=C, num_hiddens=8)
        X = torch.randn(40, 6, C)
        out = model.generate(X, max_len=4)
        assert out.shape == (40, 5)
        # teacher forcing on its own output, from the training <bos> (= C), agrees
        prev = torch.cat([torch.full((40, 1), C), out[:, :-1]], 1)
        with torch.no_grad():
            logits = model(X, prev)
        assert torch.equal(logits.argmax(-1), out)


def test_step_losses_are_the_three_losses_of_the_page():
    """The CTC term equals our forward recursion (nn.CTCLoss's default: each -log p
    divided by its target length, then averaged); the other two are cross-entropies
    with the shifted decoder targets."""
    torch.manual_seed(0)
    cfg = Config(num_hiddens=8)
    C = cfg.num_symbols + 1
    models = {"ctc": FrameTagger(C, 8), "count": Counter(C, 8, cfg.max_len + 1),
              "encdec": EncoderDecoder(C, 8)}
    X, labels, lengths = make_data(6, cfg, torch.Generator().manual_seed(3))
    losses = step_losses(models, X, labels, lengths, cfg)
    with torch.no_grad():
        log_probs = models["ctc"](X)
        nll = [ctc_nll(lp, labels[b, :lengths[b]].tolist()) / lengths[b]
               for b, lp in enumerate(log_probs)]
        expected = torch.stack(nll).mean()
        assert torch.isclose(losses["ctc"], expected, atol=1e-4)
        count = F.cross_entropy(models["count"](X), lengths)
        assert torch.isclose(losses["count"], count)
        prev, target = decoder_io(labels, C)
        seq = F.cross_entropy(models["encdec"](X, prev).transpose(1, 2), target)
        assert torch.isclose(losses["encdec"], seq)
