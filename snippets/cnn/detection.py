"""Object detection basics: boxes, IoU, NMS, mAP and a small YOLO-style detector.

Page: cnn/detection.md
Run:  python -m snippets run cnn/detection

Images of shapes (rectangles, ellipses, triangles of random size, position and colour,
plus pixel noise) are rasterised here with numpy; nothing is downloaded. A YOLOv1-style
network (one S x S grid; every cell predicts B boxes with a confidence and C class
probabilities, all in one forward pass) is trained with the YOLOv1 loss and scored
with mAP@0.5, beside two baselines: one that never looks at the image (the class prior
at every cell) and a hand-made pipeline without learning (threshold the colour
difference from the background, connected components, class by fill ratio). Every
seed draws its own images and initial weights.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.patches import Rectangle
from matplotlib.patheffects import withStroke
from scipy import ndimage
from torch import nn

from snippets.common import progress, save_figure, seed_everything, use_style

CLASSES = ("rectangle", "ellipse", "triangle")


@dataclass
class Config:
    image_size: int = 48  # pixels per side
    grid: int = 6  # S: an S x S grid of cells, 8 x 8 pixels each
    num_boxes: int = 2  # B: boxes per cell (YOLOv1: 2)
    max_objects: int = 4  # each image holds 1 to max_objects shapes
    min_size: float = 8.0  # width and height of a shape's box, pixels
    max_size: float = 20.0
    max_overlap: float = 0.1  # two shapes' boxes overlap at most this IoU
    min_contrast: float = 0.6  # a shape's colour differs from the background by at
    # least this much (sum of the 3 channels' absolute differences)
    noise: float = 0.08  # std of the Gaussian noise on every pixel
    num_train: int = 2500  # images per seed
    num_test: int = 500
    num_channels: int = 16  # first conv layer's width (then x2, x4, x4)
    num_epochs: int = 10
    batch_size: int = 50
    lr: float = 3e-3  # Adam, cosine-decayed to 0
    lambda_coord: float = 5.0  # YOLOv1's weights of the box and no-object terms
    lambda_noobj: float = 0.5
    nms_iou: float = 0.5  # NMS drops a box whose IoU with a kept one exceeds this
    min_score: float = 0.01  # detections scored lower are dropped before NMS
    show_score: float = 0.1  # the NMS figure draws the boxes scored above this
    seeds: tuple = (0, 1)  # each: its own images and initial weights

    @classmethod
    def tiny(cls) -> "Config":
        return cls(num_train=48, num_test=8, num_epochs=1, num_channels=4)


# --8<-- [start:boxes]
def xyxy_to_cxcywh(b: torch.Tensor) -> torch.Tensor:
    """Corners (x1, y1, x2, y2) -> centre and size (cx, cy, w, h), last axis."""
    x1, y1, x2, y2 = b.unbind(-1)
    return torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), -1)


def cxcywh_to_xyxy(b: torch.Tensor) -> torch.Tensor:
    cx, cy, w, h = b.unbind(-1)
    return torch.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), -1)


def iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of xyxy boxes a (..., 4) and b (..., 4), broadcast like a + b."""
    wh = (torch.minimum(a[..., 2:], b[..., 2:])
          - torch.maximum(a[..., :2], b[..., :2])).clamp(min=0)  # no overlap: 0
    inter = wh[..., 0] * wh[..., 1]
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / (area_a + area_b - inter)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Every pair: (N, 4), (M, 4) -> (N, M), like torchvision.ops.box_iou."""
    return iou(a[:, None, :], b[None, :, :])
# --8<-- [end:boxes]


# --8<-- [start:nms]
def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float):
    """Greedy NMS, like torchvision.ops.nms: the indices kept, best score first."""
    order = scores.argsort(descending=True, stable=True)
    overlap = box_iou(boxes[order], boxes[order]) > iou_threshold
    alive = torch.ones(len(order), dtype=torch.bool)
    for i in range(len(order)):
        if alive[i]:  # the best box still alive is kept ...
            alive[i + 1:] &= ~overlap[i, i + 1:]  # ... and removes what it overlaps
    return order[alive]


def batched_nms(boxes, scores, labels, iou_threshold: float):
    """NMS within each class, like torchvision.ops.batched_nms: shift every class
    so far away that boxes of two classes never overlap."""
    if len(boxes) == 0:
        return torch.zeros(0, dtype=torch.long)
    span = boxes.max() - boxes.min() + 1
    return nms(boxes + labels[:, None].to(boxes) * span, scores, iou_threshold)
# --8<-- [end:nms]


# --8<-- [start:ap]
def match(boxes, scores, gt_boxes, iou_threshold: float = 0.5) -> np.ndarray:
    """One image, one class (the VOC rule): in order of score, a detection takes the
    ground-truth box it overlaps most; 1 (true positive) if that IoU reaches the
    threshold and no better detection took the box first, else 0."""
    tp = np.zeros(len(boxes))
    if len(boxes) == 0 or len(gt_boxes) == 0:
        return tp
    best, j = box_iou(boxes, gt_boxes).max(1)
    taken = set()
    for k in scores.argsort(descending=True, stable=True).tolist():
        if best[k] >= iou_threshold and j[k].item() not in taken:
            tp[k] = 1
            taken.add(j[k].item())
    return tp


def pr_curve(scores, tp, num_gt: int):
    """Recall and precision at each distinct score, best first (equal scores form
    one step: a detector cannot rank boxes it scores the same)."""
    scores, tp = np.asarray(scores, float), np.asarray(tp, float)
    order = np.argsort(-scores, kind="stable")
    scores, tp = scores[order], tp[order]
    last = np.r_[scores[1:] != scores[:-1], True]  # end of each run of equal scores
    hits, seen = np.cumsum(tp)[last], np.arange(1, len(tp) + 1)[last]
    return hits / num_gt, hits / seen


def average_precision(scores, tp, num_gt: int, interpolate: bool = True) -> float:
    """Area under one class's PR curve (all points, as VOC 2010 onwards). num_gt
    counts every ground-truth box of the class, found or not."""
    recall, precision = pr_curve(scores, tp, num_gt)
    if interpolate:  # p_interp(r) = the best precision at any recall >= r
        precision = np.maximum.accumulate(precision[::-1])[::-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def mean_average_precision(dets, gts, num_classes: int, iou_threshold=0.5):
    """dets: per image (boxes, scores, labels); gts: per image (boxes, labels).
    Returns mAP, each class's AP and each class's (scores, tp, num_gt)."""
    per_class = []
    for c in range(num_classes):
        scores, tp, num_gt = [], [], 0
        for (boxes, s, labels), (gt_boxes, gt_labels) in zip(dets, gts):
            mine, theirs = labels == c, gt_boxes[gt_labels == c]
            scores.append(s[mine].numpy())
            tp.append(match(boxes[mine], s[mine], theirs, iou_threshold))
            num_gt += len(theirs)
        per_class.append((np.concatenate(scores), np.concatenate(tp), num_gt))
    aps = [average_precision(*c) for c in per_class]
    return float(np.mean(aps)), aps, per_class
# --8<-- [end:ap]


# --8<-- [start:data]
def draw(image: np.ndarray, kind: int, box, colour) -> None:
    """Paint a filled shape whose bounding box is (x1, y1, x2, y2), in pixels."""
    centres = np.arange(image.shape[1]) + 0.5  # pixel (i, j) spans [j, j+1) x [i, i+1)
    y, x = centres[:, None], centres[None, :]
    x1, y1, x2, y2 = box
    cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
    if kind == 0:  # rectangle
        mask = (abs(x - cx) <= w / 2) & (abs(y - cy) <= h / 2)
    elif kind == 1:  # ellipse
        mask = ((x - cx) / (w / 2)) ** 2 + ((y - cy) / (h / 2)) ** 2 <= 1
    else:  # triangle, apex up: its half-width grows linearly from top to bottom
        mask = (y >= y1) & (y <= y2) & (abs(x - cx) <= w / 2 * (y - y1) / h)
    image[:, mask] = np.asarray(colour)[:, None]


def make_images(n: int, cfg: Config, rng: np.random.Generator):
    """n images (n, 3, H, W) in [0, 1], and per image its boxes (k, 4), labels (k,)."""
    H, cell = cfg.image_size, cfg.image_size / cfg.grid
    images, targets = np.empty((n, 3, H, H), np.float32), []
    for i in range(n):
        background = rng.uniform(0, 1, 3)
        images[i] = background[:, None, None]
        boxes, labels, cells = [], [], set()
        count = rng.integers(1, cfg.max_objects + 1)
        while len(boxes) < count:  # rejection sampling
            w, h = rng.uniform(cfg.min_size, cfg.max_size, 2)
            cx, cy = rng.uniform(w / 2, H - w / 2), rng.uniform(h / 2, H - h / 2)
            box = torch.tensor([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
            colour = rng.uniform(0, 1, 3)
            if ((cy // cell, cx // cell) in cells  # YOLOv1: one object per cell
                    or boxes and iou(torch.stack(boxes), box).max() > cfg.max_overlap
                    or np.abs(colour - background).sum() < cfg.min_contrast):
                continue
            kind = int(rng.integers(len(CLASSES)))
            draw(images[i], kind, box.tolist(), colour)
            boxes.append(box)
            labels.append(kind)
            cells.add((cy // cell, cx // cell))
        targets.append((torch.stack(boxes), torch.tensor(labels)))
    images += rng.normal(0, cfg.noise, images.shape).astype(np.float32)
    return torch.from_numpy(images.clip(0, 1)), targets


def encode(targets, cfg: Config) -> torch.Tensor:
    """The grid a YOLO network learns to output, (n, S, S, 5 + C): in the cell
    holding an object's centre, its (cx, cy, w, h) / image size, 1, one-hot class."""
    S = cfg.grid
    grid = torch.zeros(len(targets), S, S, 5 + len(CLASSES))
    for n, (boxes, labels) in enumerate(targets):
        for box, label in zip(xyxy_to_cxcywh(boxes) / cfg.image_size, labels):
            i, j = int(box[1] * S), int(box[0] * S)  # row from cy, column from cx
            grid[n, i, j, :5] = torch.cat((box, torch.ones(1)))
            grid[n, i, j, 5 + label] = 1.0
    return grid
