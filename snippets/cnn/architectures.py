"""Classic CNNs from their papers' layer tables, and the tools to measure them.

Page: cnn/resnet.md (the demo that uses this module is snippets/cnn/resnet.py)

LeNet-5 (LeCun et al. 1998), AlexNet (Krizhevsky et al. 2012), VGG-16/19 (Simonyan and
Zisserman 2015), GoogLeNet (Szegedy et al. 2015) and ResNet-18/34/50 (He et al. 2016),
written here because torchvision cannot be installed beside the pinned torch. Build them
under ``torch.device("meta")``: shapes only, no memory for the weights, no arithmetic.
Parameters are counted with ``numel``, multiply-adds with forward hooks, receptive
fields with the formula and with a gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


# --8<-- [start:lenet]
class LeCunTanh(nn.Module):
    def forward(self, a):
        return 1.7159 * torch.tanh(2 * a / 3)  # LeNet's squashing function


class Subsample(nn.Module):
    """S2 and S4: the sum of each 2 x 2 patch, times a trainable weight, plus a bias."""

    def __init__(self, c: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))

    def forward(self, x):
        w, b = self.weight.view(-1, 1, 1), self.bias.view(-1, 1, 1)
        return 4 * F.avg_pool2d(x, 2) * w + b


# Table I of the paper: the S2 maps that each of C3's 16 maps reads.
C3_TABLE = ([tuple((j + i) % 6 for i in range(3)) for j in range(6)]
            + [tuple((j + i) % 6 for i in range(4)) for j in range(6)]
            + [(0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5), tuple(range(6))])


class C3(nn.Module):
    """Sparse connections: map j convolves only the S2 maps C3_TABLE[j]."""

    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(len(t), 1, 5) for t in C3_TABLE)

    def forward(self, x):
        maps = [conv(x[:, list(t)]) for conv, t in zip(self.convs, C3_TABLE)]
        return torch.cat(maps, 1)


class RBF(nn.Module):
    """Output: squared distance to a fixed +-1 code per class (chosen, not trained)."""

    def __init__(self, n_in: int = 84, n_out: int = 10):
        super().__init__()
        i, j = torch.arange(1.0, n_out + 1), torch.arange(1.0, n_in + 1)
        codes = torch.sin(i[:, None] * j).sign()  # any fixed +-1 codes (paper: bitmaps)
        self.register_buffer("weight", codes)  # a buffer: not a trainable parameter

    def forward(self, x):
        return ((x[:, None, :] - self.weight) ** 2).sum(-1)


def lenet5() -> nn.Sequential:
    """LeCun et al. 1998, Fig. 2, for 1 x 32 x 32 inputs."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), LeCunTanh(),  # C1: 6 x 28 x 28
        Subsample(6), LeCunTanh(),  # S2: 6 x 14 x 14
        C3(), LeCunTanh(),  # C3: 16 x 10 x 10
        Subsample(16), LeCunTanh(),  # S4: 16 x 5 x 5
        nn.Conv2d(16, 120, 5), LeCunTanh(),  # C5: 120 x 1 x 1
        nn.Flatten(), nn.Linear(120, 84), LeCunTanh(),  # F6
        RBF(84, 10))
# --8<-- [end:lenet]


# --8<-- [start:alexnet_vgg]
def alexnet() -> nn.Sequential:
    """Krizhevsky et al. 2012, Fig. 2, for 3 x 227 x 227 inputs. Conv2, conv4 and conv5
    see only the half of the channels on their own GPU: groups=2."""
    def lrn():  # their k=2, n=5, alpha=1e-4, beta=0.75; PyTorch divides alpha by n
        return nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)
    return nn.Sequential(
        nn.Conv2d(3, 96, 11, stride=4), nn.ReLU(), lrn(), nn.MaxPool2d(3, 2),  # 27 x 27
        nn.Conv2d(96, 256, 5, padding=2, groups=2), nn.ReLU(), lrn(),
        nn.MaxPool2d(3, 2),  # 256 x 13 x 13
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 384, 3, padding=1, groups=2), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1, groups=2), nn.ReLU(),
        nn.MaxPool2d(3, 2),  # 256 x 6 x 6
        nn.Flatten(), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 1000))


