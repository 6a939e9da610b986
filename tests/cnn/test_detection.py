"""Reference tests for snippets/cnn/detection.py: boxes, IoU, NMS, AP, the YOLO loss."""

import itertools
from dataclasses import replace

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from snippets.cnn.detection import (
    CLASSES,
    Config,
    TinyYOLO,
    average_precision,
    batched_nms,
    box_iou,
    cell_boxes,
    cxcywh_to_xyxy,
    detect,
    draw,
    encode,
    iou,
    make_images,
    match,
    mean_average_precision,
    nms,
    pipeline_detections,
    pr_curve,
    prior_detections,
    xyxy_to_cxcywh,
    yolo_loss,
)


def random_boxes(n, generator, size=20.0):
    xy = torch.rand(n, 2, generator=generator, dtype=torch.float64) * size
    wh = torch.rand(n, 2, generator=generator, dtype=torch.float64) * size / 2 + 0.5
    return torch.cat((xy, xy + wh), 1)


def clustered_boxes(n, generator):
    """Jittered copies of 8 boxes, like a detector's raw output around 8 objects."""
    base = random_boxes(8, generator)[torch.arange(n) % 8]
    return base + torch.randn(n, 4, generator=generator, dtype=torch.float64) * 0.8


# ---------------------------------------------------------------- boxes and IoU
def test_box_formats_by_hand_and_round_trip():
    xyxy = torch.tensor([[1.0, 2, 5, 10]])
    assert xyxy_to_cxcywh(xyxy).tolist() == [[3, 6, 4, 8]]
    assert cxcywh_to_xyxy(torch.tensor([[3.0, 6, 4, 8]])).tolist() == [[1, 2, 5, 10]]
    boxes = random_boxes(50, torch.Generator().manual_seed(0))
    assert torch.allclose(cxcywh_to_xyxy(xyxy_to_cxcywh(boxes)), boxes)


@pytest.mark.parametrize("a,b,expected", [
    ([0, 0, 2, 2], [0, 0, 2, 2], 1.0),  # identical
    ([0, 0, 2, 2], [1, 0, 3, 2], 1 / 3),  # shifted by half: 2 / (4 + 4 - 2)
    ([0, 0, 4, 4], [1, 1, 3, 3], 4 / 16),  # one inside the other
    ([0, 0, 2, 2], [2, 0, 4, 2], 0.0),  # touching edges: no area in common
    ([0, 0, 2, 2], [5, 5, 6, 6], 0.0),  # far apart (the clamp at 0 matters)
    ([0, 0, 3, 1], [1, 0, 4, 1], 0.5),  # 2 / (3 + 3 - 2)
])
def test_iou_hand_cases(a, b, expected):
    a, b = (torch.tensor([box], dtype=torch.float64) for box in (a, b))
    assert box_iou(a, b).item() == pytest.approx(expected)
    assert box_iou(b, a).item() == pytest.approx(expected)  # symmetric


def iou_by_pixels(a, b, scale=4):
    """Independent reference for integer boxes: paint both on a grid, count cells."""
    grid = np.zeros((2, 30 * scale, 30 * scale), bool)
    for k, (x1, y1, x2, y2) in enumerate((a, b)):
        grid[k, int(y1 * scale):int(y2 * scale), int(x1 * scale):int(x2 * scale)] = True
    return (grid[0] & grid[1]).sum() / (grid[0] | grid[1]).sum()


def test_box_iou_equals_counting_pixels():
    rng = np.random.default_rng(0)
    a = np.c_[rng.integers(0, 15, (6, 2)), np.zeros((6, 2))]
    a[:, 2:] = a[:, :2] + rng.integers(1, 12, (6, 2))
    b = np.c_[rng.integers(0, 15, (5, 2)), np.zeros((5, 2))]
    b[:, 2:] = b[:, :2] + rng.integers(1, 12, (5, 2))
    ours = box_iou(torch.tensor(a), torch.tensor(b)).numpy()
    ref = np.array([[iou_by_pixels(p, q) for q in b] for p in a])
    assert ours.shape == (6, 5)
    assert np.allclose(ours, ref) and (ref > 0).sum() >= 3  # some pairs overlap


