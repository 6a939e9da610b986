"""Every test draws the same random numbers on every run.

Tests that use unseeded `torch.randn`/`np.random` would otherwise see a new draw on each
CI run, and a bound that holds for almost every draw fails once in a while. The seed
comes from the test's id, so tests do not share one stream.
"""

import random
import zlib

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_every_test(request):
    seed = zlib.crc32(request.node.nodeid.encode())
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
