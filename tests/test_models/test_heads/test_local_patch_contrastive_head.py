"""Tests of LocalPatchContrastiveHead: geometry, pooling, InfoNCE."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmselfsup.models.necks import MoCoV2Neck

from medssl.models.heads import LocalPatchContrastiveHead
from medssl.models.heads.local_patch_contrastive_head import overlap_grid_boxes


def _vp(box, flip=False, shape=(64, 64)):
    return dict(crop_bbox=tuple(float(v) for v in box), flip=flip,
                img_shape=shape)


def _coord_map(params, fh, fw, center_offset=0.5):
    """Feature map (1, 2, fh, fw) whose channels are the original-slice
    (x, y) at each feature's receptive-field centre in the view described by
    params (ResNet geometry: feature j sees view pixel S*j + offset)."""
    x0, y0, x1, y1 = params['crop_bbox']
    h, w = params['img_shape']
    xs = torch.arange(fw, dtype=torch.float64) * w / fw + center_offset
    ys = torch.arange(fh, dtype=torch.float64) * h / fh + center_offset
    if params['flip']:
        xs = w - xs
    ox = x0 + xs * (x1 - x0) / w
    oy = y0 + ys * (y1 - y0) / h
    gx = ox.view(1, fw).expand(fh, fw)
    gy = oy.view(fh, 1).expand(fh, fw)
    return torch.stack([gx, gy])[None]


def _head(g=2, **kw):
    return LocalPatchContrastiveHead(grid_size=g, feat_dim=3, **kw)


def _local_loss(head, neck, feat_q, feat_k, view_params, input_hw):
    """The local loss as MedMoCo composes it (one projector here)."""
    def embed(feat, boxes):
        pooled = head.pool(feat, boxes, input_hw)
        n, k, c = pooled.shape
        z = neck((pooled.reshape(n * k, c), ))[0]
        return F.normalize(z.view(n, k, -1), dim=-1)

    boxes_q, boxes_k, valid = head.grid_boxes(
        view_params, feat_hw=tuple(feat_q.shape[-2:]), input_hw=input_hw)
    q = embed(feat_q, boxes_q)
    with torch.no_grad():
        k = embed(feat_k, boxes_k)
    return head.loss(q, k, valid)


def test_grid_geometry():
    a = _vp((0, 0, 32, 32))
    b = _vp((16, 16, 48, 48), flip=True)
    ba, bb, valid = overlap_grid_boxes(a, b, 2)
    assert valid
    # Overlap [16, 32]^2 -> cells of 8 original px; view a scale 2.
    assert ba[0].tolist() == [32.0, 32.0, 48.0, 48.0]
    # In b (scale 2, flipped): x in [16, 24] -> [0, 16] -> flipped [48, 64].
    assert bb[0].tolist() == [48.0, 0.0, 64.0, 16.0]
    _, _, valid = overlap_grid_boxes(_vp((0, 0, 10, 10)),
                                     _vp((20, 20, 30, 30)), 2)
    assert not valid


@pytest.mark.parametrize('flip_b', [False, True])
def test_identical_views_cells_coincide(flip_b):
    head = _head(g=4)
    a = _vp((5, 7, 45, 50), flip=flip_b)
    b = _vp((5, 7, 45, 50), flip=flip_b)
    feat = torch.randn(1, 2, 8, 8, dtype=torch.float64)
    ba, bb, valid = head.grid_boxes([[a, b]])
    assert valid.all() and torch.equal(ba, bb)
    pa = head.pool(feat, ba, (64, 64))
    pb = head.pool(feat.clone(), bb, (64, 64))
    assert torch.equal(pa, pb)


def test_flip_cells_match_physically():
    head = _head(g=4)
    a = _vp((0, 0, 64, 64), flip=False)
    b = _vp((0, 0, 64, 64), flip=True)
    fa, fb = _coord_map(a, 8, 8), _coord_map(b, 8, 8)
    # Strided features are not mirror-symmetric: the flipped view's map is
    # the mirror image shifted by S - 2 * offset = +7 px.
    assert torch.allclose(fb[:, 0], fa.flip(-1)[:, 0] + 7.0)
    ba, bb, _ = head.grid_boxes([[a, b]])
    pa = head.pool(fa, ba, (64, 64))
    pb = head.pool(fb, bb, (64, 64))
    # Interior cell columns (1, 2) pool the same physical points exactly;
    # edge cells reach past the outermost feature centre (RoIAlign clamps).
    cols = torch.arange(16) % 4
    inner = (cols == 1) | (cols == 2)
    assert torch.allclose(pa[0, inner], pb[0, inner], atol=1e-9)
    assert torch.allclose(pa, pb, atol=2.0)
    # Different crops, scales and flips: pooled original coordinates equal
    # the cell centres in both views (bilinear pooling of a linear map is
    # exact away from the borders).
    a = _vp((10, 6, 58, 54), flip=False)
    b = _vp((2, 14, 50, 62), flip=True)
    fa, fb = _coord_map(a, 16, 16), _coord_map(b, 16, 16)
    ba, bb, _ = head.grid_boxes([[a, b]])
    pa = head.pool(fa, ba, (64, 64))[0]
    pb = head.pool(fb, bb, (64, 64))[0]
    # Overlap [10, 50] x [14, 54] -> 10-px cells, centres 15, 25, ...
    centres = torch.tensor([[15.0 + 10 * c, 19.0 + 10 * r] for r in range(4)
                            for c in range(4)], dtype=torch.float64)
    inner = [5, 6, 9, 10]
    assert torch.allclose(pa[inner], centres[inner], atol=1e-9)
    assert torch.allclose(pb[inner], centres[inner], atol=1e-9)
    assert torch.allclose(pa, pb, atol=1.6)  # borders: RoIAlign clamping
    # RoIAlign's aligned=True convention (feature j at S*(j + 1/2), the
    # geometry before the receptive-field correction) misses by S/2 - 1/2
    # = 1.5 view px = 1.125 original px (48-px crop shown at 64 px).
    old = _head(g=4, center_offset=2.0)
    assert (old.pool(fa, ba, (64, 64))[0][inner] -
            centres[inner]).abs().max() == pytest.approx(1.125)


def _quiet_init(net):
    """init_weights (Kaiming) without mmengine's per-parameter log, then
    eval mode."""
    from medssl.analysis.embeddings import _quiet_init_weights
    _quiet_init_weights(net)
    net.eval()


def _resnet_rf_centre(depth, stage, size=128):
    """Receptive-field centre (x, px) of the middle feature of a real
    mmselfsup ResNet stage, from the support of its input gradient."""
    from mmselfsup.models.backbones import ResNet
    torch.manual_seed(0)
    net = ResNet(depth=depth, in_channels=1, out_indices=[stage])
    _quiet_init(net)
    x = torch.randn(2, 1, size, size, requires_grad=True)
    out = net(x)[0]
    j = out.shape[-1] // 2
    grad, = torch.autograd.grad(out[:, :, j, j].sum(), x)
    cols = (grad.abs().sum((0, 1, 2)) > 0).nonzero().flatten()
    stride = size // out.shape[-1]
    return (cols.min().item() + cols.max().item() + 1) / 2, stride * j


@pytest.mark.parametrize('depth', [18, 50])
def test_resnet_receptive_field_centre(depth):
    """The head's geometry is a ResNet's: feature j of layer3 (S=16) and
    layer4 (S=32) sees view pixel S*j + 1/2 (+-0.5 px), in x and in y.

    Measured from the support of the input gradient of each feature of a
    real mmselfsup ResNet (random Kaiming weights, eval-mode BN, random
    input), on a 512-px-long strip (32 px across: the support along the
    strip does not depend on its width; same columns as on 512 x 512) so
    that most features' support (layer3 211/267 px, layer4 435/427 px for
    R18/R50) lies inside the image and its centre is not forced by the
    image borders. Cells whose support touches a border still check their
    free edge."""
    from mmselfsup.models.backbones import ResNet
    length, across = 512, 32
    head = _head()
    torch.manual_seed(0)
    net = ResNet(depth=depth, in_channels=1, out_indices=[3, 4])
    _quiet_init(net)

    def supports(axis):
        """Per stage: S and the (first, last) input index along ``axis``
        (-1: x, -2: y) with a non-zero gradient, for every feature."""
        shape = [1, 1, across, across]
        shape[axis] = length
        x = torch.randn(*shape, requires_grad=True)
        found = []
        for out in net(x):
            if axis == -1:
                cells = [out[:, :, 0, j] for j in range(out.shape[-1])]
            else:
                cells = [out[:, :, i, 0] for i in range(out.shape[-2])]
            spans = []
            for cell in cells:
                grad, = torch.autograd.grad(cell.sum(), x, retain_graph=True)
                other = (0, 1, 2) if axis == -1 else (0, 1, 3)
                hit = (grad.abs().sum(other) > 0).nonzero().flatten()
                spans.append((hit.min().item(), hit.max().item()))
            found.append((length // out.shape[axis], spans))
        return found

    for axis in (-1, -2):
        for stride, spans in supports(axis):
            inside = [(j, lo, hi) for j, (lo, hi) in enumerate(spans)
                      if lo > 0 and hi < length - 1]
            # Enough cells with a bounded support (not only the middle).
            assert len(inside) >= 3, (stride, spans)
            width = {hi - lo + 1 for _, lo, hi in inside}
            assert len(width) == 1, width  # one receptive field size
            half = width.pop() / 2
            centres = torch.tensor([(lo + hi + 1) / 2 for _, lo, hi in inside],
                                   dtype=torch.float64)
            cells = torch.tensor([j for j, _, _ in inside],
                                 dtype=torch.float64)
            # The project's claim: centre = S*j + 1/2.
            assert (centres - (stride * cells + 0.5)).abs().max() <= 0.5
            # The head maps that pixel to map index j (RoIAlign aligned=True
            # samples index u = b - 1/2 of box coordinate b).
            n = length // stride
            boxes = centres.view(-1, 1).expand(-1, 4).contiguous()
            u = head.to_feature_coords(boxes, (n, n), (length, length)) - 0.5
            assert (u - cells.view(-1, 1)).abs().max() * stride <= 0.5
            # Border cells: the edge away from the border sits at
            # S*j + 1/2 -+ half the receptive field too.
            for j, (lo, hi) in enumerate(spans):
                centre = stride * j + head.center_offset
                if lo > 0:
                    assert abs(lo - (centre - half)) <= 0.5, (stride, j, lo)
                if hi < length - 1:
                    assert abs(hi + 1 - (centre + half)) <= 0.5, (stride, j)


def test_flipped_twin_cells_agree_through_a_resnet():
    """A smooth slice and its mirror image through a ResNet-18 with
    mirror-symmetric kernels: the pooled layer3 cells of corresponding
    physical cells agree (interior columns; edge cells reach past the
    outermost feature centre). With RoIAlign's S*(j + 1/2) convention
    (center_offset = S/2, the geometry before the receptive-field
    correction) the pairs are 15 px apart and disagree ~100x more."""
    from mmselfsup.models.backbones import ResNet
    size = 256
    torch.manual_seed(0)
    net = ResNet(depth=18, in_channels=1, out_indices=[3])
    _quiet_init(net)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.copy_(0.5 * (m.weight + m.weight.flip(-1)))
        g = torch.Generator().manual_seed(1)
        img = F.interpolate(torch.randn(1, 1, 4, 4, generator=g),
                            size=(size, size), mode='bicubic',
                            align_corners=False)
        fa = net(img)[0].double()
        fb = net(img.flip(-1))[0].double()
    a = _vp((0, 0, size, size), shape=(size, size))
    b = _vp((0, 0, size, size), flip=True, shape=(size, size))
    inner = [r * 4 + c for r in range(4) for c in (1, 2)]

    def error(head):
        ba, bb, valid = head.grid_boxes([[a, b]], feat_hw=fa.shape[-2:],
                                        input_hw=(size, size))
        assert valid.all()
        pa = head.pool(fa, ba, (size, size))[0, inner]
        pb = head.pool(fb, bb, (size, size))[0, inner]
        return ((pa - pb).norm() / pa.norm()).item()

    new = error(_head(g=4))
    old = error(_head(g=4, center_offset=8.0))
    print(f'relative cell mismatch: corrected {new:.4f}, before {old:.4f}')
    assert new < 0.01 and old > 0.05


def test_min_cell_size_drops_subpixel_pairs():
    head = _head(g=2, min_cell_size=1.0)
    full = _vp((0, 0, 64, 64))
    sliver = _vp((56, 0, 120, 64))  # shares an 8-px-wide strip with full
    _, _, valid = head.grid_boxes([[full, full], [full, sliver]],
                                  feat_hw=(4, 4), input_hw=(64, 64))
    # 8 px strip / 2 cells = 4 px = 0.25 feature px at S = 16
    assert valid.tolist() == [True, False]


def test_infonce_matches_hand_computation():
    head = _head(g=1, temperature=0.5)
    # 2 images x 1 cell, D = 2.
    q = F.normalize(torch.tensor([[[1.0, 0.0]], [[0.6, 0.8]]]), dim=-1)
    k = F.normalize(torch.tensor([[[0.8, 0.6]], [[0.0, 1.0]]]), dim=-1)
    loss = head.loss(q, k, torch.tensor([True, True]))
    # image 0: pos 0.8, neg 0.0; image 1: pos 0.8, neg 0.96
    l0 = -math.log(math.exp(0.8 / 0.5) /
                   (math.exp(0.8 / 0.5) + math.exp(0.0 / 0.5)))
    l1 = -math.log(math.exp(0.8 / 0.5) /
                   (math.exp(0.96 / 0.5) + math.exp(0.8 / 0.5)))
    assert loss.item() == pytest.approx((l0 + l1) / 2, abs=1e-6)
    # Invalid image dropped: only image 1, whose only key is its positive.
    loss = head.loss(q, k, torch.tensor([False, True]))
    assert loss.item() == pytest.approx(0.0, abs=1e-6)


def test_infonce_with_queue_and_same_image_negatives():
    head = _head(g=2, temperature=0.2, queue_len=4)
    q = F.normalize(torch.randn(1, 4, 3), dim=-1)
    k = F.normalize(torch.randn(1, 4, 3), dim=-1)
    queue = head.queue.clone()
    loss = head.loss(q, k, torch.tensor([True]))
    logits = torch.cat([q[0] @ k[0].t(), q[0] @ queue], 1) / 0.2
    ref = F.cross_entropy(logits, torch.arange(4))
    assert loss.item() == pytest.approx(ref.item(), abs=1e-5)
    # The 4 key cells replaced the whole queue.
    assert torch.allclose(head.queue, k[0].t())


def test_no_overlap_zero_but_connected():
    head, neck = _head(g=2), MoCoV2Neck(2, 4, 3, with_avg_pool=False)
    feat = torch.randn(2, 2, 8, 8, requires_grad=True)
    vps = [[_vp((0, 0, 10, 10)), _vp((30, 30, 40, 40))]] * 2
    loss = _local_loss(head, neck, feat, feat.detach(), vps, (64, 64))
    assert loss.item() == 0.0
    loss.backward()
    assert feat.grad is not None
    assert all(p.grad is not None for p in neck.parameters())


def test_gradient_to_features():
    head, neck = _head(g=2), MoCoV2Neck(2, 4, 3, with_avg_pool=False)
    feat = torch.randn(2, 2, 8, 8, requires_grad=True)
    vps = [[_vp((0, 0, 48, 48)), _vp((16, 16, 64, 64), flip=True)]] * 2
    loss = _local_loss(head, neck, feat, torch.randn(2, 2, 8, 8), vps,
                       (64, 64))
    loss.backward()
    assert torch.isfinite(loss) and feat.grad.abs().sum() > 0