def iou_of(p, q):
    """IoU of two xyxy boxes given as Python lists, written from the definition."""
    w = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
    h = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
    union = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - w * h
    return w * h / union


def test_box_iou_equals_a_loop_over_pairs():
    g = torch.Generator().manual_seed(1)
    a, b = random_boxes(7, g), random_boxes(9, g)

    ref = torch.tensor([[iou_of(p.tolist(), q.tolist()) for q in b] for p in a],
                       dtype=torch.float64)
    assert torch.allclose(box_iou(a, b), ref)
    assert torch.allclose(iou(a[:, None], b[None]), ref)  # the broadcasting form


# ---------------------------------------------------------------- NMS
def nms_reference(boxes, scores, t):
    """Textbook greedy NMS on Python lists: take the best, drop what overlaps it."""
    left = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    kept = []
    while left:
        best = left.pop(0)
        kept.append(best)
        left = [i for i in left
                if box_iou(boxes[best:best + 1], boxes[i:i + 1]).item() <= t]
    return kept


@pytest.mark.parametrize("seed,t", [(0, 0.5), (1, 0.3), (2, 0.7), (3, 0.0)])
def test_nms_equals_the_textbook_loop_and_its_fixed_point(seed, t):
    g = torch.Generator().manual_seed(seed)
    boxes = clustered_boxes(40, g)
    scores = torch.rand(40, generator=g, dtype=torch.float64)
    kept = nms(boxes, scores, t)
    assert kept.tolist() == nms_reference(boxes, scores, t)
    assert (scores[kept].diff() < 0).all()  # best score first, like torchvision
    # The definition, checked box by box: a box is kept exactly when no kept box with
    # a higher score overlaps it by more than t.
    keep = set(kept.tolist())
    overlap = box_iou(boxes, boxes)
    for i in range(40):
        beaten = any(scores[j] > scores[i] and overlap[i, j] > t for j in keep)
        assert (i in keep) == (not beaten)
    assert 1 < len(keep) < 40


def test_nms_is_greedy_and_keeps_an_iou_equal_to_the_threshold():
    boxes = torch.tensor([[0.0, 0, 10, 10], [2, 0, 12, 10], [4, 0, 14, 10]])
    # IoU(A, B) = IoU(B, C) = 80/120 > 0.5, IoU(A, C) = 60/140 < 0.5: B goes, so C
    # survives even though it overlaps B.
    assert nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5).tolist() == [0, 2]
    assert nms(boxes, torch.tensor([0.7, 0.9, 0.8]), 0.5).tolist() == [1]
    pair = torch.tensor([[0.0, 0, 3, 1], [1, 0, 4, 1]])  # IoU exactly 0.5
    assert nms(pair, torch.tensor([0.9, 0.8]), 0.5).tolist() == [0, 1]  # > removes
    assert nms(pair, torch.tensor([0.9, 0.8]), 0.49).tolist() == [0]


def test_batched_nms_equals_nms_class_by_class():
    g = torch.Generator().manual_seed(5)
    boxes = clustered_boxes(60, g)
    scores = torch.rand(60, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 3, (60,), generator=g)
    ref = []
    for c in range(3):
        idx = (labels == c).nonzero().flatten()
        ref += idx[nms(boxes[idx], scores[idx], 0.4)].tolist()
    kept = batched_nms(boxes, scores, labels, 0.4)
    assert sorted(kept.tolist()) == sorted(ref)
    assert (scores[kept].diff() < 0).all()


