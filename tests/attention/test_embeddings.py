"""One-hot x E is a row lookup; cosine; skip-gram negative-sampling loss; the corpus."""

import math
import random

import torch
import torch.nn.functional as F
from torch import nn

from snippets.attention.embeddings import (
    CLASSES, HE, PEOPLE, SkipGram, analogy, class_cosines, cosine, embed_by_matmul,
    gender_axes, make_corpus, mean_pairwise_cos, nearest, noise_distribution,
    skipgram_pairs, train,
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


def test_one_hot_vectors_are_all_equally_far_apart():
    """Review question 1: cosine 0 and distance sqrt(2) between any two words."""
    one_hot = F.one_hot(torch.tensor([0, 17, 4242, 9999]), num_classes=10_000).float()
    off = ~torch.eye(4, dtype=torch.bool)
    assert (cosine(one_hot, one_hot)[off] == 0).all()
    assert torch.allclose(torch.cdist(one_hot, one_hot)[off], torch.tensor(2.0).sqrt())


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


def test_analogy_on_hand_made_vectors_with_distractors():
    """Axes: person, female, royal, young. With distractors, wrong arithmetic
    (the wrong versions below) lands on another word; e_b - e_a + e_c finds queen."""
    words = ["man", "woman", "king", "queen", "girl", "prince", "apple"]
    E = torch.tensor([[1.0, 0, 0, 0], [1, 1, 0, 0], [1, 0, 1, 0], [1, 1, 1, 0],
                      [1, 1, 0, 1], [1, 0, 1, 1], [0.2, -1, -1, 0]])
    vocab = {w: i for i, w in enumerate(words)}
    assert analogy(E, words, vocab, "man", "woman", "king") == "queen"
    assert analogy(E, words, vocab, "woman", "man", "queen") == "king"

    def wrong(target):  # nearest word to another combination, a, b, c excluded
        sims = cosine(target[None], E)[0]
        sims[[0, 1, 2]] = -2.0
        return words[int(sims.argmax())]

    e = {w: E[i] for i, w in enumerate(words)}
    assert wrong(e["woman"] - e["man"] - e["king"]) != "queen"
    assert wrong(e["man"] - e["woman"] + e["king"]) != "queen"


def test_analogy_excludes_its_three_question_words():
    """The nearest vector to e_b - e_a + e_c is often c itself ("king"); the answer
    must be the best word other than a, b and c."""
    words = ["man", "woman", "king", "queen"]
    E = torch.tensor([[1.0, 0, 0], [1, 0.2, 0], [0, 0, 1], [0, 0.5, 1]])
    vocab = {w: i for i, w in enumerate(words)}
    target = E[1] - E[0] + E[2]
    assert words[int(cosine(target[None], E)[0].argmax())] == "king"
    assert analogy(E, words, vocab, "man", "woman", "king") == "queen"


def test_skipgram_pairs_are_every_word_within_the_window():
    vocab = {w: i for i, w in enumerate("abcde")}
    pairs = skipgram_pairs([list("abcde")], vocab, window=1).tolist()
    assert pairs == [[0, 1], [1, 0], [1, 2], [2, 1], [2, 3], [3, 2], [3, 4], [4, 3]]
    pairs = skipgram_pairs([list("abcde")], vocab, window=2).tolist()
    assert sorted(map(tuple, pairs)) == sorted(
        (i, j) for i in range(5) for j in range(5) if i != j and abs(i - j) <= 2)


def test_skipgram_starts_from_small_centre_vectors_and_zero_context_vectors():
    """With u = 0 every score is sigma(0) = 1/2, so the first loss is (K + 1) log 2."""
    torch.manual_seed(0)
    model = SkipGram(500, 16)
    assert (model.E_out.weight == 0).all()
    assert abs(model.E.weight.std().item() - 0.1) < 0.005
    centre, context = torch.tensor([1, 2]), torch.tensor([3, 4])
    negatives = torch.randint(500, (2, 5))
    assert torch.isclose(model(centre, context, negatives), torch.tensor(6 * math.log(2)))


def test_nearest_ranks_by_cosine_and_skips_the_word_itself():
    words = ["a", "b", "c", "d"]
    E = torch.tensor([[1.0, 0], [10.0, 1], [0.0, 1], [-1.0, 0]])
    vocab = {w: i for i, w in enumerate(words)}
    assert nearest(E, words, vocab, "a", 3) == ["b", "c", "d"]  # length ignored
    assert nearest(E, words, vocab, "c", 1) == ["b"]
    E5 = torch.cat([E, torch.tensor([[-0.5, -1]])])
    assert nearest(E5, words + ["e"], vocab | {"e": 4}, "a") == ["b", "c", "e"]


def test_noise_is_unigram_counts_to_the_three_quarters():
    """Counts come from every token of the corpus. The wrong version counted
    (centre, context) pairs, which under-counts words at sentence edges."""
    sentences = [["a", "b", "c", "d"], ["a", "c"]]
    vocab = {"a": 0, "b": 1, "c": 2, "d": 3}
    counts = torch.tensor([2.0, 1.0, 2.0, 1.0])
    expected = counts ** 0.75 / (counts ** 0.75).sum()
    assert torch.allclose(noise_distribution(sentences, vocab), expected)
    assert torch.allclose(noise_distribution(sentences, vocab, power=1.0), counts / 6)
    pairs = skipgram_pairs(sentences, vocab, window=1)  # pair counts: 2, 2, 3, 1
    by_pairs = torch.bincount(pairs[:, 0], minlength=4).float() ** 0.75
    assert not torch.allclose(by_pairs / by_pairs.sum(), expected, atol=1e-2)


def test_mean_pairwise_cosine_and_class_cosines():
    assert math.isclose(mean_pairwise_cos(torch.ones(3, 4)), 1.0, rel_tol=1e-6)
    assert abs(mean_pairwise_cos(torch.eye(4))) < 1e-7
    words = [w for ws in CLASSES.values() for w in ws]
    E = torch.zeros(len(words), len(CLASSES))
    for i, w in enumerate(words):  # each class on its own axis
        E[i, next(k for k, c in enumerate(CLASSES.values()) if w in c)] = 1.0
    c = class_cosines(E, words)
    assert math.isclose(c["within_class_cos"], 1.0, rel_tol=1e-6)
    assert abs(c["between_class_cos"]) < 1e-6 and abs(c["country_language_cos"]) < 1e-6


def test_gender_axes_are_orthonormal_and_point_from_he_to_she():
    torch.manual_seed(0)
    words = PEOPLE + ["apple"]
    E = torch.randn(len(words), 6)
    g, r = gender_axes(E, words)
    assert math.isclose(g.norm().item(), 1, rel_tol=1e-5) and abs(g @ r) < 1e-5
    P = E[:8]
    assert ((P[1::2] - P[::2]) @ g).mean() > 0  # she - he points along g


def test_skipgram_training_groups_words_of_a_class():
    """A short training run: centre vectors of one class end up closer than those
    of different classes (the property the figure shows)."""
    torch.manual_seed(0)
    sentences = make_corpus(2000, random.Random(0))
    words = sorted({w for s in sentences for w in s})
    vocab = {w: i for i, w in enumerate(words)}
    pairs = skipgram_pairs(sentences, vocab, 2)

    class Cfg:
        num_steps, batch_size, num_negatives, lr = 300, 512, 5, 0.01

    model = SkipGram(len(words), 12)
    losses = train(model, pairs, noise_distribution(sentences, vocab), Cfg)
    assert sum(losses[-20:]) < 0.7 * sum(losses[:20])
    c = class_cosines(model.E.weight.detach(), words)
    assert c["within_class_cos"] > c["between_class_cos"] + 0.2


def test_corpus_keeps_pairs_and_pronouns_consistent():
    sentences = make_corpus(400, random.Random(0))
    for s in sentences:
        if "capital" in s:
            assert CLASSES["city"].index(s[0]) == CLASSES["country"].index(s[-1])
        if "said" in s:
            assert (s[1] in HE) == (s[3] == "he")