# --8<-- [end:data]


# --8<-- [start:model]
class TinyYOLO(nn.Module):
    """Conv blocks shrink the 48 x 48 image to the 6 x 6 grid; a 1 x 1 conv gives
    every cell B x (x, y, sqrt w, sqrt h, confidence) and C class probabilities."""

    def __init__(self, cfg: Config):
        super().__init__()
        c, self.B = cfg.num_channels, cfg.num_boxes

        def block(c_in, c_out, stride=1, pool=True):
            return [nn.Conv2d(c_in, c_out, 3, stride, padding=1, bias=False),
                    nn.BatchNorm2d(c_out), nn.LeakyReLU(0.1)] \
                + ([nn.MaxPool2d(2)] if pool else [])

        self.body = nn.Sequential(  # 48 x 48 -> 24 x 24 -> 12 x 12 -> 6 x 6
            *block(3, c, stride=2, pool=False), *block(c, 2 * c),
            *block(2 * c, 4 * c), *block(4 * c, 4 * c, pool=False))
        self.head = nn.Conv2d(4 * c, 5 * self.B + len(CLASSES), 1)

    def forward(self, x):
        out = self.head(self.body(x)).permute(0, 2, 3, 1)  # (N, S, S, 5B + C)
        boxes = out[..., :5 * self.B].sigmoid()  # offsets, sqrt sizes, confidence
        probs = out[..., 5 * self.B:].softmax(-1)  # Pr(class | object)
        return torch.cat((boxes, probs), -1)


