"""A real rotation-invariant image set, offline: texture patches of photographs that packages ship.

Overhead imagery has no "up", and handwritten digits have one; a recipe sold for overhead imagery
must be judged on real pictures with no "up" too. This module cuts 64x64 patches from ten real
photographs bundled in the scikit-image and scikit-learn wheels (no download: the files are in the
installed packages), one photograph per class, and writes them as RGB JPEGs into class folders
named after EuroSAT's classes (``Forest/Forest_17.jpg``), so they go through exactly the code path
of the real EuroSAT RGB archive (``--data FOLDER``).

Where each class comes from (TEXTURE_SOURCES): scikit-image's ``skimage/data`` brick, grass,
gravel (greyscale texture photographs), moon (greyscale, the lunar surface), cell (greyscale
microscopy), hubble_deep_field, immunohistochemistry (a stained tissue section), retina (fundus photograph, its
central region), coffee (a cup seen from above), and scikit-learn's ``flower.jpg`` (a dahlia and
its background). Greyscale photographs are repeated over three channels, as schema/example_data/digits.py
does. Patches are cut on a grid (non-overlapping where the photograph is big enough, otherwise
the widest stride that still gives ``per_class`` patches, at least 32 pixels) and taken in a
seeded shuffle, so the classes have the same size. Neighbouring patches of a small photograph
overlap by up to half a patch, like neighbouring EuroSAT patches of one scene; ExampleGen's
split is by file, so some test patches share pixels with training patches (both sides of a
comparison see the same split).

    python -m schema.example_data.textures /tmp/textures_eurosat     # writes the folder, prints a summary
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Iterator, List, Optional, Tuple

import numpy as np

from schema import features
from schema.example_data.digits import write_class_folder
from schema.modalities import IMAGE_SIZE

DEFAULT_PER_CLASS = 94  # 940 patches in all
MIN_STRIDE = 32  # neighbouring patches share at most half their width
SEED = 0

Box = Optional[Tuple[int, int, int, int]]  # (top, left, bottom, right) in the photograph, None: all of it


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        try:
            from skimage import data
        except ImportError as err:
            raise SystemExit("schema.example_data.textures needs scikit-image (its bundled photographs): "
                             "pip install scikit-image") from err
        image: np.ndarray = getattr(data, name)()
        return image
    return load


def _sklearn_flower() -> np.ndarray:
    from sklearn.datasets import load_sample_image

    image: np.ndarray = load_sample_image("flower.jpg")
    return image


# class id (EuroSAT's order) -> (where the photograph comes from, loader, region of it)
TEXTURE_SOURCES: Tuple[Tuple[str, Callable[[], np.ndarray], Box], ...] = (
    ("skimage.data.brick", _skimage("brick"), None),
    ("skimage.data.grass", _skimage("grass"), None),
    ("skimage.data.gravel", _skimage("gravel"), None),
    ("skimage.data.moon", _skimage("moon"), None),
    ("skimage.data.cell", _skimage("cell"), None),
    ("skimage.data.hubble_deep_field", _skimage("hubble_deep_field"), None),
    ("skimage.data.immunohistochemistry", _skimage("immunohistochemistry"), None),
    ("skimage.data.retina (central 900x900)", _skimage("retina"), (255, 255, 1155, 1155)),
    ("skimage.data.coffee", _skimage("coffee"), None),
    ("sklearn.datasets.load_sample_image('flower.jpg')", _sklearn_flower, None),
)
assert len(TEXTURE_SOURCES) == features.NUM_CLASSES


def as_rgb(image: np.ndarray) -> np.ndarray:
    """uint8 [h, w, 3]: greyscale repeated over three channels, an alpha channel dropped."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.clip(np.round(image * 255 if image.max() <= 1 else image), 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return image[:, :, :3]


def grid_stride(height: int, width: int, per_class: int) -> int:
    """The widest stride (at most one patch, at least MIN_STRIDE) whose grid gives per_class patches."""
    for stride in range(IMAGE_SIZE, MIN_STRIDE - 1, -1):
        if ((height - IMAGE_SIZE) // stride + 1) * ((width - IMAGE_SIZE) // stride + 1) >= per_class:
            return stride
    raise ValueError(f"a {height}x{width} photograph gives fewer than {per_class} patches of "
                     f"{IMAGE_SIZE}x{IMAGE_SIZE} at stride {MIN_STRIDE}; ask for fewer with --per-class")


def patches(image: np.ndarray, per_class: int, seed: int) -> List[np.ndarray]:
    """`per_class` random 64x64 patches of `image` on a grid, in grid order."""
    h, w = image.shape[:2]
    stride = grid_stride(h, w, per_class)
    corners = [(y, x) for y in range(0, h - IMAGE_SIZE + 1, stride) for x in range(0, w - IMAGE_SIZE + 1, stride)]
    order = np.random.default_rng(seed).permutation(len(corners))[:per_class]
    return [image[corners[i][0]:corners[i][0] + IMAGE_SIZE, corners[i][1]:corners[i][1] + IMAGE_SIZE]
            for i in sorted(order)]


def texture_images(per_class: int = DEFAULT_PER_CLASS, seed: int = SEED) -> Iterator[Tuple[np.ndarray, int]]:
    """(uint8 [64, 64, 3] patch, label) pairs, per_class of each class, class by class."""
    for label, (_, load, box) in enumerate(TEXTURE_SOURCES):
        image = as_rgb(load())
        if box is not None:
            top, left, bottom, right = box
            image = image[top:bottom, left:right]
        for patch in patches(image, per_class, seed + label):
            yield np.ascontiguousarray(patch), label


def write_textures_folder(root: str, per_class: int = DEFAULT_PER_CLASS, seed: int = SEED) -> int:
    """Write the patches as ``root/<EuroSAT class>/<class>_<i>.jpg``; returns the image count."""
    return write_class_folder(root, texture_images(per_class, seed))


def main(argv: Optional[List[str]] = None) -> int:
    """Command line: write the texture patches as EuroSAT class folders under ROOT."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", help="folder to write the class folders into")
    parser.add_argument("--per-class", type=int, default=DEFAULT_PER_CLASS,
                        help=f"patches per class (default {DEFAULT_PER_CLASS})")
    args = parser.parse_args(argv)
    if args.per_class < 1:
        parser.error("--per-class must be at least 1")
    try:
        n = write_textures_folder(args.root, args.per_class)
    except ValueError as err:
        parser.error(str(err))
    print(f"wrote {n} texture patches of real photographs in EuroSAT's class-folder layout to {args.root}")
    for label, (source, _, _) in enumerate(TEXTURE_SOURCES):
        print(f"  {features.class_name(label):<22} {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