def test_batched_nms_separates_classes_even_with_negative_coordinates():
    """Predicted boxes can stick out of the image (x1 < 0). Shifting each class by
    max + 1 (what torchvision's offset trick does; it documents 0 <= x1) could then
    make two classes overlap; shifting by max - min + 1 cannot."""
    boxes = torch.tensor([[-30.0, -30, -10, -10], [0, 0, 20, 20], [-51, -51, -31, -31]])
    scores, labels = torch.tensor([0.9, 0.8, 0.7]), torch.tensor([0, 1, 1])
    assert batched_nms(boxes, scores, labels, 0.5).tolist() == [0, 1, 2]
    shifted = boxes + labels[:, None] * (boxes.max() + 1)  # box 2 lands on box 0
    assert nms(shifted, scores, 0.5).tolist() == [0, 1]


def test_nms_across_classes_drops_a_different_object_the_mistake():
    """Common mistake: one NMS over all classes. A triangle drawn over a rectangle's
    box is removed by the rectangle, though it is a different object."""
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11]])
    scores, labels = torch.tensor([0.9, 0.8]), torch.tensor([0, 2])
    assert box_iou(boxes[:1], boxes[1:]).item() > 0.5
    assert nms(boxes, scores, 0.5).tolist() == [0]  # the wrong version
    assert batched_nms(boxes, scores, labels, 0.5).tolist() == [0, 1]  # ours


# ---------------------------------------------------------------- AP and mAP
def test_average_precision_on_the_hand_worked_example():
    # 4 objects; 5 detections, best first: hit, miss, hit, hit, miss (one never found)
    scores, tp = [0.9, 0.8, 0.7, 0.6, 0.5], [1, 0, 1, 1, 0]
    recall, precision = pr_curve(scores, tp, 4)
    assert recall.tolist() == [0.25, 0.25, 0.5, 0.75, 0.75]
    assert precision.tolist() == pytest.approx([1, 1 / 2, 2 / 3, 3 / 4, 3 / 5])
    # interpolated: 0.25 * 1 + 0.25 * 0.75 + 0.25 * 0.75 = 5/8
    assert average_precision(scores, tp, 4) == pytest.approx(5 / 8)
    # raw precision: 0.25 * 1 + 0.25 * 2/3 + 0.25 * 3/4 = 29/48
    assert average_precision(scores, tp, 4, interpolate=False) == pytest.approx(29 / 48)
    # the order of the input does not matter, only the scores
    assert average_precision(scores[::-1], tp[::-1], 4) == pytest.approx(5 / 8)


@pytest.mark.parametrize("seed", range(4))
def test_raw_ap_equals_sklearn_scaled_by_the_recall_it_can_reach(seed):
    """sklearn's average_precision_score is the raw (not interpolated) area, with
    recall counted over the detections' positives; ours counts every ground-truth
    box, so ours = sklearn's x (found / all). Ties are grouped the same way."""
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 15, 60) / 15  # many ties on purpose
    tp = (rng.random(60) < 0.4).astype(float)
    num_gt = int(tp.sum()) + 7  # 7 objects were never detected
    ours = average_precision(scores, tp, num_gt, interpolate=False)
    sklearn = average_precision_score(tp, scores)
    assert ours == pytest.approx(sklearn * tp.sum() / num_gt)


@pytest.mark.parametrize("seed", range(4))
def test_interpolated_ap_is_the_integral_of_the_envelope(seed):
    """Independent reference: integrate p_interp(r) = max{p_k : r_k >= r} over r."""
    rng = np.random.default_rng(seed)
    scores, tp = rng.random(30), (rng.random(30) < 0.5).astype(float)
    num_gt = int(tp.sum()) + 3
    recall, precision = pr_curve(scores, tp, num_gt)
    grid = (np.arange(4000) + 0.5) / 4000  # midpoints: the error is below 1/4000
    envelope = [precision[recall >= r].max() if (recall >= r).any() else 0.0
                for r in grid]
    assert average_precision(scores, tp, num_gt) == pytest.approx(np.mean(envelope),
                                                                  abs=1e-3)
    assert average_precision(scores, tp, num_gt) >= average_precision(
        scores, tp, num_gt, interpolate=False)


def test_recall_counts_objects_never_detected_the_mistake():
    """Common mistake: dividing by the objects that were found instead of all of
    them. A detector that finds half the objects then scores a perfect AP."""
    scores, tp = [0.9, 0.8], [1, 1]
    assert average_precision(scores, tp, 4) == pytest.approx(0.5)  # ours
    assert average_precision(scores, tp, sum(tp)) == pytest.approx(1.0)  # the mistake


