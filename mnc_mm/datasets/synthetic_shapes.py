# Copyright (c) OpenMMLab. All rights reserved.
"""A deterministic synthetic instance-segmentation set in COCO format.

Each image shows 1-6 textured circles, squares and triangles on a textured
background. Shapes are painted in order, so later shapes occlude earlier
ones; an instance's mask is its *visible* part, and instances that end up
(almost) fully hidden are dropped from the annotations.

Everything is drawn with numpy and written as PNG with ``zlib``, so the same
seed gives byte-identical images and JSON on any machine.
"""
import json
import os
import os.path as osp
import struct
import zlib
from typing import Dict, List, Tuple

import numpy as np

from .coco_format import mask_to_coco_annotation

SHAPES_CLASSES = ('circle', 'square', 'triangle')
SHAPES_PALETTE = [(220, 20, 60), (0, 128, 255), (255, 200, 0)]

# An instance is kept only if at least this fraction of its in-image area,
# and at least MIN_VISIBLE_PX pixels, remain visible after occlusion.
MIN_VISIBLE_FRAC = 0.25
MIN_VISIBLE_PX = 24
_TEXTURES = ('solid', 'stripes', 'checker', 'noise')


def write_png(path: str, img: np.ndarray) -> None:
    """Write an RGB image as an 8-bit PNG (deterministic bytes).

    Args:
        path (str): Output file.
        img (np.ndarray): (H, W, 3) uint8, RGB.
    """
    h, w, _ = img.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), img.reshape(h, -1)], 1)

    def chunk(tag: bytes, data: bytes) -> bytes:
        body = tag + data
        return (struct.pack('>I', len(data)) + body +
                struct.pack('>I', zlib.crc32(body) & 0xFFFFFFFF))

    header = struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) +
                chunk(b'IDAT', zlib.compress(raw.tobytes(), 1)) +
                chunk(b'IEND', b''))


