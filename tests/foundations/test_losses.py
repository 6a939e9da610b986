"""Loss formulas vs PyTorch, and the slow-learning gradient of MSE after a sigmoid."""

import torch
import torch.nn.functional as F

from snippets.foundations.losses import classification_error, cross_entropy, grad_wrt_logit, mse


def test_cross_entropy_matches_torch_values_and_gradients():
    torch.manual_seed(0)
    logits = (torch.randn(16, 5) * 30).requires_grad_(True)  # large: tests the max shift
    y = torch.randint(0, 5, (16,))
    ours = cross_entropy(logits, y)
    (g_ours,) = torch.autograd.grad(ours, logits)
    ref = F.cross_entropy(logits, y)
    (g_ref,) = torch.autograd.grad(ref, logits)
    assert torch.allclose(ours, ref, atol=1e-5)
    assert torch.allclose(g_ours, g_ref, atol=1e-6)


def test_cross_entropy_is_minus_log_prob_of_true_class_and_nonnegative():
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    p = torch.softmax(logits, 1)[0, 0]
    assert torch.isclose(cross_entropy(logits, torch.tensor([0])), -torch.log(p))
    assert cross_entropy(logits, torch.tensor([2])) > 0  # the notes' formula lacks the minus


def test_mse_and_classification_error():
    y_hat, y = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.0, 0.0, 0.0])
    assert mse(y_hat, y) == F.mse_loss(y_hat, y) == (0 + 4 + 16) / 3
    logits = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    assert classification_error(logits, torch.tensor([0, 1, 1, 1])) == 0.25


def test_gradient_formulas_match_autograd():
    z = torch.linspace(-8, 8, 101, requires_grad=True)
    p = torch.sigmoid(z)
    (g_mse,) = torch.autograd.grad(((p - 1) ** 2).sum(), z, retain_graph=True)
    (g_ce,) = torch.autograd.grad(F.binary_cross_entropy(p, torch.ones_like(p),
                                                         reduction="sum"), z)
    assert torch.allclose(g_mse, grad_wrt_logit(p.detach(), "mse"), atol=1e-6)
    assert torch.allclose(g_ce, grad_wrt_logit(p.detach(), "ce"), atol=1e-5)


def test_mse_after_sigmoid_learns_slowly_from_a_confident_wrong_answer():
    p = torch.tensor([1e-3, 1e-2])  # true class is 1, the model says almost surely 0
    g_mse, g_ce = grad_wrt_logit(p, "mse").abs(), grad_wrt_logit(p, "ce").abs()
    assert (g_mse < 0.05 * g_ce).all()
    assert (g_ce > 0.98).all()  # cross-entropy pushes at almost full strength


def test_softmax_mse_gradient_also_vanishes_when_confidently_wrong():
    logits = torch.tensor([[-6.0, 6.0, 0.0]], requires_grad=True)  # true class 0
    onehot = torch.tensor([[1.0, 0.0, 0.0]])
    (g_mse,) = torch.autograd.grad(((torch.softmax(logits, 1) - onehot) ** 2).sum(), logits)
    (g_ce,) = torch.autograd.grad(F.cross_entropy(logits, torch.tensor([0])), logits)
    assert g_mse.abs().max() < 0.1 * g_ce.abs().max()
