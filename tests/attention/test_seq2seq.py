"""Date generator, vocabularies, the bidirectional encoder, decoding, BLEU."""

import calendar
import datetime as dt
import functools
import math
import random
import re

import pytest
import torch
from torch import nn

from snippets.attention.seq2seq import (
    BOS, EOS, FIELDS, FORMAT_NAMES, PAD, SRC_ID, FORMATS, TGT_CHARS, TGT_ID, Encoder, Seq2Seq,
    all_days, bleu, by_format, clipped_precision, encode_pairs, exact_matches,
    field_spans, greedy_decode, input_lengths, make_data, ngrams, number_words,
    ordinal_words, render, smooth, split_days, suffix, to_string, train, year_words,
)


def parse(text: str, fmt: str) -> dt.date:
    """The inverse of ``render``, written independently: read the date in ``text``."""
    names = re.findall(r"\{(\w+)\}", fmt)
    digits = {"d": r"\d\d?", "m": r"\d\d?", "dd": r"\d\d", "mm": r"\d\d", "yy": r"\d\d",
              "yyyy": r"\d{4}", "dth": r"\d\d?[a-z]{2}"}
    pattern = re.escape(re.sub(r"\{\w+\}", "\0", fmt))
    for name in names:
        pattern = pattern.replace("\0", f"({digits.get(name, '.+?')})", 1)
    values = dict(zip(names, re.fullmatch(pattern, text).groups()))
    lookup = word_lookup()
    year = (int(values["yyyy"]) if "yyyy" in values else
            lookup["ywords"][values["ywords"]].year if "ywords" in values else
            1900 + int(values["yy"]) + (100 if int(values["yy"]) < 50 else 0))
    month = (int(values.get("m") or values.get("mm") or 0) or
             list(calendar.month_name).index(values.get("month", "")) or
             list(calendar.month_abbr).index(values.get("mon", "")))
    digits_day = values.get("d") or values.get("dd") or values.get("dth", "")[:-2]
    day = int(digits_day or 0) or lookup["dwords"][values["dwords"]].day
    day = dt.date(year, month, day)
    weekday = values.get("weekday") or values.get("wd")
    assert weekday in (None, FIELDS["weekday"](day), FIELDS["wd"](day)), text
    return day


@functools.cache
def word_lookup() -> dict:
    return {f: {FIELDS[f](d): d for d in all_days()} for f in ("dwords", "ywords")}


def test_known_renderings():
    day = dt.date(1998, 3, 3)
    assert render(day, "{d}/{m}/{yy}") == "3/3/98"
    assert render(day, "{weekday} {d} {month} {yyyy}") == "Tuesday 3 March 1998"
    assert render(dt.date(2005, 9, 23), "the {dwords} of {month}, {ywords}") == \
        "the twenty-third of September, two thousand and five"
    assert [ordinal_words(n) for n in (1, 12, 13, 20, 22, 30, 31)] == \
        ["first", "twelfth", "thirteenth", "twentieth", "twenty-second", "thirtieth",
         "thirty-first"]
    assert number_words(98) == "ninety-eight" and year_words(2000) == "two thousand"
    assert year_words(2049) == "twenty forty-nine"
    assert [number_words(n) for n in (0, 13, 19, 20, 40, 41, 90)] == \
        ["zero", "thirteen", "nineteen", "twenty", "forty", "forty-one", "ninety"]
    assert [year_words(y) for y in (1950, 1999, 2001, 2009, 2010, 2011)] == [
        "nineteen fifty", "nineteen ninety-nine", "two thousand and one",
        "two thousand and nine", "twenty ten", "twenty eleven"]
    assert [f"{n}{suffix(n)}" for n in (1, 2, 3, 4, 10, 11, 12, 13, 20, 21, 22, 23,
                                        30, 31)] == \
        "1st 2nd 3rd 4th 10th 11th 12th 13th 20th 21st 22nd 23rd 30th 31st".split()


def test_generator_round_trips_on_every_format():
    rng = random.Random(0)
    edges = [dt.date(1950, 1, 1), dt.date(1999, 12, 31), dt.date(2049, 12, 31)]
    for day in rng.sample(all_days(), 300) + edges:
        for fmt in FORMATS:
            assert parse(render(day, fmt), fmt) == day, (day, fmt)
        assert dt.date.fromisoformat(day.isoformat()) == day


