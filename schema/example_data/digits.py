"""A real labelled image set, offline: scikit-learn's handwritten digits in EuroSAT's layout.

Synthetic data proves the plumbing, not the model. scikit-learn ships 1,797 real 8x8 scans of
handwritten digits in 10 classes, which is enough to tell a recipe that learns from one that
collapses. They are written as 64x64 RGB JPEGs into class folders named after EuroSAT's classes
(digit 0 -> AnnualCrop, ..., 9 -> SeaLake), file names like the archive's (``Forest/Forest_17.jpg``),
so they go through exactly the code path of the real EuroSAT RGB archive (``--data FOLDER``).

Digits have an "up" (a rotated 6 is a 9), so train on them with ``--augment none``.

    python -m schema.example_data.digits /tmp/digits_eurosat       # writes the folder, prints a summary
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Iterable, Iterator, List, Optional, Tuple

import numpy as np
from PIL import Image

from schema import features
from schema.modalities import IMAGE_SIZE
from schema.samples import encode_jpeg

DIGITS_MAX = 16  # sklearn's digits are 4-bit intensities, 0..16


def digit_images(per_class: Optional[int] = None, size: int = IMAGE_SIZE) -> Iterator[Tuple[np.ndarray, int]]:
    """(uint8 [size, size, 3] image, label) pairs.

    Each 8x8 scan scaled to 0..255, upsampled bilinearly and repeated over three channels. `per_class` keeps the
    first N of each class.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    kept = {c: 0 for c in range(features.NUM_CLASSES)}
    for image, label in zip(digits.images, digits.target):
        label = int(label)
        if per_class is not None and kept[label] >= per_class:
            continue
        kept[label] += 1
        grey = Image.fromarray(np.round(image * (255 / DIGITS_MAX)).astype(np.uint8))
        big = np.asarray(grey.resize((size, size), Image.BILINEAR))
        yield np.repeat(big[:, :, None], 3, axis=2), label


def write_class_folder(root: str, images: Iterable[Tuple[np.ndarray, int]]) -> int:
    """Write (uint8 image, label) pairs in EuroSAT's archive layout; returns the image count.

    The layout is ``root/<EuroSAT class>/<class>_<i>.jpg`` (JPEG quality 95). The real image sets here (digits,
    textures) are written by it.
    """
    count = 0
    for i, (image, label) in enumerate(images):
        name = features.class_name(label)
        folder = os.path.join(root, name)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"{name}_{i}.jpg"), "wb") as f:
            f.write(encode_jpeg(image, quality=95))
        count += 1
    return count


def write_digits_folder(root: str, per_class: Optional[int] = None) -> int:
    """Write the digits as ``root/<EuroSAT class>/<class>_<i>.jpg``; returns the image count."""
    return write_class_folder(root, digit_images(per_class))


def main(argv: Optional[List[str]] = None) -> int:
    """Command line: write the digits as EuroSAT class folders under ROOT."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", help="folder to write the class folders into")
    parser.add_argument("--per-class", type=int, default=None, help="at most N images per class (default: all)")
    args = parser.parse_args(argv)
    n = write_digits_folder(args.root, args.per_class)
    print(f"wrote {n} digit images in EuroSAT's class-folder layout to {args.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
