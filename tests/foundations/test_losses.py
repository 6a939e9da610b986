"""Loss formulas vs PyTorch, the notes' wrong cross-entropy, maximum likelihood, and the
slow-learning gradient of MSE after a sigmoid."""

import math

import pytest
import torch
import torch.nn.functional as F

from snippets.foundations.losses import (classification_error, cross_entropy,
                                         grad_wrt_logit, least_squares_classifier,
                                         logistic_classifier, mse, with_bias)


def notes_cross_entropy(logits, y):
    """The class notes' L_i = sum_c 1[y_hat_i = c] log P(y_hat_i = c): no minus sign,
    and the indicator picks the *predicted* class. (y is ignored: that is the bug.)"""
    log_p = torch.log_softmax(logits, 1)
    return log_p[torch.arange(len(logits)), logits.argmax(1)].mean()


def test_cross_entropy_matches_torch_values_and_gradients():
    torch.manual_seed(0)
    logits = (torch.randn(16, 5) * 30).requires_grad_(True)  # large: max shift needed
    y = torch.randint(0, 5, (16,))
    ours = cross_entropy(logits, y)
    (g_ours,) = torch.autograd.grad(ours, logits)
    ref = F.cross_entropy(logits, y)
    (g_ref,) = torch.autograd.grad(ref, logits)
    assert torch.allclose(ours, ref, atol=1e-5)
    assert torch.allclose(g_ours, g_ref, atol=1e-6)


def test_cross_entropy_is_minus_log_prob_of_true_class_and_nonnegative():
    logits = torch.tensor([[2.0, 0.0, -1.0], [2.0, 0.0, -1.0]])
    y = torch.tensor([0, 2])  # the second sample's label is NOT the argmax
    p = torch.softmax(logits[0], 0)
    per_sample = torch.stack([-torch.log(p[0]), -torch.log(p[2])])
    assert torch.isclose(cross_entropy(logits, y), per_sample.mean())
    assert cross_entropy(logits, y) > 0
    # the notes' version: non-positive, and blind to the true label of sample 2
    wrong = notes_cross_entropy(logits, y)
    assert wrong <= 0
    assert not torch.isclose(wrong, cross_entropy(logits, y))
    assert wrong == notes_cross_entropy(logits, torch.tensor([0, 0]))
    assert cross_entropy(logits, torch.tensor([0, 0])) < cross_entropy(logits, y)


def test_minimizing_the_notes_formula_lowers_the_right_answer():
    logits = torch.tensor([[0.5, 0.0, 0.2]], requires_grad=True)
    y = torch.tensor([0])  # the model is right: class 0 is the label and the argmax
    steps = {}
    for loss_fn in (cross_entropy, notes_cross_entropy):
        logits.grad = None
        loss_fn(logits, y).backward()
        steps[loss_fn.__name__] = -logits.grad[0].clone()  # where descent moves logits
    assert steps["cross_entropy"][0] > 0  # raises the true class
    assert steps["notes_cross_entropy"][0] < 0  # lowers it: the missing minus sign
    logits.grad = None
    notes_cross_entropy(logits, torch.tensor([2])).backward()
    assert torch.equal(-logits.grad[0], steps["notes_cross_entropy"])  # label ignored


def test_mse_and_classification_error():
    y_hat, y = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.0, 0.0, 0.0])
    assert mse(y_hat, y) == F.mse_loss(y_hat, y) == (0 + 4 + 16) / 3
    logits = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    assert classification_error(logits, torch.tensor([0, 1, 1, 1])) == 0.25


def test_classification_error_cannot_train_a_model():
    """The notes call it 'suitable for classification tasks': not as a training loss."""
    torch.manual_seed(0)
    logits = torch.randn(32, 4, requires_grad=True)
    y = torch.randint(0, 4, (32,))
    err = classification_error(logits, y)
    assert err.grad_fn is None and not err.requires_grad  # nothing to backpropagate
    with pytest.raises(RuntimeError):
        err.backward()
    with torch.no_grad():  # a small step in any direction leaves the value unchanged
        for _ in range(20):
            nudged = logits + 1e-4 * torch.randn(32, 4)
            assert classification_error(nudged, y) == err
    ce = cross_entropy(logits, y)
    (g,) = torch.autograd.grad(ce, logits)
    assert g.abs().sum() > 0  # the surrogate does give a direction


