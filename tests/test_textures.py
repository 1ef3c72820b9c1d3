"""The real rotation-invariant set: patches of bundled photographs in EuroSAT's layout."""
import os

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("skimage")

from schema import features
from schema.example_data import textures


def test_writes_every_class_in_eurosat_layout(tmp_path):
    n = textures.write_textures_folder(str(tmp_path), per_class=3)
    assert n == 3 * features.NUM_CLASSES
    assert sorted(os.listdir(tmp_path)) == sorted(features.CLASS_NAMES)
    for name in features.CLASS_NAMES:
        files = sorted(os.listdir(tmp_path / name))
        assert len(files) == 3 and all(f.startswith(f"{name}_") and f.endswith(".jpg") for f in files)
        image = Image.open(tmp_path / name / files[0])
        assert image.size == (features.IMAGE_SIZE, features.IMAGE_SIZE) and image.mode == "RGB"


def test_one_photograph_per_class_and_patches_differ():
    pairs = list(textures.texture_images(per_class=4))
    assert [label for _, label in pairs] == [c for c in range(features.NUM_CLASSES) for _ in range(4)]
    means = [np.mean([img.mean(axis=(0, 1)) for img, label in pairs if label == c], axis=0)
             for c in range(features.NUM_CLASSES)]
    # Ten different photographs: no two classes look alike on average colour alone.
    assert len({tuple(np.round(m)) for m in means}) == features.NUM_CLASSES
    # Patches within a class are different crops, not copies.
    first = [img for img, label in pairs if label == 0]
    assert not np.array_equal(first[0], first[1])
    assert len(textures.TEXTURE_SOURCES) == features.NUM_CLASSES


def test_default_size_and_determinism():
    a = [img for img, _ in textures.texture_images(per_class=2)]
    b = [img for img, _ in textures.texture_images(per_class=2)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    # The default set (940 patches) fits every photograph at a stride of at least MIN_STRIDE.
    for _, load, box in textures.TEXTURE_SOURCES:
        image = textures.as_rgb(load())
        if box:
            image = image[box[0]:box[2], box[1]:box[3]]
        assert textures.grid_stride(*image.shape[:2], textures.DEFAULT_PER_CLASS) >= textures.MIN_STRIDE


def test_too_many_patches_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        textures.main([str(tmp_path), "--per-class", "100000"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "fewer than 100000 patches" in err and "--per-class" in err