def test_match_counts_a_second_detection_of_an_object_as_false():
    gt = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]])
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 26, 30],
                          [40, 40, 50, 50]])
    scores = torch.tensor([0.6, 0.9, 0.8, 0.7])
    # best first: box 1 takes object 0 (IoU 0.82); box 0 finds it taken -> false;
    # box 2 overlaps object 1 by 0.6 -> hit; box 3 overlaps nothing -> false
    assert match(boxes, scores, gt).tolist() == [0, 1, 1, 0]
    assert match(boxes, scores, gt, iou_threshold=0.7).tolist() == [0, 1, 0, 0]
    assert match(boxes, scores, gt[:0]).tolist() == [0, 0, 0, 0]


def test_map_is_one_for_perfect_detections_and_zero_for_misplaced_ones():
    cfg = Config()
    _, targets = make_images(20, cfg, np.random.default_rng(0))
    perfect = [(b, torch.rand(len(b)) + 0.1, lab) for b, lab in targets]
    assert mean_average_precision(perfect, targets, 3)[0] == pytest.approx(1.0)
    shifted = [(b + torch.tensor([15.0, 0, 15, 0]), s, lab) for b, s, lab in perfect]
    assert mean_average_precision(shifted, targets, 3)[0] < 0.1
    wrong_class = [(b, s, (lab + 1) % 3) for b, s, lab in perfect]
    assert mean_average_precision(wrong_class, targets, 3)[0] == 0.0


# ---------------------------------------------------------------- data
def test_drawn_shapes_fill_their_boxes_as_geometry_says():
    for kind, fraction in ((0, 1.0), (1, np.pi / 4), (2, 0.5)):
        image = np.zeros((3, 200, 200))
        draw(image, kind, (20.0, 30.0, 180.0, 130.0), (1.0, 1.0, 1.0))
        mask = image[0] > 0
        assert mask.sum() / (160 * 100) == pytest.approx(fraction, rel=0.02)
        rows, cols = mask.any(1).nonzero()[0], mask.any(0).nonzero()[0]
        assert abs(rows[0] - 30) <= 1 and abs(rows[-1] - 129) <= 1
        assert abs(cols[0] - 20) <= 1 and abs(cols[-1] - 179) <= 1


