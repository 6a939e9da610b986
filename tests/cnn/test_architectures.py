"""Reference tests for snippets/cnn/architectures.py: counts by hand, by PyTorch's own
FLOP counter and against published numbers; receptive fields by hand and by gradient."""

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from snippets.cnn.architectures import (
    C3_TABLE,
    RBF,
    Block,
    alexnet,
    googlenet,
    layer_macs,
    lenet5,
    measured_receptive_field,
    num_params,
    receptive_fields,
    resnet,
    vgg,
    windows,
)

IMAGENET = (3, 224, 224)


def on_meta(build):
    with torch.device("meta"):
        return build()


def test_c3_is_table_i_of_the_paper():
    sizes = [len(t) for t in C3_TABLE]
    assert sizes == [3] * 6 + [4] * 9 + [6]
    # row 0 of Table I: S2 map 0 feeds C3 maps 0, 4, 5, 6, 9, 10, 11, 12, 14, 15
    assert [j for j, t in enumerate(C3_TABLE) if 0 in t] == [0, 4, 5, 6, 9, 10, 11, 12,
                                                             14, 15]
    assert all(sum(i in t for t in C3_TABLE) == 10 for i in range(6))  # 60 links / 6


def test_lenet5_has_the_papers_parameters_and_connections():
    torch.manual_seed(0)
    net = lenet5()
    assert net(torch.randn(2, 1, 32, 32)).shape == (2, 10)
    per_layer = [num_params(m) for m in net if num_params(m)]
    # C1, S2, C3, S4, C5, F6 as in Sec. II.B of the paper; the RBF codes are fixed
    assert per_layer == [156, 12, 1516, 32, 48_120, 10_164]
    assert num_params(net) == 60_000 and num_params(RBF()) == 0
    # The paper's "connections" count every multiply and every bias: 340,908 in all.
    macs = layer_macs(net, (1, 32, 32))
    biases = 6 * 28 * 28 + 16 * 10 * 10 + 120 + 84  # one per output of C1, C3, C5, F6
    subsampling = (6 * 14 * 14 + 16 * 5 * 5) * 5  # 4 inputs and a bias per output
    assert sum(macs.values()) + biases + subsampling == 340_908


def test_alexnet_by_hand():
    net = on_meta(alexnet)
    convs = [(96, 3, 11), (256, 48, 5), (384, 256, 3), (384, 192, 3), (256, 192, 3)]
    dense = [(9216, 4096), (4096, 4096), (4096, 1000)]
    by_hand = sum(o * i * k * k + o for o, i, k in convs) + sum(
        i * o + o for i, o in dense)
    assert num_params(net) == by_hand == 60_965_224
    macs = layer_macs(net, (3, 227, 227))
    assert macs["0"] == 55 * 55 * 96 * 3 * 11 * 11  # conv1: outputs times C_in k k
    assert macs["4"] == 27 * 27 * 256 * 48 * 5 * 5  # conv2 sees 48 of 96 channels


def test_alexnet_needs_227_not_224():
    """The paper's text says 224 x 224; with 11 x 11, stride 4 and no padding only 227
    gives its 55 x 55 maps. Fed 224, the last map is 5 x 5 and the first dense layer,
    built for 256 x 6 x 6, refuses it."""
    net = on_meta(alexnet)
    with torch.device("meta"):
        assert net[:3](torch.zeros(1, 3, 227, 227)).shape[-1] == 55
        assert net[:3](torch.zeros(1, 3, 224, 224)).shape[-1] == 54
        with pytest.raises(RuntimeError):
            net(torch.zeros(1, 3, 224, 224))


@pytest.mark.parametrize("build,expected", [
    (lambda: vgg(16), 138_357_544), (lambda: vgg(19), 143_667_240),
    (lambda: resnet(18), 11_689_512), (lambda: resnet(34), 21_797_672),
    (lambda: resnet(50), 25_557_032)])
def test_counts_equal_torchvisions_documented_ones(build, expected):
    """torchvision's model pages list these parameter counts for vgg16, vgg19,
    resnet18, resnet34 and resnet50: the same layers, written independently."""
    assert num_params(on_meta(build)) == expected