def vgg(depth: int = 16) -> nn.Sequential:
    """Simonyan and Zisserman 2015, Table 1, columns D (16) and E (19); 3 x 224 x 224
    inputs."""
    layers, c_in = [], 3
    convs = {16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}[depth]
    for n, c in zip(convs, (64, 128, 256, 512, 512)):
        for _ in range(n):
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.ReLU()]
            c_in = c
        layers.append(nn.MaxPool2d(2, 2))  # halves the map: 224 -> 112 -> ... -> 7
    return nn.Sequential(
        *layers, nn.Flatten(), nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 1000))
# --8<-- [end:alexnet_vgg]


# --8<-- [start:googlenet]
def conv_relu(c_in: int, c_out: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride, padding=k // 2), nn.ReLU())


class Inception(nn.Module):
    """Four branches side by side, concatenated along the channels (Fig. 2b)."""

    def __init__(self, c_in, c1, c3_reduce, c3, c5_reduce, c5, pool_proj):
        super().__init__()
        self.branches = nn.ModuleList([
            conv_relu(c_in, c1, 1),
            nn.Sequential(conv_relu(c_in, c3_reduce, 1), conv_relu(c3_reduce, c3, 3)),
            nn.Sequential(conv_relu(c_in, c5_reduce, 1), conv_relu(c5_reduce, c5, 5)),
            nn.Sequential(nn.MaxPool2d(3, 1, padding=1),
                          conv_relu(c_in, pool_proj, 1))])

    def forward(self, x):
        return torch.cat([branch(x) for branch in self.branches], dim=1)


# Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj; "M": 3 x 3 max pool /2
GOOGLENET = [(64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64), "M",
             (192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64),
             (128, 128, 256, 24, 64, 64), (112, 144, 288, 32, 64, 64),
             (256, 160, 320, 32, 128, 128), "M",
             (256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128)]


def googlenet() -> nn.Sequential:
    """Szegedy et al. 2015, Table 1, for 3 x 224 x 224, without the two auxiliary
    classifiers (they exist only during training)."""
    def lrn():
        return nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)
    layers = [conv_relu(3, 64, 7, stride=2), nn.MaxPool2d(3, 2, ceil_mode=True), lrn(),
              conv_relu(64, 64, 1), conv_relu(64, 192, 3), lrn(),
              nn.MaxPool2d(3, 2, ceil_mode=True)]  # 192 x 28 x 28
    c_in = 192
    for spec in GOOGLENET:
        if spec == "M":
            layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
            continue
        layers.append(Inception(c_in, *spec))
        c_in = spec[0] + spec[2] + spec[4] + spec[5]  # the four branches, stacked
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Dropout(0.4),
                         nn.Linear(1024, 1000))
# --8<-- [end:googlenet]


# --8<-- [start:block]
def zero_pad_shortcut(x: torch.Tensor, c_out: int, stride: int) -> torch.Tensor:
    """Option A: keep every stride-th position, append zero channels. No parameters."""
    x = x[(..., *[slice(None, None, stride)] * (x.dim() - 2))]
    return F.pad(x, (0, 0) * (x.dim() - 2) + (0, c_out - x.shape[1]))


