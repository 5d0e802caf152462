"""A differentiable soft silhouette rasteriser in pure torch (batched, CPU and CUDA).

The silhouette of a triangle mesh projected to 2D is rendered as ``sigmoid(D(p) / sigma)``, D the
signed distance (pixels, positive inside) from each pixel centre p to the mesh's *outline*:

1. coverage (no gradient): which pixel centres some triangle covers (the hard silhouette);
2. outline edges (no gradient): contour edges - on the mesh boundary, or between a front- and a
   back-facing triangle - with no coverage just outside them (a probe 0.75 px out); contour edges
   that fold inside the silhouette (a finger over the palm) are not outline;
3. D (differentiable): the distance from each pixel centre to the nearest outline edge segment,
   clamped at ``cutoff * sigma``, with the sign of the coverage; the sigmoid is rescaled so that
   |D| >= cutoff * sigma gives exactly 0 / 1.

So the outline sits at the 0.5 level for any sigma, the inside is 1 and the outside 0 beyond the
soft band, the image is continuous as the outline moves across pixels, and the gradients move the
outline's vertices. ``sigma -> 0`` gives the hard silhouette.

Why not SoftRas's ``1 - prod_f (1 - sigmoid(d_f / sigma))`` over triangles (Liu et al. 2019): on a
closed mesh of pixel-sized triangles, several triangles sit near every outline pixel and their
outside tails add up, dilating the outline by ~1.5 sigma (measured +23 % area at sigma = 0.3 px,
+46 % at 0.5 px for a 40-pixel hand: an L1 loss against the true mask was 0.042 for the perfect
fit and 0.043 one pixel off), and using ``max_f`` instead leaves the inside at ~0.6 because a
pixel-sized triangle's own distances are tiny.

Cost: every triangle (coverage) and outline edge (distance) is evaluated only on a K x K window of
pixel centres around its bounding box (grown by the soft band for edges), primitives grouped by K,
results scattered into the images: work scales with the primitives' pixel footprints, not with
B * F * H * W. The differentiable pass (outline edges only) is cut into chunks of at most
``max_pairs`` (edge, pixel) pairs under activation checkpointing.
"""

from __future__ import annotations

import math

import torch
from torch.utils.checkpoint import checkpoint

_EPS = 1e-12
_PROBE = 0.75  # pixels: how far outside an edge the coverage is checked to call it outline


def normalized_to_pixels(points: torch.Tensor, size: int) -> torch.Tensor:
    """(..., 2) crop coordinates in [-1, 1] (-1 = left/top edge) -> pixel coordinates of a
    ``size`` x ``size`` raster whose pixel centres are at integers (edges at -0.5 and size - 0.5)."""
    return (points + 1.0) * (0.5 * size) - 0.5


def soft_silhouette(points: torch.Tensor, faces: torch.Tensor, size: int, sigma: float = 0.5,
                    cutoff: float = 5.0, max_pairs: int = 1 << 20) -> torch.Tensor:
    """Soft silhouettes of 2D triangle meshes (see the module docstring).

    points: (B, V, 2) vertex positions in pixels of the raster (x right, y down, pixel centres at
            integers; see ``normalized_to_pixels``); differentiable.
    faces:  (F, 3) long vertex indices, consistently wound (either way).
    size:   raster side S in pixels.
    sigma:  edge softness in pixels; cutoff: half-width of the soft band in sigmas.
    Returns (B, S, S) in [0, 1], points' dtype and device.
    """
    batch = points.shape[0]
    tri = points[:, faces]                                                  # (B, F, 3, 2)
    reach = cutoff * sigma
    with torch.no_grad():
        covered = coverage(tri.detach(), size, max_pairs)                   # (B, S, S) bool
        b, f, k = outline_edges(tri.detach(), faces, covered)               # (M,) each
    start, end = tri[b, f, k], tri[b, f, (k + 1) % 3]                       # (M, 2) outline segments
    distance = nearest_segment_distance(torch.stack([start, end], 1), b, batch, size, reach, max_pairs)
    low = 1.0 / (1.0 + math.exp(cutoff))                                    # sigmoid(-cutoff)
    soft = torch.sigmoid(torch.where(covered, distance, -distance) / sigma)
    return ((soft - low) / (1.0 - 2.0 * low)).clamp(0.0, 1.0)


