"""CTC greedy decoding on hand-made cases, the CTC data, nn.CTCLoss on a known case."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from snippets.rnn.sequence_outputs import BLANK, Config, make_data, greedy_decode


def _frames(path, C=4):
    """Log-probabilities whose argmax per frame follows `path`."""
    return F.one_hot(torch.tensor(path), C).float().mul(5).log_softmax(-1)


def test_greedy_decode_merges_repeats_then_drops_blanks():
    assert greedy_decode(_frames([1, 1, 0, 1, 2, 2, 0, 0, 3])) == [1, 1, 2, 3]
    assert greedy_decode(_frames([0, 0, 0])) == []
    assert greedy_decode(_frames([2, 2, 2, 3, 3])) == [2, 3]


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
