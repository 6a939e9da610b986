"""Scaled dot-product attention from scratch vs PyTorch; multi-head; additive; cost."""

import datetime as dt
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snippets.attention.attention import (
    AdditiveAttention, AttnSeq2Seq, alignment_metrics, check_sdpa, decode_loop,
    extra_macs, heatmap_inputs, matmul_flops, multi_head_attention,
    scaled_dot_product_attention, softmax_saturation, step_cpu_ms,
)
from snippets.attention.seq2seq import (
    BOS, EOS, FORMATS, TGT_ID, TGT_LEN, Seq2Seq, encode_pairs, field_spans,
    greedy_decode, render,
)


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


@pytest.mark.parametrize("masking", ["causal", "key_padding", "none"])
def test_multi_head_equals_nn_multihead_attention_values_and_grads(masking):
    torch.manual_seed(0)
    d, heads = 8, 2
    mha = nn.MultiheadAttention(d, heads, bias=False, batch_first=True)
    X = torch.randn(3, 5, d, requires_grad=True)
    W_q, W_k, W_v = mha.in_proj_weight.chunk(3)
    if masking == "causal":
        mask = torch.ones(5, 5, dtype=torch.bool).tril()
        kwargs = {"attn_mask": ~mask}  # nn.MultiheadAttention: True = blocked
    elif masking == "key_padding":  # sequences of lengths 5, 3 and 1
        lengths = torch.tensor([5, 3, 1])
        mask = (torch.arange(5)[None] < lengths[:, None])[:, None, None, :]
        kwargs = {"key_padding_mask": torch.arange(5)[None] >= lengths[:, None]}
    else:
        mask, kwargs = None, {}
    ours = multi_head_attention(X, W_q, W_k, W_v, mha.out_proj.weight, heads, mask)
    ref, _ = mha(X, X, X, **kwargs)
    assert torch.allclose(ours, ref, atol=1e-6)
    weight = torch.arange(ours.numel(), dtype=torch.float32).view_as(ours).sin()
    g_ours = torch.autograd.grad((ours * weight).sum(), (X, mha.in_proj_weight))
    g_ref = torch.autograd.grad((ref * weight).sum(), (X, mha.in_proj_weight))
    for a, b in zip(g_ours, g_ref):
        assert torch.allclose(a, b, atol=1e-5)


def test_self_attention_ignores_order_a_causal_mask_does_not():
    """Shuffle the positions of X: self-attention's output is shuffled the same way
    (so it cannot tell orders apart). With a causal mask, order matters again."""
    torch.manual_seed(0)
    d, n = 8, 6
    X = torch.randn(2, n, d)
    W = [torch.randn(d, d) / math.sqrt(d) for _ in range(4)]
    perm = torch.randperm(n)
    out = multi_head_attention(X, *W, num_heads=2)
    out_perm = multi_head_attention(X[:, perm], *W, num_heads=2)
    assert torch.allclose(out_perm, out[:, perm], atol=1e-5)
    causal = torch.ones(n, n, dtype=torch.bool).tril()
    out = multi_head_attention(X, *W, num_heads=2, mask=causal)
    out_perm = multi_head_attention(X[:, perm], *W, num_heads=2, mask=causal)
    assert not torch.allclose(out_perm, out[:, perm], atol=1e-3)


def test_additive_attention_weights_are_a_distribution_over_real_positions():
    torch.manual_seed(0)
    attn = AdditiveAttention(4, 6, 5)
    H = torch.randn(2, 7, 6)
    mask = torch.arange(7)[None] < torch.tensor([[3], [7]])
    c, alpha = attn(torch.randn(2, 4), attn.W_h(H), H, mask)
    assert torch.allclose(alpha.sum(-1), torch.ones(2))
    assert (alpha[0, 3:] == 0).all() and c.shape == (2, 6)
    assert torch.allclose(c, torch.einsum("bt,btd->bd", alpha, H), atol=1e-6)


