"""The tests of fixture.py (named so that `pytest tests` does not collect them)."""

from tests.mutation.selftest.fixture import Scaler, add, clip, common, count_up, larger


def test_add():
    assert add(2, 3) == 5


def test_clip():
    assert clip(5, 3) == 3
    assert clip(1, 3) == 1


def test_count_up():
    assert count_up(3) == 3


def test_larger():
    assert larger(1, 2) == 2


def test_common():
    assert common(4, 6) == 2


def test_scaler():
    assert Scaler(3).apply(2) == 6