def test_no_input_means_two_dates():
    days = all_days()[::7] + all_days()[3::7]  # two weekdays, all 100 years
    for fmt in FORMATS:
        assert len({render(d, fmt) for d in days}) == len(days), fmt


def test_test_days_are_never_trained_on():
    train_days, test_days = split_days(0)
    assert not set(train_days) & set(test_days) and len(test_days) > 3000
    class Cfg:
        seed, num_train, num_test = 0, 2000, 500
    train_pairs, test_pairs = make_data(Cfg)
    assert not {iso for _, iso in train_pairs} & {iso for _, iso in test_pairs}


def test_encode_pairs_shapes_and_to_string():
    pairs = [("3/3/98", "1998-03-03"), ("19980303", "1998-03-03")]
    X, X_len, Y_in, Y_out = encode_pairs(pairs)
    assert X.shape == (2, 8) and X_len.tolist() == [6, 8]
    assert X[0].tolist() == [SRC_ID[c] for c in "3/3/98"] + [PAD, PAD]
    assert X[1].tolist() == [SRC_ID[c] for c in "19980303"]
    assert Y_in.shape == Y_out.shape == (2, 11)
    assert to_string(Y_out[0]) == "1998-03-03"
    assert torch.equal(Y_in[0, 1:], Y_out[0, :-1])


def test_encoder_equals_packed_bidirectional_gru():
    torch.manual_seed(0)
    enc = Encoder(8, 6)
    ref = nn.GRU(8, 6, batch_first=True, bidirectional=True)
    with torch.no_grad():
        for name, p in enc.fwd.named_parameters():
            getattr(ref, name).copy_(p)
        for name, p in enc.bwd.named_parameters():
            getattr(ref, name + "_reverse").copy_(p)
    X, X_len, _, _ = encode_pairs([("3/3/98", "1998-03-03"),
                                   ("Tuesday 3 March 1998", "1998-03-03")])
    H, last = enc(X, X_len)
    packed = nn.utils.rnn.pack_padded_sequence(enc.embedding(X), X_len,
                                               batch_first=True, enforce_sorted=False)
    H_ref, h_n = ref(packed)
    H_ref, _ = nn.utils.rnn.pad_packed_sequence(H_ref, batch_first=True)
    assert torch.allclose(H[0, :6], H_ref[0, :6], atol=1e-6)
    assert torch.allclose(H[1], H_ref[1], atol=1e-6)
    assert torch.allclose(last, torch.cat([h_n[0], h_n[1]], -1), atol=1e-6)


def test_teacher_forcing_equals_step_by_step_decoding():
    torch.manual_seed(0)
    model = Seq2Seq(8, 6)
    pairs = [("3 Mar 1998", "1998-03-03"), ("1/1/00", "2000-01-01")]
    X, X_len, Y_in, _ = encode_pairs(pairs)
    logits = model(X, X_len, Y_in)
    memory, state = model.encode(X, X_len)
    for t in range(Y_in.shape[1]):
        step, state, _ = model.decode_step(Y_in[:, t], state, memory)
        assert torch.allclose(step, logits[:, t], atol=1e-6)
    tokens, attn = greedy_decode(model, X, X_len)
    assert tokens.shape == (2, 11) and attn is None


@pytest.mark.parametrize("fmt", FORMATS)
def test_padding_does_not_change_the_encoding(fmt):
    torch.manual_seed(0)
    enc = Encoder(8, 6)
    short = render(dt.date(2001, 2, 3), fmt)
    X, X_len, _, _ = encode_pairs([(short, "2001-02-03"), ("x" * 70, "2001-02-03")])
    H, last = enc(X[:1, :len(short)], X_len[:1])
    H_pad, last_pad = enc(X, X_len)
    assert torch.allclose(H[0], H_pad[0, :len(short)], atol=1e-6)
    assert torch.allclose(last[0], last_pad[0], atol=1e-6)