class Block(nn.Module):
    """out = ReLU(F(x) + shortcut(x)) (He et al. 2016, Fig. 2 and Fig. 5).

    F: 3x3 -> 3x3 (basic) or 1x1 -> 3x3 -> 1x1 (bottleneck, 4 times narrower inside),
    each conv followed by batch norm, ReLU between them. shortcut: "B" a 1x1 projection
    with batch norm where the shape changes, "A" zero padding there, None no shortcut
    at all (the plain twin). Where the shape stays, "A" and "B" are the identity.
    The paper strides the first conv of F; stride_on_3x3 is torchvision's choice."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, bottleneck: bool = False,
                 shortcut: str | None = "B", dim: int = 2, stride_on_3x3: bool = False):
        super().__init__()
        Conv, Norm = ((nn.Conv1d, nn.BatchNorm1d) if dim == 1
                      else (nn.Conv2d, nn.BatchNorm2d))
        w = c_out // 4 if bottleneck else c_out
        specs = ([(c_in, w, 1), (w, w, 3), (w, c_out, 1)] if bottleneck
                 else [(c_in, c_out, 3), (c_out, c_out, 3)])
        at = 1 if bottleneck and stride_on_3x3 else 0  # which conv of F strides
        layers = []
        for i, (a, b, k) in enumerate(specs):
            s = stride if i == at else 1
            layers += [Conv(a, b, k, s, padding=k // 2, bias=False), Norm(b), nn.ReLU()]
        self.residual = nn.Sequential(*layers[:-1])  # F(x): no ReLU before the sum
        changes = stride != 1 or c_in != c_out
        self.kind = shortcut if shortcut is None or changes else "identity"
        self.c_out, self.stride = c_out, stride
        if self.kind == "B":
            self.shortcut = nn.Sequential(Conv(c_in, c_out, 1, stride, bias=False),
                                          Norm(c_out))

    def forward(self, x):
        out = self.residual(x)
        if self.kind == "identity":
            out = out + x
        elif self.kind == "A":
            out = out + zero_pad_shortcut(x, self.c_out, self.stride)
        elif self.kind == "B":
            out = out + self.shortcut(x)
        return F.relu(out)
# --8<-- [end:block]


# --8<-- [start:resnet]
def resnet(depth: int = 18, plain: bool = False, stride_on_3x3: bool = False):
    """He et al. 2016, Table 1, for 3 x 224 x 224; plain=True drops every shortcut."""
    blocks, bottleneck = {18: ((2, 2, 2, 2), False), 34: ((3, 4, 6, 3), False),
                          50: ((3, 4, 6, 3), True)}[depth]
    layers = [nn.Conv2d(3, 64, 7, 2, padding=3, bias=False), nn.BatchNorm2d(64),
              nn.ReLU(), nn.MaxPool2d(3, 2, padding=1)]  # 64 x 56 x 56
    c_in = 64
    for stage, n in enumerate(blocks):
        c_out = 64 * 2 ** stage * (4 if bottleneck else 1)
        for j in range(n):
            stride = 2 if j == 0 and stage > 0 else 1  # halve the map, once per stage
            layers.append(Block(c_in, c_out, stride, bottleneck, None if plain else "B",
                                stride_on_3x3=stride_on_3x3))
            c_in = c_out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(c_in, 1000))
# --8<-- [end:resnet]


# --8<-- [start:count]
def num_params(net: nn.Module) -> int:
    """Trainable parameters (LeNet's fixed output codes are a buffer: not counted)."""
    return sum(p.numel() for p in net.parameters())


def layer_macs(net: nn.Module, input_shape) -> dict[str, int]:
    """Multiply-adds per example of every convolution and dense layer, by name.

    Each output number reads weight[0].numel() weights: C_in / groups * k * k for a
    convolution, in_features for a dense layer. Biases, pooling, norms: not counted."""
    macs = {}

    def hook(name):
        def record(module, inputs, output):
            macs[name] = output[0].numel() * module.weight[0].numel()
        return record

    kinds = (nn.Conv1d, nn.Conv2d, nn.Linear, RBF)
    handles = [m.register_forward_hook(hook(name)) for name, m in net.named_modules()
               if isinstance(m, kinds)]
    with torch.no_grad():
        net(torch.zeros(1, *input_shape, device=next(net.parameters()).device))
    for h in handles:
        h.remove()
    return macs
# --8<-- [end:count]


# --8<-- [start:receptive_field]
def windows(net: nn.Module) -> list[tuple[int, int, int]]:
    """(kernel, stride, padding) of each conv and pooling on the longest path, in order.

    For a sequential net or a ResNet (a 1x1 shortcut never sees further than the
    residual branch beside it, so shortcuts are skipped)."""
    out = []
    for name, m in net.named_modules():
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d)) and "shortcut" not in name:
            k, s, p = (v if isinstance(v, int) else v[0]
                       for v in (m.kernel_size, m.stride, m.padding))
            out.append((k, s, p))
    return out


def receptive_fields(wins) -> list[int]:
    """r_l = r_(l-1) + (k_l - 1) * (product of the strides before layer l), r_0 = 1."""
    r, jump, out = 1, 1, []
    for k, stride, _ in wins:
        r += (k - 1) * jump
        jump *= stride
        out.append(r)
    return out


def measured_receptive_field(wins, size: int) -> int:
    """Width of the input patch that reaches the centre output of a one-channel copy
    of the layers (same windows, all weights 1, no non-linearity: no path cancels)."""
    X = torch.zeros(1, 1, size, size, dtype=torch.float64, requires_grad=True)
    h = X
    for k, stride, padding in wins:
        h = F.conv2d(h, torch.ones(1, 1, k, k, dtype=torch.float64), stride=stride,
                     padding=padding)
    h[0, 0, h.shape[2] // 2, h.shape[3] // 2].backward()
    cols = (X.grad[0, 0] != 0).any(dim=0).nonzero().flatten()
    return int(cols.max() - cols.min() + 1)
# --8<-- [end:receptive_field]
