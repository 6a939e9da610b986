"""A test that fails on the unmutated fixture: the harness must report an error."""

from tests.mutation.selftest.fixture import add


def test_add_wrongly():
    assert add(2, 2) == 5