def test_no_format_puts_the_month_before_the_day_unless_it_is_fixed_width():
    """What makes inputs unambiguous: d/m formats have the day first; yyyymmdd does
    not, but every field has a fixed width (the page once said "day first" always)."""
    day = dt.date(2001, 2, 3)
    for fmt in FORMATS:
        spans = field_spans(day, fmt)
        numeric = [f for f in spans if f in ("d", "dd", "m", "mm")]
        if numeric == ["mm", "dd"]:
            assert fmt == "{yyyy}{mm}{dd}"
        elif len(numeric) == 2:
            assert numeric[0] in ("d", "dd"), fmt


def test_field_spans_cut_out_each_field():
    for day in (dt.date(2048, 11, 13), dt.date(1962, 10, 23)):
        for fmt in FORMATS:
            text, spans = render(day, fmt), field_spans(day, fmt)
            assert set(spans) == set(re.findall(r"\{(\w+)\}", fmt))
            for field, (lo, hi) in spans.items():
                assert text[lo:hi] == FIELDS[field](day)
    assert field_spans(dt.date(2048, 11, 13), "{d}/{m}/{yy}")["yy"] == (6, 8)


def test_input_lengths_and_format_names():
    assert input_lengths(all_days()) == (6, 63)
    assert len(set(FORMAT_NAMES)) == len(FORMATS) and FORMAT_NAMES[0] == "d_m_yy"


def test_the_target_vocabulary_has_no_blank_and_eos_ends_the_output():
    """Seed: the encoder-decoder "also needs an optional class meaning empty" (CTC's
    blank). Our vocabulary has none: every step emits a real character and <eos>
    sets the length. The wrong version, CTC's collapse (merge repeats, drop blanks),
    would destroy dates whose digits repeat; reading up to <eos> keeps them."""
    assert TGT_CHARS == ["<pad>", "<bos>", "<eos>", *"0123456789-"]
    tokens = [TGT_ID[c] for c in "2000-11-22"] + [EOS, TGT_ID["9"]]
    assert to_string(tokens) == "2000-11-22"  # stops at the first <eos>

    def ctc_collapse(ids, blank=None):  # the wrong version, as CTC decodes
        out = [t for i, t in enumerate(ids) if i == 0 or t != ids[i - 1]]
        return [t for t in out if t != blank]

    assert to_string(ctc_collapse(tokens)) == "20-1-2" != "2000-11-22"


def _tiny_train_config(**kw):
    class Cfg:
        num_steps, batch_size, lr, seed = 3, 4, 3e-3, 0
    for k, v in kw.items():
        setattr(Cfg, k, v)
    return Cfg


def test_train_feeds_the_true_previous_symbol_not_the_models_prediction():
    """Seed: "the previous output is fed back as the next input" (during training).
    ``train`` must feed <bos> + the true target (teacher forcing). The wrong version,
    feeding the model's own predictions, gives other inputs: the check would fail."""
    torch.manual_seed(0)
    seen = []

    class Spy(Seq2Seq):
        def forward(self, X, X_len, Y_in):
            with torch.no_grad():  # what free running would feed, at this moment
                predicted = greedy_decode(self, X, X_len)[0][:, :-1]
            seen.append((Y_in.clone(), predicted))
            return super().forward(X, X_len, Y_in)

    pairs = [("3/3/98", "1998-03-03"), ("1/1/00", "2000-01-01"),
             ("19611231", "1961-12-31"), ("3 Mar 1998", "1998-03-03")]
    data = encode_pairs(pairs)
    model = Spy(8, 6)
    train(model, data, _tiny_train_config())
    assert len(seen) == 3
    truth = {tuple(row.tolist()) for row in data[2]}
    for Y_in, predicted in seen:
        assert (Y_in[:, 0] == BOS).all()
        assert {tuple(row.tolist()) for row in Y_in} <= truth
        assert not torch.equal(Y_in[:, 1:], predicted)  # so the check can tell