def test_cross_entropy_is_the_categorical_negative_log_likelihood():
    torch.manual_seed(1)
    logits, y = torch.randn(10, 6, dtype=torch.float64), torch.randint(0, 6, (10,))
    nll = -torch.distributions.Categorical(logits=logits).log_prob(y).mean()
    assert torch.isclose(cross_entropy(logits, y), nll, atol=1e-12)


def test_mse_is_the_gaussian_negative_log_likelihood_up_to_constants():
    torch.manual_seed(2)
    y_hat, y, sigma = torch.randn(50), torch.randn(50), 0.7
    nll = -torch.distributions.Normal(y_hat, sigma).log_prob(y).mean()
    const = math.log(sigma * math.sqrt(2 * math.pi))
    assert torch.isclose(nll, mse(y_hat, y) / (2 * sigma**2) + const, atol=1e-6)


def test_cross_entropy_is_entropy_plus_kl_and_its_gradient_is_p_minus_q():
    torch.manual_seed(3)
    logits = torch.randn(8, 5, dtype=torch.float64, requires_grad=True)
    q = torch.softmax(torch.randn(8, 5, dtype=torch.float64), 1)  # soft targets
    p = torch.softmax(logits, 1)
    ce = -(q * torch.log(p)).sum(1)
    entropy = -(q * torch.log(q)).sum(1)
    kl = (q * torch.log(q / p)).sum(1)
    assert torch.allclose(ce, entropy + kl)
    assert torch.allclose(ce.mean(), F.cross_entropy(logits, q))
    (g,) = torch.autograd.grad(ce.sum(), logits)
    assert torch.allclose(g, p.detach() - q)


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
    # from a neutral start (p = 1/2) the two gradients are of the same order
    half = torch.tensor([0.5])
    assert grad_wrt_logit(half, "mse").abs() == 0.25
    assert grad_wrt_logit(half, "ce") == -0.5


def test_softmax_mse_gradient_also_vanishes_when_confidently_wrong():
    logits = torch.tensor([[-6.0, 6.0, 0.0]], requires_grad=True)  # true class 0
    onehot = torch.tensor([[1.0, 0.0, 0.0]])
    mse_loss = ((torch.softmax(logits, 1) - onehot) ** 2).sum()
    (g_mse,) = torch.autograd.grad(mse_loss, logits)
    (g_ce,) = torch.autograd.grad(F.cross_entropy(logits, torch.tensor([0])), logits)
    assert g_mse.abs().max() < 0.1 * g_ce.abs().max()


def test_least_squares_on_labels_is_pulled_by_points_that_are_too_correct():
    torch.manual_seed(4)
    y = torch.randint(0, 2, (200,)).double()
    X = torch.randn(200, 2, dtype=torch.double) + 1.5 * (2 * y[:, None] - 1)
    far = torch.randn(60, 2, dtype=torch.double) + 10.0  # class 1, far on its own side
    X2, y2 = torch.cat([X, far]), torch.cat([y, torch.ones(60).double()])

    def errors(w):
        return ((with_bias(X) @ w > 0).double() != y).sum().item()

    lsq, lsq2 = least_squares_classifier(X, y), least_squares_classifier(X2, y2)
    ce, ce2 = logistic_classifier(X, y), logistic_classifier(X2, y2)
    # the far points are classified right, yet least squares "corrects" them
    assert (with_bias(far) @ lsq > 1).all()
    assert errors(lsq2) >= errors(lsq) + 4
    assert errors(ce2) <= errors(ce) + 1


def test_least_squares_classifier_regresses_on_minus_one_and_plus_one():
    torch.manual_seed(5)
    X = torch.randn(30, 2, dtype=torch.double)
    y = (X[:, 0] > 0).double()
    A = torch.cat([torch.ones(30, 1, dtype=torch.double), X], 1)
    ref = torch.linalg.lstsq(A, (2 * y - 1)[:, None]).solution[:, 0]  # targets -1 / +1
    assert torch.allclose(least_squares_classifier(X, y), ref)


def test_logistic_classifier_is_gradient_descent_on_the_cross_entropy():
    torch.manual_seed(6)
    X = torch.randn(40, 2, dtype=torch.double)
    y = (X[:, 0] - X[:, 1] > 0).double()
    A = with_bias(X)
    w = torch.zeros(3, dtype=torch.double)
    for _ in range(5):  # the gradient of the mean BCE is A^T (sigmoid(A w) - y) / n
        w = w - 0.7 * A.T @ (torch.sigmoid(A @ w) - y) / len(y)
    ours = logistic_classifier(X, y, num_steps=5, lr=0.7)
    assert torch.allclose(ours, w, atol=1e-12)
    assert not ours.requires_grad
