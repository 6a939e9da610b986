"""Reference tests for snippets/gan/conditional.py (page: gan/conditional.md)."""

import numpy as np
import torch
import torch.nn.functional as F

from snippets.gan.conditional import (NUM_CLASSES, Discriminator, Generator,
                                      first_layer_with_embedding, load_data,
                                      mean_pairwise_distance)


def test_one_hot_concat_equals_linear_plus_embedding():
    torch.manual_seed(0)
    latent_dim = 5
    linear = torch.nn.Linear(latent_dim + NUM_CLASSES, 7)
    lin, emb = first_layer_with_embedding(linear, latent_dim)
    z, y = torch.randn(12, latent_dim), torch.randint(NUM_CLASSES, (12,))
    ours = linear(torch.cat([z, F.one_hot(y, NUM_CLASSES).float()], dim=1))
    torch.testing.assert_close(ours, lin(z) + emb(y))


def test_generator_output_depends_on_the_label():
    torch.manual_seed(0)
    G = Generator(4, 16)
    z = torch.randn(3, 4)
    X3, X5 = G(z, torch.full((3,), 3)), G(z, torch.full((3,), 5))
    assert X3.shape == (3, 64) and X3.abs().max() <= 1
    assert not torch.allclose(X3, X5)
    D = Discriminator(16)
    assert D(X3, torch.full((3,), 3)).shape == (3, 1)


def test_data_is_scaled_to_tanh_range_and_stratified():
    X_train, X_test, y_train, y_test = load_data(0)
    assert X_train.min() == -1 and X_train.max() == 1 and X_train.shape[1] == 64
    assert len(np.unique(y_test)) == NUM_CLASSES


def test_mean_pairwise_distance_by_hand():
    X = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]])  # distances 5, 0, 5
    assert mean_pairwise_distance(X) == 10 / 3
    assert mean_pairwise_distance(np.zeros((4, 2))) == 0  # collapsed: no variety