def test_generated_images_respect_the_rules_of_the_data():
    cfg = Config()
    images, targets = make_images(100, cfg, np.random.default_rng(0))
    assert images.shape == (100, 3, 48, 48) and 0 <= images.min() <= images.max() <= 1
    counts = [len(b) for b, _ in targets]
    assert min(counts) == 1 and max(counts) == cfg.max_objects
    for boxes, labels in targets:
        wh = boxes[:, 2:] - boxes[:, :2]
        assert (wh >= cfg.min_size).all() and (wh <= cfg.max_size).all()
        assert (boxes >= 0).all() and (boxes <= cfg.image_size).all()
        cells = {tuple((c // 8).tolist()) for c in xyxy_to_cxcywh(boxes)[:, :2]}
        assert len(cells) == len(boxes)  # one object per cell
        overlap = box_iou(boxes, boxes) - torch.eye(len(boxes))
        assert overlap.max() <= cfg.max_overlap
        assert set(labels.tolist()) <= {0, 1, 2}


# ---------------------------------------------------------------- YOLO
def perfect_output(grid, cfg):
    """What a perfect network outputs for the target grid: box 0 of an object's cell
    on the object with confidence 1, the true class; every other box at its cell's
    centre (a quarter of the image wide and high) with confidence 0."""
    S, B = cfg.grid, cfg.num_boxes
    out = torch.full((*grid.shape[:3], 5 * B + len(CLASSES)), 0.5, dtype=grid.dtype)
    out[..., 4:5 * B:5] = 0.0
    obj = grid[..., 4] > 0
    row, col = torch.arange(S).view(S, 1), torch.arange(S).view(1, S)
    box = torch.stack((grid[..., 0] * S - col, grid[..., 1] * S - row,
                       grid[..., 2].sqrt(), grid[..., 3].sqrt(), grid[..., 4]), -1)
    out[..., :5][obj] = box[obj]
    out[..., 5 * B:] = grid[..., 5:]
    return out


def test_encode_puts_each_object_in_its_centre_cell():
    cfg = Config()
    boxes = torch.tensor([[10.0, 2, 20, 14], [30, 30, 46, 40]])
    targets = [(boxes, torch.tensor([2, 0]))]
    grid = encode(targets, cfg)
    assert grid[..., 4].sum() == 2
    assert grid[0, 1, 1].tolist() == pytest.approx(
        [15 / 48, 8 / 48, 10 / 48, 12 / 48, 1, 0, 0, 1])  # centre (15, 8): row 1, col 1
    assert grid[0, 4, 4].tolist() == pytest.approx(
        [38 / 48, 35 / 48, 16 / 48, 10 / 48, 1, 1, 0, 0])


def test_a_perfect_output_decodes_to_the_boxes_and_has_zero_loss():
    cfg = Config()
    _, targets = make_images(8, cfg, np.random.default_rng(3))
    grid = encode(targets, cfg).double()
    out = perfect_output(grid, cfg)
    boxes = cell_boxes(out, cfg.num_boxes) * cfg.image_size  # (N, S, S, B, 4)
    for n, (gt, _) in enumerate(targets):
        for box in gt.double():
            cx, cy = xyxy_to_cxcywh(box).tolist()[:2]
            assert torch.allclose(boxes[n, int(cy // 8), int(cx // 8), 0], box)
    assert yolo_loss(out, grid, cfg).item() == pytest.approx(0, abs=1e-10)
    dets = detect(out, cfg)
    assert mean_average_precision(dets, targets, 3)[0] == pytest.approx(1.0)
    # x, sqrt w, confidence of box 0, confidence of box 1, a class probability
    for k in (0, 2, 4, 9, 10):
        worse = out.clone()
        worse[..., k] += 0.1 * grid[..., 4]
        assert yolo_loss(worse, grid, cfg).item() > 1e-4


def yolo_loss_by_loops(out, grid, cfg):
    """The YOLOv1 loss written cell by cell and box by box, in Python scalars."""
    S, B, total = cfg.grid, cfg.num_boxes, 0.0
    for n, i, j in itertools.product(range(len(out)), range(S), range(S)):
        cell, t = out[n, i, j], grid[n, i, j]
        preds = []
        for b in range(B):
            x, y, sw, sh, conf = cell[5 * b:5 * b + 5].tolist()
            cx, cy = (j + x) / S, (i + y) / S
            preds.append(((cx - sw ** 2 / 2, cy - sh ** 2 / 2, cx + sw ** 2 / 2,
                           cy + sh ** 2 / 2), (x, y, sw, sh), conf))
        if t[4] == 0:  # no object: only the lambda_noobj confidence term
            total += cfg.lambda_noobj * sum(conf ** 2 for *_, conf in preds)
            continue
        cx, cy, w, h = t[:4].tolist()
        truth = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        ious = [iou_of(p[0], truth) for p in preds]
        r = max(range(B), key=lambda b: (ious[b], -b))  # the responsible predictor
        for b, (_, (x, y, sw, sh), conf) in enumerate(preds):
            if b == r:
                total += cfg.lambda_coord * ((x - (cx * S - j)) ** 2
                                             + (y - (cy * S - i)) ** 2)
                total += cfg.lambda_coord * ((sw - w ** 0.5) ** 2
                                             + (sh - h ** 0.5) ** 2)
                total += (conf - ious[b]) ** 2
            else:
                total += cfg.lambda_noobj * conf ** 2
        total += sum((p - q) ** 2 for p, q in zip(cell[5 * B:].tolist(),
                                                   t[5:].tolist()))
    return total / len(out)


def test_yolo_loss_equals_the_formula_written_with_loops():
    cfg = replace(Config(), lambda_coord=5.0, lambda_noobj=0.5)
    images, targets = make_images(3, cfg, np.random.default_rng(1))
    grid = encode(targets, cfg).double()
    torch.manual_seed(0)
    out = TinyYOLO(replace(cfg, num_channels=4)).double()(images.double()).detach()
    # move the boxes near the objects so both predictors get nonzero IoUs
    out = 0.5 * out + 0.5 * perfect_output(grid, cfg)
    assert yolo_loss(out, grid, cfg).item() == pytest.approx(
        yolo_loss_by_loops(out, grid, cfg), rel=1e-9)


def test_the_confidence_target_is_the_iou_and_is_not_differentiated():
    """d loss / d C = 2 (C - IoU) for the responsible box (the target is the IoU,
    not 1), and its x gets only the lambda_coord term: no gradient flows through the
    IoU used as a target."""
    cfg = Config()
    _, targets = make_images(2, cfg, np.random.default_rng(2))
    grid = encode(targets, cfg).double()
    out = (0.8 * perfect_output(grid, cfg) + 0.1).requires_grad_()
    yolo_loss(out, grid, cfg).backward()
    obj = grid[..., 4] > 0
    ious = iou(cell_boxes(out, 2), cxcywh_to_xyxy(grid[..., :4])[..., None, :])
    ious = ious.detach()[obj]
    assert (ious[:, 0] > ious[:, 1]).all()  # box 0 is responsible in every cell
    pred, grad = out.detach()[obj], out.grad[obj] * len(out)
    assert torch.allclose(grad[:, 4], 2 * (pred[:, 4] - ious[:, 0]))
    col = obj.nonzero()[:, 2]
    x_target = grid[obj][:, 0] * cfg.grid - col
    assert torch.allclose(grad[:, 0], 2 * cfg.lambda_coord * (pred[:, 0] - x_target))
    assert torch.allclose(grad[:, 9], 2 * cfg.lambda_noobj * pred[:, 9])


def test_model_outputs_one_vector_per_cell():
    cfg = Config()
    out = TinyYOLO(replace(cfg, num_channels=4)).eval()(torch.rand(5, 3, 48, 48))
    assert out.shape == (5, cfg.grid, cfg.grid, 5 * cfg.num_boxes + len(CLASSES))
    assert ((out[..., :10] > 0) & (out[..., :10] < 1)).all()  # sigmoids
    assert torch.allclose(out[..., 10:].sum(-1), torch.ones(5, 6, 6))  # softmax


def test_detect_scores_each_box_for_each_class():
    cfg = replace(Config(), min_score=0.0)
    out = torch.rand(1, 6, 6, 13)
    out[..., 10:] = out[..., 10:].softmax(-1)
    ((_, scores, labels),) = detect(out, cfg, use_nms=False)
    assert len(scores) == 6 * 6 * 2 * 3
    conf = out[0, ..., 4:10:5].reshape(-1)  # cell by cell, box by box
    probs = out[0, ..., 10:].reshape(-1, 3).repeat_interleave(2, 0)
    assert torch.allclose(scores, (conf[:, None] * probs).flatten())
    assert labels.tolist() == [0, 1, 2] * 72
    (_, kept, _), = detect(out, cfg)
    assert len(kept) < len(scores)


def test_prior_baseline_ignores_the_image():
    cfg = Config()
    _, targets = make_images(300, cfg, np.random.default_rng(4))
    grid = encode(targets, cfg)
    dets = prior_detections(grid, 3, cfg)
    assert len(dets) == 3 and all(d is dets[0] for d in dets)
    boxes, scores, _ = dets[0]
    assert len(boxes) == 6 * 6 * 3
    centres = xyxy_to_cxcywh(boxes)
    assert torch.allclose(centres[:, 2:], grid[..., 2:4][grid[..., 4] > 0].mean(0) * 48)
    assert torch.allclose(scores.sum(), grid[..., 5:].sum() / 300)
    assert torch.allclose(centres[:3, :2], torch.tensor([[4.0, 4.0]] * 3))


def image_of(shapes, background=(0.2, 0.3, 0.4), noise=0.0, seed=0):
    """One image with the given (kind, box, colour) shapes, like make_images."""
    image = np.empty((3, 48, 48))
    image[:] = np.asarray(background)[:, None, None]
    for kind, box, colour in shapes:
        draw(image, kind, box, colour)
    image += np.random.default_rng(seed).normal(0, noise, image.shape)
    return torch.from_numpy(image.clip(0, 1)).float()[None]


def test_pipeline_finds_separate_shapes_and_names_them_by_fill():
    shapes = [(0, (2.0, 3, 16, 13), (0.9, 0.9, 0.1)),  # rectangle
              (1, (26.0, 4, 44, 20), (0.9, 0.1, 0.1)),  # ellipse
              (2, (10.0, 26, 30, 44), (0.8, 0.8, 0.9))]  # triangle
    for seed in range(3):
        ((boxes, scores, labels),) = pipeline_detections(
            image_of(shapes, noise=0.03, seed=seed), Config())  # (the demo: 0.08)
        truth = torch.tensor([box for _, box, _ in shapes])
        assert len(boxes) == 3
        best, j = box_iou(truth, boxes).max(1)
        # the median filter cuts the triangle's thin apex: its box is shorter
        assert (best > 0.75).all() and labels[j].tolist() == [0, 1, 2]
        assert scores[j][0] < scores[j][2] < scores[j][1]  # areas 140, 180, 226
    # without noise a rectangle with integer corners gets its box exactly
    ((boxes, _, _),) = pipeline_detections(image_of(shapes[:1]), Config())
    assert boxes.tolist() == [[2, 3, 16, 13]]


def test_pipeline_merges_shapes_that_touch():
    """Why the hand-made pipeline misses objects: two touching shapes form one blob,
    one box that matches neither, whose fill ratio names a wrong class."""
    shapes = [(0, (4.0, 4, 20, 20), (0.9, 0.9, 0.1)),
              (0, (20.0, 8, 34, 22), (0.1, 0.9, 0.9))]  # shares the edge x = 20
    ((boxes, _, labels),) = pipeline_detections(image_of(shapes), Config())
    assert boxes.tolist() == [[4, 4, 34, 22]] and labels.tolist() != [0]
    truth = torch.tensor([box for _, box, _ in shapes])
    assert (box_iou(truth, boxes) < 0.5).all()
    apart = [(0, (4.0, 4, 18, 20), shapes[0][2]), (0, (22.0, 8, 34, 22), shapes[1][2])]
    assert len(pipeline_detections(image_of(apart), Config())[0][0]) == 2


def test_each_cell_sees_a_37_pixel_window():
    """Receptive field of the last layer, layer by layer: conv 3 stride 2 (3 pixels,
    jump 2), conv 3 (7), pool 2 (9, jump 4), conv 3 (17), pool 2 (21, jump 8),
    conv 3 (37). Measured: the pixels whose gradient reaches one inner cell."""
    size = 3
    for k, jump in ((3, 2), (2, 2), (3, 4), (2, 4), (3, 8)):  # after the first conv
        size += (k - 1) * jump
    assert size == 37
    torch.manual_seed(0)
    model = TinyYOLO(replace(Config(), num_channels=4)).double().eval()
    x = torch.rand(1, 3, 48, 48, dtype=torch.float64, requires_grad=True)
    model(x)[0, 3, 3, :10].sum().backward()
    seen = x.grad.abs().sum((0, 1)) > 0
    rows, cols = seen.any(1).nonzero().flatten(), seen.any(0).nonzero().flatten()
    assert rows.max() - rows.min() + 1 == size == cols.max() - cols.min() + 1
    # the cell spans pixels 24-31 and the window 9-45: 14 or 15 pixels beyond each
    # side, more than half the largest box (10), so a cell sees its object whole
    assert (rows.min().item(), rows.max().item()) == (9, 45)