def cell_boxes(out: torch.Tensor, B: int) -> torch.Tensor:
    """Every cell's B boxes, xyxy as fractions of the image: (N, S, S, B, 4)."""
    S = out.shape[1]
    p = out[..., :5 * B].unflatten(-1, (B, 5))
    row, col = torch.arange(S).view(S, 1, 1), torch.arange(S).view(1, S, 1)
    cx, cy = (col + p[..., 0]) / S, (row + p[..., 1]) / S  # offsets inside the cell
    return cxcywh_to_xyxy(torch.stack((cx, cy, p[..., 2] ** 2, p[..., 3] ** 2), -1))
# --8<-- [end:model]


# --8<-- [start:loss]
def yolo_loss(out: torch.Tensor, target: torch.Tensor, cfg: Config) -> torch.Tensor:
    """The YOLOv1 loss (Redmon et al. 2016, eq. 3), summed over cells, averaged over
    images. out: (N, S, S, 5B + C) from TinyYOLO; target: (N, S, S, 5 + C)."""
    S, B = cfg.grid, cfg.num_boxes
    p = out[..., :5 * B].unflatten(-1, (B, 5))  # x, y, sqrt w, sqrt h, C
    obj = target[..., 4]  # 1_i^obj: an object's centre lies in cell i
    truth = cxcywh_to_xyxy(target[..., None, :4])
    overlap = iou(cell_boxes(out, B), truth).detach()  # (N, S, S, B): a target
    resp = F.one_hot(overlap.argmax(-1), B) * obj[..., None]  # 1_ij^obj
    row, col = torch.arange(S).view(S, 1), torch.arange(S).view(1, S)
    gt = torch.stack((target[..., 0] * S - col, target[..., 1] * S - row,
                      target[..., 2].sqrt(), target[..., 3].sqrt()), -1)
    coord = ((p[..., :4] - gt[..., None, :]) ** 2).sum(-1)  # x, y, sqrt w, sqrt h
    conf = p[..., 4]
    loss = (cfg.lambda_coord * (resp * coord).sum()
            + (resp * (conf - overlap) ** 2).sum()  # its target: the IoU
            + cfg.lambda_noobj * ((1 - resp) * conf ** 2).sum()
            + (obj[..., None] * (out[..., 5 * B:] - target[..., 5:]) ** 2).sum())
    return loss / len(out)
