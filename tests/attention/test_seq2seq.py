"""Date generator, vocabularies, the hand-written bidirectional encoder, decoding."""

import calendar
import datetime as dt
import functools
import random
import re

import pytest
import torch
from torch import nn

from snippets.attention.seq2seq import (
    FIELDS, FORMATS, Encoder, Seq2Seq, all_days, encode_pairs, greedy_decode, make_data,
    number_words, ordinal_words, render, split_days, to_string, year_words,
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


def test_generator_round_trips_on_every_format():
    rng = random.Random(0)
    edges = [dt.date(1950, 1, 1), dt.date(1999, 12, 31), dt.date(2049, 12, 31)]
    for day in rng.sample(all_days(), 300) + edges:
        for fmt in FORMATS:
            assert parse(render(day, fmt), fmt) == day, (day, fmt)
        assert dt.date.fromisoformat(day.isoformat()) == day


def test_no_input_means_two_dates():
    days = all_days()[::7] + all_days()[3::7]  # every weekday, all 100 years
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
