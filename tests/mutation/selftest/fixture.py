"""Fixture for tests/test_mutants.py: small functions whose mutants' fates are known.

fixture_checks.py tests them; the comments say what must happen to each mutant.
"""

import functools
import math


def add(a, b):
    return a + b  # + -> - and return None: killed (the module no longer imports)


if add(2, 2) != 4:  # runs at import, as module-level code in a demo does
    raise ImportError("add is broken")


def clip(x, hi):
    if x > hi:  # > -> >= survives: no test has x == hi; negated: killed
        return hi
    return x


def count_up(n):
    i = 0  # 0 -> 1 survives: count_up(3) is still 3
    while i < n:  # < -> <=: killed (returns 4)
        i += 1  # -= or removed: never ends, killed by the timeout
    return i


def larger(a, b):
    return max(a, b)  # max -> min: killed; max(b, a) is not tried: max is symmetric


def common(a, b):
    return math.gcd(a, b)  # arguments swapped: survives (gcd is symmetric too)


def untested(x):
    return x * 2  # no test calls it: an error, neither killed nor survived


def logged(f):
    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        return f(*args, **kwargs)

    return wrapper


class Scaler:
    def __init__(self, k):
        self.k = k  # removed: killed

    @logged  # decorated methods are mutated too
    def apply(self, x):
        return self.k * x  # * -> /: killed