# --8<-- [end:loss]


# --8<-- [start:detect]
def detect(out: torch.Tensor, cfg: Config, use_nms: bool = True):
    """Per image: (boxes in pixels, scores, labels). Every box is scored for every
    class, Pr(class | object) x confidence; then NMS within each class."""
    B = cfg.num_boxes
    boxes = cell_boxes(out, B).flatten(1, 3) * cfg.image_size  # (N, S*S*B, 4)
    conf = out[..., 4:5 * B:5]  # (N, S, S, B)
    scores = (conf[..., None] * out[..., None, 5 * B:]).flatten(1, 3)  # (N, SSB, C)
    dets = []
    for b, s in zip(boxes, scores):
        idx, labels = (s > cfg.min_score).nonzero(as_tuple=True)
        b, s = b[idx], s[idx, labels]
        if use_nms:
            keep = batched_nms(b, s, labels, cfg.nms_iou)
            b, s, labels = b[keep], s[keep], labels[keep]
        dets.append((b, s, labels))
    return dets


def prior_detections(train_grid: torch.Tensor, n: int, cfg: Config):
    """A baseline that never looks at the image: in every cell a box of the mean
    training size at the cell's centre, scored for each class by how often that
    class had its centre in that cell in the training images."""
    S, H, C = cfg.grid, cfg.image_size, len(CLASSES)
    wh = train_grid[..., 2:4][train_grid[..., 4] > 0].mean(0) * H  # pixels
    centre = (torch.arange(S) + 0.5) * H / S
    cy, cx = torch.meshgrid(centre, centre, indexing="ij")
    boxes = cxcywh_to_xyxy(torch.stack((cx, cy, *wh.expand(S, S, 2).unbind(-1)), -1))
    freq = train_grid[..., 5:].mean(0).reshape(-1, C)  # (S * S, C)
    idx, labels = torch.ones(S * S, C).nonzero(as_tuple=True)
    return [(boxes.reshape(-1, 4)[idx], freq[idx, labels], labels)] * n