def test_vgg16_by_hand():
    channels = [3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    convs = sum(o * i * 9 + o for i, o in zip(channels, channels[1:]))
    dense = 25088 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000
    assert num_params(on_meta(lambda: vgg(16))) == convs + dense
    # the first conv: 224 x 224 x 64 outputs, each 3 x 3 x 3 multiply-adds
    assert layer_macs(on_meta(lambda: vgg(16)), IMAGENET)["0"] == 224 * 224 * 64 * 27


@pytest.mark.parametrize("build,shape", [
    (alexnet, (3, 227, 227)), (lambda: vgg(16), IMAGENET), (googlenet, IMAGENET),
    (lambda: resnet(18), IMAGENET), (lambda: resnet(50), IMAGENET),
    (lambda: resnet(50, stride_on_3x3=True), IMAGENET), (lenet5, (1, 32, 32))])
def test_hooks_agree_with_pytorchs_flop_counter(build, shape):
    """torch.utils.flop_counter counts 2 FLOPs per multiply-add, for convolutions and
    matrix products only, from the operators it sees: an independent count."""
    net = on_meta(build)
    with torch.device("meta"), FlopCounterMode(display=False) as counter:
        net(torch.zeros(1, *shape))
    macs = layer_macs(net, shape)
    rbf = sum(v for k, v in macs.items() if isinstance(net.get_submodule(k), RBF))
    assert counter.get_total_flops() == 2 * (sum(macs.values()) - rbf)


def test_layer_macs_on_small_layers_by_hand():
    net = nn.Sequential(nn.Conv2d(4, 6, 3, padding=1, groups=2), nn.Flatten(),
                        nn.Linear(6 * 5 * 5, 7))
    macs = layer_macs(net, (4, 5, 5))
    assert macs == {"0": 5 * 5 * 6 * (2 * 9), "2": 150 * 7}


def test_torchvision_stride_placement_changes_cost_not_size():
    """The paper strides the bottleneck's first 1x1 conv; torchvision ("v1.5") strides
    the 3x3, which then works on 4 times more positions."""
    paper = on_meta(lambda: resnet(50))
    tv = on_meta(lambda: resnet(50, stride_on_3x3=True))
    assert num_params(paper) == num_params(tv)
    p = sum(layer_macs(paper, IMAGENET).values())
    t = sum(layer_macs(tv, IMAGENET).values())
    assert 3.8e9 <= p < 3.9e9 and t > 4.0e9  # Table 1 of He et al.: 3.8 x 10^9


def test_googlenet_inception_outputs_and_total():
    net = on_meta(googlenet)
    with torch.device("meta"):
        h = torch.zeros(1, *IMAGENET)
        shapes = []
        for layer in net:
            h = layer(h)
            shapes.append(tuple(h.shape[1:]))
    # Table 1: 3a 256 x 28 x 28, 4e 832 x 14 x 14, 5b 1024 x 7 x 7
    for shape in ((256, 28, 28), (832, 14, 14), (1024, 7, 7)):
        assert shape in shapes
    assert shapes[-1] == (1000,)


def test_receptive_fields_by_hand():
    assert receptive_fields([(3, 1, 1)] * 3) == [3, 5, 7]
    assert receptive_fields([(3, 1, 1), (2, 2, 0), (3, 1, 1)]) == [3, 4, 8]
    assert receptive_fields(windows(on_meta(alexnet)))[-1] == 195
    assert receptive_fields(windows(on_meta(lambda: vgg(16))))[-1] == 212


@pytest.mark.parametrize("wins", [[(3, 1, 1)] * 4, [(7, 2, 3), (3, 2, 1), (3, 1, 1)],
                                  [(11, 4, 0), (3, 2, 0), (5, 1, 2)],
                                  [(1, 1, 0), (3, 2, 1), (1, 1, 0), (3, 1, 1)]])
def test_gradient_measures_the_formula(wins):
    r = receptive_fields(wins)[-1]
    assert measured_receptive_field(wins, r + 40) == r
    assert measured_receptive_field(wins, r - 2) < r  # a too small input clips it


def test_windows_follow_the_residual_branch_and_skip_shortcuts():
    wins = windows(on_meta(lambda: resnet(18)))
    assert len(wins) == 1 + 1 + 16  # stem conv, max pool, 8 blocks of 2 convs
    assert wins[:2] == [(7, 2, 3), (3, 2, 1)]
    assert all(k == 3 for k, _, _ in wins[2:])  # never a 1 x 1 projection
    assert receptive_fields(wins)[-1] == 435


def test_plain_resnet34_differs_only_by_its_projections():
    plain, res = on_meta(lambda: resnet(34, plain=True)), on_meta(lambda: resnet(34))
    projections = [(64, 128), (128, 256), (256, 512)]  # 1x1 conv + batch norm each
    extra = sum(i * o + 2 * o for i, o in projections)
    assert num_params(res) - num_params(plain) == extra


def test_block_shapes():
    x = torch.randn(2, 64, 8, 8)
    assert Block(64, 128, 2)(x).shape == (2, 128, 4, 4)
    assert Block(64, 256, 1, bottleneck=True)(x).shape == (2, 256, 8, 8)
    assert Block(64, 64, 1, shortcut=None)(x).shape == (2, 64, 8, 8)