def test_additive_attention_is_the_formula_and_nothing_more():
    """e_j = v^T tanh(W_s s + W_h h_j), computed by hand from the same weights; the
    scorer has exactly a (q + k + 1) parameters (no biases)."""
    torch.manual_seed(0)
    q, k, a = 4, 6, 5
    attn = AdditiveAttention(q, k, a)
    assert sum(p.numel() for p in attn.parameters()) == a * (q + k + 1)
    s, H = torch.randn(2, q), torch.randn(2, 7, k)
    mask = torch.ones(2, 7, dtype=torch.bool)
    W_s, W_h, v = attn.W_s.weight, attn.W_h.weight, attn.v.weight[0]
    e = torch.tanh((s @ W_s.T)[:, None] + H @ W_h.T) @ v  # (2, 7)
    c, alpha = attn(s, attn.W_h(H), H, mask)
    assert torch.allclose(alpha, e.softmax(-1), atol=1e-6)
    assert torch.allclose(c, (e.softmax(-1)[..., None] * H).sum(1), atol=1e-6)


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
    """Seed: "a second network is retrained to get the weights". The wrong version,
    a scorer cut off from the loss (detached), would get no gradient at all."""
    torch.manual_seed(0)
    model = AttnSeq2Seq(8, 6, 5)
    pairs = [("Tuesday 3 March 1998", "1998-03-03"), ("3/3/98", "1998-03-03")]
    X, X_len, Y_in, Y_out = encode_pairs(pairs)
    loss = F.cross_entropy(model(X, X_len, Y_in).flatten(0, 1), Y_out.flatten())
    loss.backward()  # one loss, one backward pass: the scorer gets its gradient here
    for p in model.attention.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0


@pytest.mark.parametrize("T", [8, 21, 63])
def test_attention_cost_is_the_counted_arithmetic_and_far_from_double(T):
    """Seed: "the time complexity doubles". PyTorch's FLOP counter agrees with the
    page's count of the extra multiply-adds, W_h H once plus, per output step, W_s s,
    T scores and a weighted sum of T vectors; the extra is a fraction, not 100 %."""
    torch.manual_seed(0)
    base, attn = Seq2Seq(32, 64), AttnSeq2Seq(32, 64, 32)
    extra = matmul_flops(attn, T) - matmul_flops(base, T)
    assert extra == 2 * extra_macs(T, TGT_LEN, 64, 32)
    assert 0 < extra / matmul_flops(base, T) < 0.2
    assert extra_macs(T, 2 * TGT_LEN, 64, 32) - extra_macs(T, TGT_LEN, 64, 32) == \
        TGT_LEN * (64 * 32 + T * (32 + 128))  # the T x T' term grows with both


def test_w_h_is_applied_once_per_sentence_not_once_per_step():
    torch.manual_seed(0)
    model = AttnSeq2Seq(8, 6, 5)
    calls = []
    model.attention.W_h.register_forward_hook(lambda *_: calls.append(1))
    X, X_len, Y_in, _ = encode_pairs([("Tuesday 3 March 1998", "1998-03-03")])
    model(X, X_len, Y_in)
    assert len(calls) == 1 and Y_in.shape[1] == TGT_LEN


def test_decoder_reads_its_previous_output_and_the_weighted_sum():
    """Seed: "the bi-RNN's activations and the attention weights are the second RNN's
    input". The decoder cell reads [e(y_{t-1}); c_t] with c_t = sum_j alpha_j h_j:
    one vector, not the activations and the weights side by side."""
    torch.manual_seed(0)
    model = AttnSeq2Seq(8, 6, 5).eval()
    X, X_len, _, _ = encode_pairs([("3/3/98", "1998-03-03")])
    memory, s = model.encode(X, X_len)
    inputs = []
    model.cell.register_forward_hook(lambda mod, args, out: inputs.append(args[0]))
    y_prev = torch.tensor([TGT_ID["1"]])
    model.decode_step(y_prev, s, memory)
    c, alpha = model.attention(s, memory["keys"], memory["values"], memory["mask"])
    H = memory["values"]
    assert torch.allclose(c, (alpha[..., None] * H).sum(1), atol=1e-6)
    assert torch.equal(inputs[0], torch.cat([model.embedding(y_prev), c], -1))


