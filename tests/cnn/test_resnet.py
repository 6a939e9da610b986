"""Reference tests for snippets/cnn/resnet.py: the residual block from scratch against
the nn.Module one, the properties the page states, and the notes' vanishing-gradient
explanation run as the notes set it up."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snippets.cnn.architectures import (
    Block,
    layer_macs,
    num_params,
    zero_pad_shortcut,
)
from snippets.cnn.resnet import (
    Config,
    batch_norm,
    cifar_net,
    gradient_ratio,
    load,
    residual_block,
    train,
    weights_of,
)

CASES = [  # c_in, c_out, stride, bottleneck, shortcut
    (8, 8, 1, False, "B"),  # basic, identity (the shape stays)
    (8, 16, 2, False, "B"),  # basic, projection
    (8, 16, 2, False, "A"),  # basic, zero-padded identity
    (16, 16, 1, True, "B"),  # bottleneck, identity
    (8, 32, 2, True, "B"),  # bottleneck, projection
]


@pytest.mark.parametrize("c_in,c_out,stride,bottleneck,shortcut", CASES)
def test_scratch_block_matches_the_nn_block(c_in, c_out, stride, bottleneck, shortcut):
    torch.manual_seed(0)
    block = Block(c_in, c_out, stride, bottleneck, shortcut).train()
    for m in block.modules():  # non-trivial gamma and beta, so their gradients differ
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.5, 0.5)
    X = torch.randn(4, c_in, 9, 9, requires_grad=True)
    ours, ref = residual_block(X, weights_of(block), stride), block(X)
    assert ours.shape == ref.shape
    assert torch.allclose(ours, ref, atol=1e-5)
    g = torch.randn_like(ref)
    params = [X, *block.parameters()]
    grads = torch.autograd.grad(ours, params, g), torch.autograd.grad(ref, params, g)
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-4)


def test_batch_norm_matches_torch_in_training_mode():
    X, gamma, beta = torch.randn(5, 3, 4, 4), torch.rand(3) + 0.5, torch.randn(3)
    ref = F.batch_norm(X, None, None, gamma, beta, training=True)
    assert torch.allclose(batch_norm(X, gamma, beta), ref, atol=1e-5)
    X1 = torch.randn(5, 3, 11)  # and on 1-D signals (N, C, L)
    ref1 = F.batch_norm(X1, None, None, gamma, beta, training=True)
    assert torch.allclose(batch_norm(X1, gamma, beta), ref1, atol=1e-5)


def test_a_residual_block_can_be_the_identity_and_its_plain_twin_cannot():
    """With the last batch norm's gamma and beta at 0, F(x) = 0: the residual block
    returns ReLU(x), which is x for the non-negative inputs a previous ReLU gives it.
    The plain block with the same weights returns ReLU(0) = 0 everywhere."""
    torch.manual_seed(0)
    residual, plain = Block(8, 8).train(), Block(8, 8, shortcut=None).train()
    plain.load_state_dict(residual.state_dict())
    for block in (residual, plain):
        last = block.residual[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
    X = torch.randn(4, 8, 6, 6).relu()
    assert torch.equal(residual(X), X)
    assert torch.equal(plain(X), torch.zeros_like(X))


def test_the_shortcut_passes_the_gradient_straight_through():
    """d out / d x = I + dF/dx: with F switched off as above, the gradient reaching x
    is the upstream gradient itself (on the positive inputs), whatever the depth."""
    torch.manual_seed(0)
    blocks = nn.Sequential(*[Block(4, 4) for _ in range(20)]).train()
    for block in blocks:
        nn.init.zeros_(block.residual[-1].weight)
    X = (torch.rand(2, 4, 5, 5) + 0.1).requires_grad_()
    g = torch.randn(2, 4, 5, 5)
    (grad,) = torch.autograd.grad(blocks(X), X, g)
    assert torch.allclose(grad, g)


def test_option_a_adds_no_parameters_and_option_b_a_projection():
    a, b, plain = Block(16, 32, 2, shortcut="A"), Block(16, 32, 2), Block(16, 32, 2,
                                                                          shortcut=None)
    assert num_params(a) == num_params(plain)
    assert num_params(b) - num_params(plain) == 16 * 32 + 2 * 32  # 1x1 conv, batch norm
    assert Block(16, 16, 1, shortcut="B").kind == "identity"  # nothing to project


def test_zero_pad_shortcut_by_hand():
    x = torch.arange(1.0, 9).view(1, 2, 4)  # 2 channels, length 4
    out = zero_pad_shortcut(x, 4, 2)
    assert out.tolist() == [[[1, 3], [5, 7], [0, 0], [0, 0]]]
    assert zero_pad_shortcut(torch.ones(1, 2, 5, 5), 3, 2).shape == (1, 3, 3, 3)


def test_bottleneck_at_256_channels_costs_about_a_basic_block_at_64():
    """He et al. Sec. 4.1: the 1x1 layers reduce and restore the dimensions, so a
    bottleneck block on 256 channels costs about what a basic block on 64 does."""
    bottleneck, basic = Block(256, 256, bottleneck=True), Block(64, 64)
    convs = lambda b: sum(m.weight.numel() for m in b.modules()
                          if isinstance(m, nn.Conv2d))
    assert convs(bottleneck) == 256 * 64 + 64 * 64 * 9 + 64 * 256 == 69_632
    assert convs(basic) == 2 * 64 * 64 * 9 == 73_728
    wide = Block(256, 256)  # a basic block at 256 would cost 17 times more
    assert convs(wide) // convs(bottleneck) == 16
    m1 = sum(layer_macs(bottleneck, (256, 14, 14)).values())
    m2 = sum(layer_macs(basic, (64, 14, 14)).values())
    assert 0.9 < m1 / m2 < 1.0


@pytest.mark.parametrize("n", [1, 3, 9])
def test_cifar_net_has_6n_plus_2_layers_and_identical_twins(n):
    torch.manual_seed(0)
    plain = cifar_net(n, 4, residual=False)
    torch.manual_seed(0)
    residual = cifar_net(n, 4, residual=True)
    weighted = [m for m in plain.modules() if isinstance(m, (nn.Conv1d, nn.Linear))]
    assert len(weighted) == 6 * n + 2
    assert num_params(plain) == num_params(residual)
    a, b = plain.state_dict(), residual.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    X = torch.randn(3, 40)
    assert plain(X).shape == residual(X).shape == (3, 10)
    assert not torch.allclose(plain.eval()(X), residual.eval()(X))  # the shortcuts


class SigmoidBlock(Block):
    """The class notes' setting: sigmoid activations, no batch norm, no shortcut."""

    def forward(self, x):
        for m in self.residual:
            if isinstance(m, nn.Conv1d):
                x = torch.sigmoid(m(x))
        return x