def _windows(low: torch.Tensor, high: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pixel windows of boxes (n, 2) low/high: (corner (n, 2), side K (n,), keep (n,) touches the raster)."""
    corner = low.ceil().clamp(0, size - 1)
    side = ((high.floor().clamp(0, size - 1) - corner).amax(-1) + 1).long()
    keep = ((high >= 0) & (low <= size - 1)).all(-1) & (side > 0)
    return corner, side, keep


def _window_pixels(corner: torch.Tensor, window: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 2) corners -> (pixel centres (n, K*K, 2), flat pixel index (n, K*K), S*S when off the raster)."""
    steps = torch.arange(window, device=corner.device, dtype=corner.dtype)
    px = (corner[:, 0, None, None] + steps[None, :]).expand(-1, window, window).reshape(-1, window * window)
    py = (corner[:, 1, None, None] + steps[:, None]).expand(-1, window, window).reshape(-1, window * window)
    index = torch.where((px < size) & (py < size), py * size + px, torch.full_like(px, size * size)).long()
    return torch.stack([px, py], dim=-1), index


def coverage(tri: torch.Tensor, size: int, max_pairs: int = 1 << 20) -> torch.Tensor:
    """(B, F, 3, 2) pixel-space triangles -> (B, S, S) bool: pixel centres inside (or on) any triangle,
    evaluated in chunks of at most ``max_pairs`` (triangle, pixel) pairs."""
    batch, num_faces = tri.shape[:2]
    tri = tri.reshape(-1, 3, 2)
    image = torch.arange(batch, device=tri.device).repeat_interleave(num_faces)
    corner, side, keep = _windows(tri.amin(1), tri.amax(1), size)
    covered = torch.zeros(batch * (size * size + 1), dtype=torch.bool, device=tri.device)
    for window in side[keep].unique().tolist():
        for ids in torch.nonzero(keep & (side == window)).squeeze(1).split(max(1, max_pairs // (window * window))):
            pixels, index = _window_pixels(corner[ids], window, size)
            edge = tri[ids].roll(-1, dims=1) - tri[ids]                     # (n, 3, 2)
            rel = pixels.unsqueeze(2) - tri[ids].unsqueeze(1)               # (n, P, 3, 2)
            cross = edge[:, None, :, 0] * rel[..., 1] - edge[:, None, :, 1] * rel[..., 0]   # (n, P, 3)
            inside = (cross >= 0).all(-1) | (cross <= 0).all(-1)
            covered[(index + image[ids, None] * (size * size + 1))[inside]] = True
    return covered.view(batch, size * size + 1)[:, :-1].reshape(batch, size, size)


def outline_edges(tri: torch.Tensor, faces: torch.Tensor, covered: torch.Tensor):
    """Outline edges of each projected mesh: (image, face, edge k) index tensors (M,), edge k running
    from vertex k to k+1. tri (B, F, 3, 2) pixels, covered (B, S, S) from ``coverage``."""
    batch, num_faces = tri.shape[:2]
    size = covered.shape[-1]
    edge = tri.roll(-1, dims=2) - tri                                       # (B, F, 3, 2)
    facing = (edge[..., 0, 0] * edge[..., 1, 1] - edge[..., 0, 1] * edge[..., 1, 0]) >= 0   # (B, F)
    neighbour = edge_neighbours(faces)                                      # (F, 3)
    contour = (neighbour < 0) | (facing[:, neighbour.clamp(min=0)] != facing[..., None])   # (B, F, 3)
    once = (neighbour < 0) | (torch.arange(num_faces, device=faces.device)[:, None] < neighbour)  # one half-edge
    b, f, k = torch.nonzero(contour & once, as_tuple=True)
    start, end, third = tri[b, f, k], tri[b, f, (k + 1) % 3], tri[b, f, (k + 2) % 3]
    direction = end - start
    normal = torch.stack([-direction[:, 1], direction[:, 0]], 1) / (direction.norm(dim=1, keepdim=True) + _EPS)
    middle = (start + end) / 2
    normal = torch.where(((third - middle) * normal).sum(1, keepdim=True) > 0, -normal, normal)  # away from the face
    probe = (middle + _PROBE * normal).round().long()
    on_raster = ((probe >= 0) & (probe < size)).all(1)
    probe = probe.clamp(0, size - 1)
    outline = ~(on_raster & covered[b, probe[:, 1], probe[:, 0]])
    return b[outline], f[outline], k[outline]


def nearest_segment_distance(segments: torch.Tensor, image: torch.Tensor, batch: int, size: int, reach: float,
                             max_pairs: int) -> torch.Tensor:
    """min(distance from each pixel centre to the nearest segment of its image, reach): (B, S, S).

    segments (M, 2, 2) pixels (differentiable), image (M,) batch indices."""
    per_image = size * size + 1
    result = segments.new_full((batch * per_image,), reach)
    if len(segments) == 0:
        return result.view(batch, per_image)[:, :-1].reshape(batch, size, size)
    with torch.no_grad():
        corner, side, keep = _windows(segments.amin(1) - reach, segments.amax(1) + reach, size)
    positions, values = [], []
    for window in side[keep].unique().tolist():
        ids = torch.nonzero(keep & (side == window)).squeeze(1)
        for part in ids.split(max(1, max_pairs // (window * window))):
            args = (segments[part], corner[part], image[part], batch * per_image, window, size, reach)
            if torch.is_grad_enabled() and segments.requires_grad:
                values.append(checkpoint(_segment_distances, *args, use_reentrant=False))
            else:
                values.append(_segment_distances(*args))
    for value in values:
        result = torch.minimum(result, value)
    return result.view(batch, per_image)[:, :-1].reshape(batch, size, size)


def _segment_distances(segments: torch.Tensor, corner: torch.Tensor, image: torch.Tensor, bins: int, window: int,
                       size: int, reach: float) -> torch.Tensor:
    """Per-pixel min distance to these segments, ``reach`` where none is near: (bins,)."""
    pixels, index = _window_pixels(corner, window, size)                    # (n, P, 2), (n, P)
    start = segments[:, None, 0]
    direction = (segments[:, 1] - segments[:, 0])[:, None]                  # (n, 1, 2)
    rel = pixels - start                                                    # (n, P, 2)
    t = ((rel * direction).sum(-1, keepdim=True) / ((direction * direction).sum(-1, keepdim=True) + _EPS)).clamp(0, 1)
    gap = rel - t * direction
    distance = torch.sqrt((gap * gap).sum(-1) + _EPS)                       # (n, P)
    flat = (index + image[:, None] * (size * size + 1)).reshape(-1)
    return distance.new_full((bins,), reach).scatter_reduce(0, flat, distance.reshape(-1), "amin")


def edge_neighbours(faces: torch.Tensor) -> torch.Tensor:
    """(F, 3) triangles -> (F, 3) long: the triangle across edge k (vertex k -> k+1) of each
    triangle, or -1 on boundary and non-manifold edges."""
    count = faces.shape[0] * 3
    start, end = faces.reshape(-1), faces.roll(-1, dims=1).reshape(-1)
    key = torch.minimum(start, end) * (int(faces.max()) + 1) + torch.maximum(start, end)   # undirected edge id
    _, group, sizes = torch.unique(key, return_inverse=True, return_counts=True)
    order = torch.argsort(group, stable=True)                                # half-edges grouped by edge
    first = (torch.cumsum(sizes, 0) - sizes)[group]                          # where each group starts
    mates = torch.stack([order[first], order[(first + 1).clamp(max=count - 1)]])   # the group's two half-edges
    this = torch.arange(count, device=faces.device)
    partner = torch.where(mates[0] == this, mates[1], mates[0])
    return torch.where(sizes[group] == 2, partner // 3, -1).view(-1, 3)