FILL = (1.0, np.pi / 4, 0.5)  # share of its box a rectangle, ellipse, triangle fills


def pipeline_detections(images: torch.Tensor, cfg: Config):
    """A baseline that looks at the image but learns nothing: smooth, mark the pixels
    whose colour differs from the border's median by over half the generator's
    minimum contrast, one box per connected blob, the class whose fill ratio is the
    nearest, the blob's area as the score."""
    dets = []
    for image in images.numpy():
        smooth = ndimage.median_filter(image, size=(1, 3, 3))  # keeps edges, not noise
        border = np.concatenate((smooth[:, 0], smooth[:, -1], smooth[:, 1:-1, 0],
                                 smooth[:, 1:-1, -1]), 1)
        diff = np.abs(smooth - np.median(border, 1)[:, None, None]).sum(0)
        blobs, _ = ndimage.label(diff > cfg.min_contrast / 2)
        boxes, scores, labels = [], [], []
        for k, (ys, xs) in enumerate(ndimage.find_objects(blobs), 1):
            area = (blobs[ys, xs] == k).sum()
            boxes.append((xs.start, ys.start, xs.stop, ys.stop))  # pixel j: [j, j+1)
            scores.append(float(area))
            labels.append(int(np.abs(area / blobs[ys, xs].size - np.array(FILL))
                              .argmin()))
        dets.append((torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                     torch.tensor(scores), torch.tensor(labels, dtype=torch.long)))
    return dets
# --8<-- [end:detect]


# --8<-- [start:train]
def train(model, images, grid, cfg: Config) -> list[float]:
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    steps = cfg.num_epochs * -(-len(images) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    losses = []
    for _ in progress(range(cfg.num_epochs), desc="epochs"):
        model.train()
        total = 0.0
        for idx in torch.randperm(len(images)).split(cfg.batch_size):
            loss = yolo_loss(model(images[idx]), grid[idx], cfg)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        losses.append(total / len(images))
    return losses
# --8<-- [end:train]


ZH = {
    "□ rectangle": "□ 矩形", "○ ellipse": "○ 椭圆", "△ triangle": "△ 三角形",
    "Each object belongs to the cell that holds its centre":
        "每个物体由它的中心所在的格子负责",
    "Before NMS: every box scoring above {}": "NMS 之前：得分高于 {} 的所有框",
    "After NMS (IoU threshold {})": "NMS 之后（IoU 阈值 {}）",
    "recall": "召回率", "precision": "精确率",
    "rectangle: AP {}\n(pipeline {}, prior {})": "矩形：AP {}\n（手工流程 {}，先验 {}）",
    "ellipse: AP {}\n(pipeline {}, prior {})": "椭圆：AP {}\n（手工流程 {}，先验 {}）",
    "triangle: AP {}\n(pipeline {}, prior {})": "三角形：AP {}\n（手工流程 {}，先验 {}）",
    "hand-made pipeline": "手工流程",
    "detector, raw": "检测器，原始", "detector, interpolated": "检测器，插值后",
    "prior baseline": "先验基线",
}
STYLE = ("-", "--", ":")  # line style per class: colour is not the only cue
MARK = ("□", "○", "△")
HALO = [withStroke(linewidth=3, foreground="black")]  # visible on any background


def show(ax, image, boxes=(), labels=(), scores=None, truth=()):
    H = image.shape[1]
    ax.imshow(image.permute(1, 2, 0).numpy(), extent=(0, H, H, 0))
    ax.set(xticks=[], yticks=[])
    ax.grid(False)
    for x1, y1, x2, y2 in truth:  # ground truth: a black and white outline
        for ec, lw in (("black", 2.5), ("white", 1)):
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=ec,
                                   lw=lw))
    order = range(len(boxes)) if scores is None else scores.argsort().tolist()
    for k in order:  # the best score is drawn last, on top
        (x1, y1, x2, y2), c = boxes[k].tolist(), int(labels[k])
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=1.5,
                               ec=f"C{c}", ls=STYLE[c], path_effects=HALO))
        if scores is not None:
            ax.text(x1, y1, f"{MARK[c]} {scores[k]:.2f}", fontsize=6, color="white",
                    backgroundcolor=f"C{c}", va="bottom")


