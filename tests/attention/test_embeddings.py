"""One-hot x E is a row lookup; cosine; skip-gram negative-sampling loss; the corpus."""

import random

import torch
import torch.nn.functional as F
from torch import nn

from snippets.attention.embeddings import (
    CLASSES, HE, SkipGram, analogy, cosine, embed_by_matmul, make_corpus,
)


def test_one_hot_times_E_equals_nn_embedding_values_and_grads():
    torch.manual_seed(0)
    emb = nn.Embedding(10, 4)
    ids = torch.tensor([3, 0, 9, 3])
    E = emb.weight.detach().clone().requires_grad_(True)
    ours = embed_by_matmul(ids, E)
    ref = emb(ids)
    assert torch.allclose(ours, ref)
    (ours * torch.arange(4.0)).sum().backward()
    (ref * torch.arange(4.0)).sum().backward()
    assert torch.allclose(E.grad, emb.weight.grad)
    assert (E.grad[[1, 2, 4]] == 0).all()  # rows of words not looked up: no gradient


def test_one_hot_vectors_are_all_orthogonal():
    one_hot = torch.eye(6)
    sims = cosine(one_hot, one_hot)
    assert torch.equal(sims, torch.eye(6))


def test_cosine_matches_pytorch():
    u, v = torch.randn(3, 5), torch.randn(4, 5)
    ref = F.cosine_similarity(u[:, None], v[None], dim=-1)
    assert torch.allclose(cosine(u, v), ref, atol=1e-6)
    assert torch.allclose(cosine(u, 3 * u).diagonal(), torch.ones(3))  # length ignored


def test_sgns_loss_is_binary_cross_entropy_with_k_negatives():
    torch.manual_seed(0)
    model = SkipGram(12, 4)
    nn.init.normal_(model.E_out.weight)
    centre, context = torch.tensor([1, 5]), torch.tensor([2, 7])
    negatives = torch.tensor([[3, 4, 8], [0, 9, 11]])
    v = model.E(centre)
    pos = (model.E_out(context) * v).sum(-1, keepdim=True)
    logits = torch.cat([pos, torch.einsum("bkd,bd->bk", model.E_out(negatives), v)], 1)
    labels = torch.zeros_like(logits)
    labels[:, 0] = 1.0  # the true context is "1", the K noise words "0"
    bce = F.binary_cross_entropy_with_logits(logits, labels, reduction="sum") / 2
    assert torch.allclose(model(centre, context, negatives), bce)


def test_analogy_on_hand_made_vectors():
    words = ["man", "woman", "king", "queen"]
    E = torch.tensor([[1.0, 0, 0], [1.0, 1, 0], [1.0, 0, 1], [1.0, 1, 1]])
    vocab = {w: i for i, w in enumerate(words)}
    assert analogy(E, words, vocab, "man", "woman", "king") == "queen"


def test_corpus_keeps_pairs_and_pronouns_consistent():
    sentences = make_corpus(400, random.Random(0))
    for s in sentences:
        if "capital" in s:
            assert CLASSES["city"].index(s[0]) == CLASSES["country"].index(s[-1])
        if "said" in s:
            assert (s[1] in HE) == (s[3] == "he")