def _texture(rng: np.random.Generator, h: int, w: int,
             kind: str) -> np.ndarray:
    """A multiplicative texture in [0.55, 1], shape (H, W, 1), float32."""
    y = np.arange(h, dtype=np.float32)[:, None]
    x = np.arange(w, dtype=np.float32)[None, :]
    if kind == 'solid':
        t = np.ones((h, w), np.float32)
    elif kind == 'stripes':
        theta = rng.uniform(0, np.pi)
        period = rng.uniform(4, 14)
        phase = x * np.cos(theta) + y * np.sin(theta)
        t = 0.5 + 0.5 * np.sin(2 * np.pi * phase / period)
    elif kind == 'checker':
        cell = int(rng.integers(3, 10))
        t = ((x // cell + y // cell) % 2).astype(np.float32)
    else:
        t = rng.random((h, w), dtype=np.float32)
    return (0.55 + 0.45 * t)[..., None]


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A textured background: gradient, texture and pixel noise.

    Returns:
        np.ndarray: (H, W, 3) float32 in [0, 255].
    """
    c0, c1 = rng.uniform(30, 225, size=(2, 3)).astype(np.float32)
    ramp = np.linspace(0, 1, w if rng.random() < 0.5 else h,
                       dtype=np.float32)
    ramp = ramp[None, :, None] if ramp.size == w else ramp[:, None, None]
    bg = c0 + (c1 - c0) * ramp
    bg = bg * _texture(rng, h, w, _TEXTURES[int(rng.integers(1, 4))])
    bg = bg + 20 * rng.random((h, w, 1), dtype=np.float32) - 10
    return np.broadcast_to(bg, (h, w, 3))


def _shape_mask(cls: int, cx: float, cy: float, r: float, theta: float,
                h: int, w: int) -> Tuple[np.ndarray, Tuple[slice, slice]]:
    """Rasterise one shape at pixel centres inside its bounding window.

    Args:
        cls (int): 0 circle, 1 square, 2 triangle.
        cx, cy (float): Centre in px. r (float): circumradius in px.
        theta (float): Rotation in radians.
        h, w (int): Image size in px.

    Returns:
        tuple: bool mask of the window and the window's (rows, cols) slices.
    """
    y0, y1 = max(int(cy - r) - 1, 0), min(int(cy + r) + 2, h)
    x0, x1 = max(int(cx - r) - 1, 0), min(int(cx + r) + 2, w)
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dx, dy = xs - cx, ys - cy
    if cls == 0:
        inside = dx * dx + dy * dy <= r * r
    else:
        n = 4 if cls == 1 else 3
        angles = theta + 2 * np.pi * np.arange(n) / n
        vx, vy = cx + r * np.cos(angles), cy + r * np.sin(angles)
        inside = np.ones_like(dx, dtype=bool)
        for i in range(n):  # convex, counter-clockwise: left of every edge
            ex, ey = vx[(i + 1) % n] - vx[i], vy[(i + 1) % n] - vy[i]
            inside &= ex * (ys - vy[i]) - ey * (xs - vx[i]) >= 0
    return inside, (slice(y0, y1), slice(x0, x1))


def render_image(rng: np.random.Generator, img_size: Tuple[int, int]
                 ) -> Tuple[np.ndarray, List[Tuple[int, np.ndarray]]]:
    """Draw one image and its visible instances.

    Args:
        rng (np.random.Generator): Source of randomness.
        img_size (tuple[int, int]): (min, max) side length in px.

    Returns:
        tuple: the (H, W, 3) uint8 RGB image and a list of
        ``(class index, (H, W) bool visible mask)`` in drawing order.
    """
    lo, hi = img_size
    h, w = (int(v) for v in rng.integers(lo, hi + 1, size=2))
    img = np.array(_background(rng, h, w))
    owner = np.full((h, w), -1, np.int16)
    full_areas, classes = [], []
    for k in range(int(rng.integers(1, 7))):
        cls = int(rng.integers(0, 3))
        r = rng.uniform(0.08, 0.25) * min(h, w)
        cx, cy = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h
        inside, win = _shape_mask(cls, cx, cy, r, rng.uniform(0, 2 * np.pi),
                                  h, w)
        colour = rng.uniform(20, 255, size=3).astype(np.float32)
        tex = _texture(rng, inside.shape[0], inside.shape[1],
                       _TEXTURES[int(rng.integers(0, 4))])
        img[win][inside] = (colour * tex)[inside]
        owner[win][inside] = k
        full_areas.append(int(inside.sum()))
        classes.append(cls)
    img = np.clip(img, 0, 255).astype(np.uint8)
    return img, visible_instances(owner, classes, full_areas)


def visible_instances(owner: np.ndarray, classes: List[int],
                      full_areas: List[int]) -> List[Tuple[int, np.ndarray]]:
    """Visible masks of painted shapes, dropping (almost) hidden ones.

    Args:
        owner (np.ndarray): (H, W) int, index of the shape painted last at
            each pixel, -1 for background.
        classes (list[int]): Class index of each shape, in painting order.
        full_areas (list[int]): In-image area in px of each unoccluded shape.

    Returns:
        list[tuple]: ``(class index, (H, W) bool mask)`` of the shapes with
        at least ``max(MIN_VISIBLE_PX, MIN_VISIBLE_FRAC * full area)``
        visible pixels, in painting order.
    """
    instances = []
    for k, (cls, full) in enumerate(zip(classes, full_areas)):
        visible = owner == k
        if visible.sum() >= max(MIN_VISIBLE_PX, MIN_VISIBLE_FRAC * full):
            instances.append((cls, visible))
    return instances


def _make_split(out_dir: str, split: str, num_images: int, seed: int,
                img_size: Tuple[int, int]) -> str:
    """Write ``out_dir/<split>/*.png`` and the split's COCO json."""
    img_dir = osp.join(out_dir, split)
    os.makedirs(img_dir, exist_ok=True)
    split_key = ('train', 'val').index(split)
    images, annotations = [], []
    for i in range(num_images):
        rng = np.random.default_rng([seed, split_key, i])
        img, instances = render_image(rng, img_size)
        file_name = f'{i:06d}.png'
        write_png(osp.join(img_dir, file_name), img)
        images.append(
            dict(
                id=i + 1,
                file_name=file_name,
                height=img.shape[0],
                width=img.shape[1]))
        for cls, mask in instances:
            annotations.append(
                mask_to_coco_annotation(mask, len(annotations) + 1, i + 1,
                                        cls + 1))
    coco = dict(
        info=dict(description=f'mnc_mm synthetic shapes, {split}, '
                  f'seed {seed}'),
        images=images,
        annotations=annotations,
        categories=[
            dict(id=i + 1, name=name, supercategory='shape')
            for i, name in enumerate(SHAPES_CLASSES)
        ])
    ann_file = osp.join(out_dir, 'annotations', f'instances_{split}.json')
    os.makedirs(osp.dirname(ann_file), exist_ok=True)
    with open(ann_file, 'w') as f:
        json.dump(coco, f)
    return ann_file


def make_shapes_dataset(out_dir: str,
                        num_train: int,
                        num_val: int,
                        seed: int = 0,
                        img_size: Tuple[int, int] = (256, 384)
                        ) -> Dict[str, str]:
    """Generate the synthetic shapes set in COCO layout.

    Writes ``out_dir/{train,val}/*.png`` and
    ``out_dir/annotations/instances_{train,val}.json``. Category ids are
    1, 2, 3 for ``SHAPES_CLASSES``. Image ``i`` of a split depends only on
    ``(seed, split, i)``, so the same seed gives byte-identical files.

    Args:
        out_dir (str): Output root, e.g. ``data/shapes``.
        num_train (int): Number of training images.
        num_val (int): Number of validation images.
        seed (int): Random seed. Defaults to 0.
        img_size (tuple[int, int]): (min, max) side length in px, min >= 64
            (so the topmost shape is always large enough to be kept); each
            image's height and width are drawn uniformly from it.

    Returns:
        dict: ``train_img_dir``, ``val_img_dir``, ``train_ann_file``,
        ``val_ann_file``.
    """
    lo, hi = img_size
    if not 64 <= lo <= hi:
        raise ValueError(f'img_size must be (min, max) with 64 <= min <= '
                         f'max, got {tuple(img_size)}')
    for name, n in (('num_train', num_train), ('num_val', num_val)):
        if n < 0:
            raise ValueError(f'{name} must be >= 0, got {n}')
    paths = {}
    for split, n in (('train', num_train), ('val', num_val)):
        paths[f'{split}_ann_file'] = _make_split(out_dir, split, n, seed,
                                                 (lo, hi))
        paths[f'{split}_img_dir'] = osp.join(out_dir, split)
    return paths