def plot_targets(images, targets, cfg: Config, out: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.5))
    fig.subplots_adjust(top=0.86, bottom=0.1, wspace=0.05)
    step = cfg.image_size / cfg.grid
    for ax, image, (boxes, labels) in zip(axes, images, targets):
        show(ax, image, boxes, labels)
        for k in range(1, cfg.grid):
            ax.axhline(k * step, color="white", lw=0.6)
            ax.axvline(k * step, color="white", lw=0.6)
        for cx, cy in xyxy_to_cxcywh(boxes)[:, :2].tolist():
            ax.add_patch(Rectangle((cx // step * step, cy // step * step), step, step,
                                   fill=False, hatch="////", ec="white", lw=0))
            ax.plot(cx, cy, "x", color="white", ms=6, mew=2)
    handles = [plt.Line2D([], [], color=f"C{c}", ls=STYLE[c], label=f"{MARK[c]} {n}")
               for c, n in enumerate(CLASSES)]
    fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False,
               bbox_to_anchor=(0.5, -0.04))
    fig.suptitle("Each object belongs to the cell that holds its centre")
    save_figure(fig, out / "targets.svg", zh=ZH)


def plot_nms(images, raw, kept, targets, cfg: Config, out: Path) -> None:
    fig, axes = plt.subplots(2, len(images), figsize=(3.4 * len(images), 7.2))
    for row, dets in enumerate((raw, kept)):
        for ax, image, (b, s, labels), (gt, _) in zip(axes[row], images, dets,
                                                      targets):
            shown = s > cfg.show_score
            show(ax, image, b[shown], labels[shown], s[shown], gt.tolist())
    axes[0, 0].set_title(f"Before NMS: every box scoring above {cfg.show_score}",
                         loc="left")
    axes[1, 0].set_title(f"After NMS (IoU threshold {cfg.nms_iou})", loc="left")
    save_figure(fig, out / "nms.svg", zh=ZH)


def plot_pr(per_class, prior_class, pipe_class, out: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharey=True)
    for c, ax in enumerate(axes):
        recall, precision = pr_curve(*per_class[c])
        envelope = np.maximum.accumulate(precision[::-1])[::-1]
        ax.step(recall, precision, where="post", color="C0", lw=0.8,
                label="detector, raw")
        ax.step(recall, envelope, where="post", color="C0", lw=2,
                label="detector, interpolated")
        ax.plot(*pr_curve(*pipe_class[c]), "^:", color="C2", ms=3,
                label="hand-made pipeline")
        ax.plot(*pr_curve(*prior_class[c]), "s--", color="C1", ms=3,
                label="prior baseline")
        ax.set(xlabel="recall", xlim=(0, 1), ylim=(0, 1.02),
               title=f"{CLASSES[c]}: AP {average_precision(*per_class[c]):.2f}\n"
               f"(pipeline {average_precision(*pipe_class[c]):.2f}, "
               f"prior {average_precision(*prior_class[c]):.2f})")
    axes[0].set_ylabel("precision")
    axes[0].legend(loc="center left", fontsize=8)
    save_figure(fig, out / "pr.svg", zh=ZH)