def test_one_gru_call_and_the_step_loop_compute_the_same():
    """The timing compares the SAME no-attention model run two ways."""
    torch.manual_seed(0)
    model = Seq2Seq(8, 6)
    X, X_len, Y_in, Y_out = encode_pairs([("3/3/98", "1998-03-03"),
                                          ("Tuesday 3 March 1998", "1998-03-03")])
    assert torch.allclose(decode_loop(model, X, X_len, Y_in), model(X, X_len, Y_in),
                          atol=1e-6)
    assert step_cpu_ms(model, (X, X_len, Y_in, Y_out), reps=1) > 0


def test_softmax_saturates_without_the_scaling():
    rows = softmax_saturation([4, 256], n_keys=8, num=200)
    assert rows[1]["max_raw"] > 0.8 > rows[1]["max_scaled"]
    assert rows[1]["jac_raw"] < 0.5 * rows[1]["jac_scaled"]
    assert abs(rows[0]["max_scaled"] - rows[1]["max_scaled"]) < 0.1
    a = torch.tensor([0.5, 0.3, 0.2])  # the Jacobian used: diag(a) - a a^T
    jac = torch.autograd.functional.jacobian(lambda z: z.softmax(0), a.log())
    assert torch.allclose(jac, torch.diag(a) - a[:, None] * a[None], atol=1e-6)


class Aligner:
    """A fake model that looks exactly where a perfect reader would (or uniformly)."""

    def __init__(self, day, fmt, perfect=True):
        self.text, self.spans, self.perfect = render(day, fmt), field_spans(day, fmt), \
            perfect
        self.iso = day.isoformat()

    def encode(self, X, X_len):
        return {}, torch.zeros(1, dtype=torch.long)

    def decode_step(self, y_prev, t, memory):
        T = len(self.text)
        alpha = torch.full((1, T), 1 / T)
        kinds = {0: "y", 1: "y", 2: "y", 3: "y", 5: "m", 6: "m", 8: "d", 9: "d"}
        if self.perfect and int(t) in kinds:
            (lo, hi), = [v for k, v in self.spans.items()
                         if k[0] == kinds[int(t)] or (k in ("mon", "month") and
                                                      kinds[int(t)] == "m")]
            alpha = torch.zeros(1, T)
            alpha[0, lo:hi] = 1 / (hi - lo)
        chars = list(self.iso) + ["<eos>"]
        logits = torch.full((1, 14), -9.0)
        logits[0, EOS if int(t) >= 10 else TGT_ID[chars[int(t)]]] = 0.0
        return logits, t + 1, alpha


def test_alignment_metrics_reward_looking_at_the_right_field():
    day = dt.date(1994, 7, 28)
    cases = [(day, FORMATS[9]), (dt.date(2048, 11, 13), FORMATS[0])]

    def run(perfect):
        models = iter([Aligner(d, f, perfect) for d, f in cases])
        import snippets.attention.attention as mod
        real = mod.greedy_decode
        mod.greedy_decode = lambda _, X, X_len: real(next(models), X, X_len)
        try:
            return alignment_metrics(None, cases)
        finally:
            mod.greedy_decode = real

    good, bad = run(True), run(False)
    assert good["heat_field_mass"] == pytest.approx(1.0)
    assert good["heat_century_mass_on_yy"] == pytest.approx(1.0)
    assert bad["heat_field_mass"] < 0.3 and bad["heat_century_mass_on_yy"] < 0.3
    assert good["heat_digit_peak"] > good["heat_dash_eos_peak"]
    assert bad["heat_digit_peak"] == pytest.approx(bad["heat_dash_eos_peak"])
    # the "ninety"/"four" check: a perfect field reader spreads over "nineteen
    # ninety-four", so it puts only part of its weight on each word
    assert 0 < good["heat_tens_ones_mass"] < 1


def test_heatmap_inputs_are_held_out_and_need_reading():
    cases = heatmap_inputs(0)
    assert [f for _, f in cases] == [FORMATS[7], FORMATS[0], FORMATS[9], FORMATS[8]]
    texts = [render(d, f) for d, f in cases]
    assert texts[1] == "13/11/48" and "ninety-four" in texts[2]
