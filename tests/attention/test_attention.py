"""Scaled dot-product attention from scratch vs PyTorch; multi-head; additive."""

import torch
import torch.nn.functional as F
from torch import nn

from snippets.attention.attention import (
    AdditiveAttention, AttnSeq2Seq, check_sdpa, multi_head_attention,
    scaled_dot_product_attention,
)
from snippets.attention.seq2seq import BOS, encode_pairs, greedy_decode


def _qkv(n=5, m=7, d=4, d_v=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(2, 3, L, k, generator=gen, requires_grad=True)
            for L, k in ((n, d), (m, d), (m, d_v))]


def _same_values_and_grads(mask=None, is_causal=False):
    Q, K, V = _qkv()
    if is_causal:
        Q, K, V = _qkv(n=6, m=6)
        mask = torch.ones(6, 6, dtype=torch.bool).tril()
    ours = scaled_dot_product_attention(Q, K, V, mask)
    grads = torch.autograd.grad(ours.square().sum(), (Q, K, V))
    ref = (F.scaled_dot_product_attention(Q, K, V, is_causal=True) if is_causal else
           F.scaled_dot_product_attention(Q, K, V, attn_mask=mask))
    ref_grads = torch.autograd.grad(ref.square().sum(), (Q, K, V))
    assert torch.allclose(ours, ref, atol=1e-6)
    for g, r in zip(grads, ref_grads):
        assert torch.allclose(g, r, atol=1e-5)


def test_sdpa_without_mask_equals_pytorch():
    _same_values_and_grads()


def test_sdpa_with_boolean_mask_equals_pytorch():
    mask = torch.rand(2, 1, 5, 7, generator=torch.Generator().manual_seed(1)) < 0.6
    mask[..., 0] = True
    _same_values_and_grads(mask)


def test_sdpa_causal_equals_pytorch_is_causal():
    _same_values_and_grads(is_causal=True)


def test_masked_keys_get_zero_weight():
    Q, K, V = (t.detach() for t in _qkv())
    mask = torch.ones(5, 7, dtype=torch.bool)
    mask[:, 4:] = False
    changed = V.clone()
    changed[..., 4:, :] = 1e3  # values behind the mask must not matter
    assert torch.allclose(scaled_dot_product_attention(Q, K, V, mask),
                          scaled_dot_product_attention(Q, K, changed, mask))


def test_scaling_by_sqrt_d():
    Q = torch.tensor([[[1.0, 0.0, 0.0, 0.0]]])  # d = 4, so scores are q.k / 2
    K = torch.tensor([[[2.0, 0, 0, 0], [0.0, 0, 0, 0]]])
    V = torch.tensor([[[1.0], [0.0]]])
    weight = torch.tensor([1.0, 0.0]).softmax(0)[0]  # scores 2/2 = 1 and 0
    assert torch.allclose(scaled_dot_product_attention(Q, K, V), weight.view(1, 1, 1))


def test_random_checks_of_the_demo_pass():
    assert check_sdpa(0, num_checks=10) < 1e-5


def test_multi_head_equals_nn_multihead_attention():
    torch.manual_seed(0)
    d, heads = 8, 2
    mha = nn.MultiheadAttention(d, heads, bias=False, batch_first=True)
    X = torch.randn(3, 5, d)
    W_q, W_k, W_v = mha.in_proj_weight.chunk(3)
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    ours = multi_head_attention(X, W_q, W_k, W_v, mha.out_proj.weight, heads, causal)
    ref, _ = mha(X, X, X, attn_mask=~causal)  # nn.MultiheadAttention: True = blocked
    assert torch.allclose(ours, ref, atol=1e-6)


def test_additive_attention_weights_are_a_distribution_over_real_positions():
    torch.manual_seed(0)
    attn = AdditiveAttention(4, 6, 5)
    H = torch.randn(2, 7, 6)
    mask = torch.arange(7)[None] < torch.tensor([[3], [7]])
    c, alpha = attn(torch.randn(2, 4), attn.W_h(H), H, mask)
    assert torch.allclose(alpha.sum(-1), torch.ones(2))
    assert (alpha[0, 3:] == 0).all() and c.shape == (2, 6)
    assert torch.allclose(c, torch.einsum("bt,btd->bd", alpha, H), atol=1e-6)


def test_attention_model_teacher_forcing_matches_greedy_path():
    torch.manual_seed(0)
    model = AttnSeq2Seq(8, 6, 5).eval()
    pairs = [("3/3/98", "1998-03-03"), ("Tue, 3 Mar 98", "1998-03-03")]
    X, X_len, _, _ = encode_pairs(pairs)
    tokens, attn = greedy_decode(model, X, X_len)
    bos = torch.full((2, 1), BOS)
    Y_in = torch.cat([bos, tokens[:, :-1]], 1)
    assert torch.equal(model(X, X_len, Y_in).argmax(-1), tokens)
    assert attn.shape == (2, 11, 13) and (attn[0, :, 6:] == 0).all()


def test_alignment_model_is_trained_by_the_same_loss_in_one_backward_pass():
    """The seed's "a second network, trained separately, doubling the cost" is wrong."""
    torch.manual_seed(0)
    model = AttnSeq2Seq(8, 6, 5)
    pairs = [("Tuesday 3 March 1998", "1998-03-03"), ("3/3/98", "1998-03-03")]
    X, X_len, Y_in, Y_out = encode_pairs(pairs)
    loss = F.cross_entropy(model(X, X_len, Y_in).flatten(0, 1), Y_out.flatten())
    loss.backward()  # one loss, one backward pass: the scorer gets its gradient here
    for p in model.attention.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0
    _, attn = greedy_decode(model, X, X_len)
    assert attn.shape[1:] == (11, 20)  # T' x T scores per sentence, not "twice" anything