def test_train_is_adam_with_one_cycle_and_clipping_on_teacher_forced_batches():
    """``train`` against a loop written out here: same batches, zero_grad, backward,
    clip at norm 1, Adam step, one-cycle step; the same losses and weights result."""
    from snippets.attention.seq2seq import batches

    pairs = make_data(_tiny_train_config(num_train=64, num_test=4))[0]
    data = encode_pairs(pairs)
    cfg = _tiny_train_config(num_steps=4, batch_size=8, lr=0.05)
    models = []
    for _ in range(2):
        torch.manual_seed(0)
        models.append(Seq2Seq(8, 6))
        with torch.no_grad():  # large weights, large gradients: clipping matters
            for p in models[-1].parameters():
                p.mul_(4.0)
    model, ref = models
    losses = train(model, data, cfg)
    X, X_len, Y_in, Y_out = data
    opt = torch.optim.Adam(ref.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.num_steps)
    gen, queue, expected = torch.Generator().manual_seed(cfg.seed), [], []
    for _ in range(cfg.num_steps):
        queue = queue or batches(X_len, cfg.batch_size, gen)
        idx = queue.pop()
        T = int(X_len[idx].max())
        loss = torch.nn.functional.cross_entropy(
            ref(X[idx, :T], X_len[idx], Y_in[idx]).flatten(0, 1), Y_out[idx].flatten())
        opt.zero_grad()
        loss.backward()
        norm = nn.utils.clip_grad_norm_(ref.parameters(), 1.0)
        assert norm > 1.0  # so the clipping matters here
        opt.step()
        sched.step()
        expected.append(loss.item())
    assert losses == pytest.approx(expected, rel=1e-5)
    for a, b in zip(model.parameters(), ref.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_each_output_depends_on_the_previous_one():
    """Seed: the decoder "outputs everything in one go". It emits one symbol at a
    time, each conditioned on the one before: change y_1 and step 2 changes."""
    torch.manual_seed(0)
    model = Seq2Seq(8, 6).eval()
    X, X_len, _, _ = encode_pairs([("3/3/98", "1998-03-03")])
    memory, state = model.encode(X, X_len)
    _, s1, _ = model.decode_step(torch.tensor([BOS]), state, memory)
    a, _, _ = model.decode_step(torch.tensor([TGT_ID["1"]]), s1, memory)
    b, _, _ = model.decode_step(torch.tensor([TGT_ID["2"]]), s1, memory)
    assert (a - b).abs().max() > 1e-3


def test_evaluation_helpers():
    torch.manual_seed(0)
    model = Seq2Seq(8, 6)
    pairs = [("3/3/98", "1998-03-03"), ("1/1/00", "2000-01-01")]
    right = exact_matches(model, pairs)
    assert right.dtype == torch.bool and right.shape == (2,)
    scores = by_format(model, all_days()[:6])
    assert set(scores) == {f"acc_{n}" for n in FORMAT_NAMES} | {
        "within_format_length_gap"}
    assert smooth([1.0, 3.0, 5.0, 7.0], k=2) == [1.0, 2.0, 4.0, 6.0]


def test_ngrams_and_clipped_precision():
    """Ng's example: 'the' seven times against two references. Plain precision (the
    wrong version) would give 7/7; clipping by the largest count in one reference
    ('the' twice) gives 2/7."""
    cand = "the the the the the the the".split()
    refs = ["the cat is on the mat".split(), "there is a cat on the mat".split()]
    assert ngrams(cand, 1) == {("the",): 7}
    assert math.isclose(clipped_precision(cand, refs, 1), 2 / 7)
    unclipped = sum(ngrams(cand, 1).values()) / len(cand)
    assert unclipped == 1.0
    cand2 = "the cat the cat on the mat".split()
    assert math.isclose(clipped_precision(cand2, refs, 2), 4 / 6)


def test_bleu_brevity_penalty_and_perfect_match():
    refs = ["the cat is on the mat".split(), "there is a cat on the mat".split()]
    assert bleu(refs[0], refs) == 1.0
    # every n-gram of "cat on the mat" is in a reference; only its length is short:
    # the closest reference length is 6, so BP = exp(1 - 6 / 4)
    assert math.isclose(bleu("cat on the mat".split(), refs), math.exp(-0.5))
    assert bleu("mat the on cat".split(), refs) == 0.0  # no bigram matches
    assert bleu([], refs) == 0.0
    # the brevity penalty uses the reference CLOSEST in length (6), not the shortest
    near = "a b c d e".split()
    assert math.isclose(bleu(near, ["x y z".split(), "a b c d e f".split()]),
                        math.exp(1 - 6 / 5))
    # a candidate longer than the closest reference pays no brevity penalty
    long = "there is a cat on the mat today".split()
    p = [clipped_precision(long, refs, n) for n in range(1, 5)]
    assert math.isclose(bleu(long, refs), math.exp(sum(map(math.log, p)) / 4))