def main(cfg: Config = Config(), out: Path = Path("out/cnn-detection")) -> dict:
    use_style()
    metrics, runs, start = {}, [], time.process_time()
    for seed in cfg.seeds:
        seed_everything(seed)
        rng = np.random.default_rng(seed)
        images, targets = make_images(cfg.num_train, cfg, rng)
        test_images, test_targets = make_images(cfg.num_test, cfg, rng)
        grid, model = encode(targets, cfg), TinyYOLO(cfg)
        losses = train(model, images, grid, cfg)
        with torch.no_grad():
            test_out = model.eval()(test_images)
        kept, raw = detect(test_out, cfg), detect(test_out, cfg, use_nms=False)
        prior = prior_detections(grid, cfg.num_test, cfg)
        pipe = pipeline_detections(test_images, cfg)
        res = {k: mean_average_precision(d, test_targets, len(CLASSES))
               for k, d in (("map", kept), ("map_no_nms", raw), ("prior_map", prior),
                            ("pipeline_map", pipe))}
        runs.append({k: v[0] for k, v in res.items()})
        metrics.update({f"seed{seed}_{k}": v[0] for k, v in res.items()})
        metrics.update({f"seed{seed}_ap_{name}": ap
                        for name, ap in zip(CLASSES, res["map"][1])})
        metrics.update({f"seed{seed}_final_loss": losses[-1],
                        f"seed{seed}_boxes_before_nms": sum(len(d[0]) for d in raw),
                        f"seed{seed}_boxes_after_nms": sum(len(d[0]) for d in kept),
                        f"seed{seed}_pipeline_boxes": sum(len(d[0]) for d in pipe),
                        f"seed{seed}_objects": sum(len(t[0]) for t in test_targets)})
        if seed == cfg.seeds[0]:
            plot_pr(res["map"][2], res["prior_map"][2], res["pipeline_map"][2], out)
            plot_targets(images[:3], targets[:3], cfg, out)
            plot_nms(test_images[:4], raw[:4], kept[:4], test_targets[:4], cfg, out)
    for key in ("map", "map_no_nms", "prior_map", "pipeline_map"):
        metrics[f"min_{key}"] = min(r[key] for r in runs)
        metrics[f"max_{key}"] = max(r[key] for r in runs)
    metrics["min_class_ap"] = min(metrics[f"seed{s}_ap_{c}"] for s in cfg.seeds
                                  for c in CLASSES)
    metrics["min_nms_gain"] = min(r["map"] - r["map_no_nms"] for r in runs)
    metrics["min_gain_over_prior"] = min(r["map"] - r["prior_map"] for r in runs)
    metrics["min_gain_over_pipeline"] = min(r["map"] - r["pipeline_map"] for r in runs)
    metrics["max_pipeline_boxes_per_object"] = max(
        metrics[f"seed{s}_pipeline_boxes"] / metrics[f"seed{s}_objects"]
        for s in cfg.seeds)
    metrics.update(num_seeds=len(cfg.seeds), num_train=cfg.num_train,
                   num_test=cfg.num_test, grid=cfg.grid, num_boxes=cfg.num_boxes,
                   image_size=cfg.image_size, num_epochs=cfg.num_epochs,
                   nms_iou=cfg.nms_iou, min_score=cfg.min_score,
                   show_score=cfg.show_score, predictors=cfg.grid ** 2 * cfg.num_boxes,
                   mean_objects=float(grid[..., 4].sum(-1).sum(-1).mean()),
                   num_params=sum(p.numel() for p in model.parameters()),
                   train_and_eval_cpu_s=time.process_time() - start)
    return metrics


CLAIMS = {
    "detector_map_above_0.8_on_every_seed": lambda m: m["min_map"] > 0.8,
    "every_class_ap_above_0.8_on_every_seed": lambda m: m["min_class_ap"] > 0.8,
    "detector_beats_the_prior_by_over_0.7_on_every_seed":
        lambda m: m["min_gain_over_prior"] > 0.7,
    "detector_beats_the_hand_made_pipeline_by_over_0.3_on_every_seed":
        lambda m: m["min_gain_over_pipeline"] > 0.3,
    "pipeline_finds_fewer_blobs_than_objects_on_every_seed":
        lambda m: m["max_pipeline_boxes_per_object"] < 0.95,
    "prior_baseline_map_below_0.05_on_every_seed":
        lambda m: m["max_prior_map"] < 0.05,
    "nms_raises_map_by_over_0.1_on_every_seed": lambda m: m["min_nms_gain"] > 0.1,
}