def test_the_notes_sigmoid_net_vanishes_but_the_relu_bn_plain_56_does_not():
    """The notes blame poor training of deep nets on vanishing gradients (sigmoid),
    cured by ReLU. Their setting, 56 sigmoid layers without batch norm: the gradient at
    the first block is nil next to the last block's. Our plain 56 (ReLU, batch norm, He
    init): far from vanishing, it is larger near the input, and yet it trains worst."""
    X, y, _, _ = load(Config(num_samples=300))
    torch.manual_seed(0)
    notes = cifar_net(9, 8, residual=False)
    for m in notes:
        if isinstance(m, Block):
            m.__class__ = SigmoidBlock
    torch.manual_seed(0)
    ours = cifar_net(9, 8, residual=False)
    assert gradient_ratio(notes, X[:128], y[:128]) < 1e-6
    assert gradient_ratio(ours, X[:128], y[:128]) > 1


def test_gradient_ratio_leaves_the_net_untouched():
    torch.manual_seed(0)
    net = cifar_net(1, 4, residual=True)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    gradient_ratio(net, torch.randn(8, 40), torch.randint(0, 10, (8,)))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_train_gives_the_twins_the_same_batches_and_lowers_the_error():
    cfg = Config(num_samples=1000, num_epochs=4, width=8, warmup_epochs=0)
    data = load(cfg)
    torch.manual_seed(0)
    net = cifar_net(1, 8, residual=True)
    start = (net.eval()(data[0]).argmax(1) != data[1]).float().mean().item()
    result = train(net, data, cfg, seed=0)
    assert len(result["curve"]) == 4 and result["train_err"] < start - 0.1
    torch.manual_seed(0)
    again = train(cifar_net(1, 8, residual=True), data, cfg, seed=0)
    assert again["curve"] == result["curve"]  # same weights, same batches: same run
