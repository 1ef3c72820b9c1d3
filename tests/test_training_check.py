"""The map's check that a scene is like the model's training data (pipeline/mapping/training_check.py,
serving/training_statistics.py), and the scenes that were silent garbage (issue 26 item 11): float
reflectance, NaN pixels, a non-finite --dn-range."""
from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

import pipeline_runner
from pipeline.mapping import cells, landuse, pixels, predictors, training_check
from pipeline.mapping.errors import MapError
from pipeline.mapping.options import MapOptions
from schema import features
from schema.example_data import synthetic
from serving import training_statistics
from tests import mapping_fixtures

PERMUTED = [*range(8), *range(9, 13), 8]  # the model's 9th band moved to 13th (B8A: EuroSAT's order vs the README's)


def paint(modality: str, count: int, seed: int) -> np.ndarray:
    return mapping_fixtures.synthetic_patches(count, modality, seed)[0]


def statistics_of(patches: np.ndarray, modality: str) -> dict:
    values = patches.astype(np.float64)
    return training_statistics.of_modality(values.mean((1, 2)), (values ** 2).mean((1, 2)), modality)


def check(patches: np.ndarray, training: dict, modality: str) -> dict:
    scene = training_check.SceneStatistics.for_training(training, patches.shape[-1])
    scene.add(patches)
    return training_check.compare(scene, training, modality, pixels.EUROSAT_DN_RANGE)


def write_scene(path, patches: np.ndarray, cols: int = 10, dtype=None) -> str:
    """A GeoTIFF of `patches` [n, 64, 64, C] laid out `cols` to a row (n a multiple of cols)."""
    rows = len(patches) // cols
    grid = patches[: rows * cols].reshape(rows, cols, 64, 64, -1).transpose(0, 2, 1, 3, 4).reshape(rows * 64, cols * 64, -1)
    with rasterio.open(path, "w", driver="GTiff", width=cols * 64, height=rows * 64, count=grid.shape[-1],
                       dtype=dtype or grid.dtype.name, crs=synthetic.SCENE_CRS,
                       transform=from_origin(*synthetic.SCENE_ORIGIN, 10, 10)) as dst:
        dst.write(np.moveaxis(grid, -1, 0))
    return str(path)


# --- pure pieces -------------------------------------------------------------------------------
def test_statistics_are_those_of_the_pixels():
    patches = paint(features.ALL_BANDS, 50, seed=1)
    stats = statistics_of(patches, features.ALL_BANDS)
    assert stats["band_order"] == list(features.BAND_NAMES) and stats["patches"] == 50
    b10 = stats["bands"]["B10"]
    values = patches[..., features.BAND_NAMES.index("B10")].astype(np.float64)
    assert b10["pixel_mean"] == pytest.approx(values.mean(), abs=1e-3)
    assert b10["pixel_std"] == pytest.approx(values.std(), rel=1e-4)
    assert b10["patch_mean"]["p50"] == pytest.approx(np.median(values.mean((1, 2))), abs=1e-3)
    assert b10["patch_std"]["p50"] == pytest.approx(np.median(values.std((1, 2))), rel=1e-3)
    assert statistics_of(paint(features.RGB, 20, 1), features.RGB)["band_order"] == ["B04", "B03", "B02"]


def test_scene_statistics_of_strips_merge_to_those_of_the_whole():
    training = statistics_of(paint(features.ALL_BANDS, 200, seed=5), features.ALL_BANDS)
    scene = paint(features.ALL_BANDS, 60, seed=7) + 300
    whole = training_check.SceneStatistics.for_training(training, 13)
    whole.add(scene)
    parts = []
    for strip in np.split(scene, 6):
        part = training_check.SceneStatistics.for_training(training, 13)
        part.add(strip)
        parts.append(part)
    merged = training_check.merge_all(parts)
    assert merged.patches == whole.patches == 60
    np.testing.assert_allclose(merged.means, whole.means)
    np.testing.assert_array_equal(merged.below + merged.above, whole.below + whole.above)
    assert parts[0].patches == 10  # the parts are left as they were


def test_comparison_is_silent_on_the_test_split_and_names_the_cause_otherwise():
    modality = features.ALL_BANDS
    training = statistics_of(paint(modality, 500, seed=5), modality)
    test = paint(modality, 200, seed=99)
    assert check(test, training, modality)["status"] == "ok"
    for label in range(features.NUM_CLASSES):  # a scene of one land cover is no drift
        assert check(test[np.arange(200) % 10 == label], training, modality)["status"] == "ok"
    offset = check(test + np.uint16(1000), training, modality)
    assert offset["status"] == "warning" and "radiometric offset" in offset["likely_cause"]
    assert "B10" in offset["bands_out_of_range"] and offset["bands"]["B10"]["shift"] == pytest.approx(1000, abs=5)
    assert "B10 +1000 DN" in offset["message"]
    order = check(test[..., PERMUTED], training, modality)
    assert order["status"] == "warning" and "wrong band order" in order["likely_cause"]
    assert f"band 9 (should be {features.BAND_NAMES[8]}) looks like {features.BAND_NAMES[9]}" in order["likely_cause"]
    assert order["likely_cause"].count(" looks like ") == 5  # the bands moved, no chance swap of similar ones
    l2a = test.copy()
    l2a[..., features.BAND_NAMES.index("B10")] = 0
    assert "L2A" in check(l2a, training, modality)["likely_cause"]
    half = check((test // 2).astype(np.uint16), training, modality)
    assert "wrong scaling" in half["likely_cause"] and "0.50x" in half["likely_cause"]


def test_rgb_comparison_sees_the_offset_through_the_dn_scaling():
    training = statistics_of(paint(features.RGB, 500, seed=5), features.RGB)
    test = paint(features.RGB, 200, seed=99)
    assert check(test, training, features.RGB)["status"] == "ok"
    digital_numbers = (test.astype(np.float64) - 1.0) * 2750.0 / 254.0
    shifted = check(pixels.dn_to_uint8(digital_numbers + 1000), training, features.RGB)
    assert shifted["status"] == "warning" and "radiometric offset" in shifted["likely_cause"]


def test_a_statistics_file_that_is_not_one_is_refused_in_one_line(tmp_path):
    bad = tmp_path / "stats.json"
    bad.write_text('{"format": 99}')
    with pytest.raises(MapError, match="not a training_statistics.json"):
        training_check.statistics_file(str(bad))
    with pytest.raises(MapError, match="no such file"):
        training_check.statistics_file(str(tmp_path / "missing.json"))


# --- issue 26 item 11: silent garbage ----------------------------------------------------------
def test_non_finite_dn_range_is_refused():
    for low, high in ((0, float("inf")), (float("-inf"), 2750), (float("nan"), 2750)):
        with pytest.raises(MapError, match="--dn-range"):
            MapOptions(dn_range=(low, high))
        with pytest.raises(MapError, match="--dn-range"):
            pixels.dn_to_uint8(np.zeros(3, np.uint16), (low, high))


def test_nan_pixels_are_nodata_and_counted():
    values = np.full((64, 128, 3), 500.0, np.float32)
    values[3, 70, 1] = np.nan
    values[5, 71] = np.inf
    cleaned, bad = pixels.nonfinite_to_nodata(values)
    assert bad.sum() == 2 and (cleaned[3, 70] == 0).all() and (cleaned[5, 71] == 0).all()
    assert np.isnan(values[3, 70, 1])  # the caller's array is left as it is
    keep, _ = pixels.classifiable_patches(cleaned, np.full((64, 128), 255), [0, 64])
    assert keep.tolist() == [0]


def test_reflectance_is_refused_naming_the_fix():
    with pytest.raises(MapError, match="reflectance.*x 10,000"):
        pixels.check_float_values("r.tif", np.random.default_rng(0).uniform(0, 0.4, (3, 32, 32)))
    pixels.check_float_values("dn.tif", np.random.default_rng(0).uniform(0, 4000, (3, 32, 32)))  # digital numbers


# --- maps ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def test_split():
    """Patches of the fixture model's distribution it never saw (its 'test split'), 6 rows of 10."""
    return paint(features.ALL_BANDS, 60, seed=99)


def check_lines(caplog) -> list:
    return [r for r in caplog.records if r.name == training_check.__name__ and r.levelno >= logging.WARNING]


def test_the_exported_model_carries_its_training_statistics(bands_model):
    export_dir, _ = predictors.resolve_model(bands_model)
    stats = training_statistics.read(training_statistics.path_in(export_dir))
    assert stats["modality"] == features.ALL_BANDS and stats["band_order"] == list(features.BAND_NAMES)
    assert stats["patches"] == 500


def test_test_split_scene_is_silent_and_shifted_or_permuted_scenes_warn(bands_predictor, test_split, tmp_path,
                                                                          caplog):
    caplog.set_level(logging.INFO)
    silent = landuse.map_scene(write_scene(tmp_path / "test.tif", test_split), bands_predictor, str(tmp_path / "a"))
    assert silent["training_data_check"]["status"] == "ok" and not check_lines(caplog)
    assert silent["pixels_nonfinite"] == 0
    shifted = landuse.map_scene(write_scene(tmp_path / "offset.tif", test_split + np.uint16(1000)), bands_predictor,
                                str(tmp_path / "b"))
    block = shifted["training_data_check"]
    assert block["status"] == "warning" and "radiometric offset" in block["likely_cause"]
    assert len(block["bands_out_of_range"]) >= 5 and "B10" in block["bands_out_of_range"]
    [line] = check_lines(caplog)
    assert line.getMessage().startswith("training-data check: the scene is unlike") and "B10 +1000 DN" in line.getMessage()
    with open(tmp_path / "b" / "summary.json") as f:
        assert json.load(f)["training_data_check"] == block
    permuted = landuse.map_scene(write_scene(tmp_path / "order.tif", test_split[..., PERMUTED]), bands_predictor,
                                 str(tmp_path / "c"))
    assert "wrong band order" in permuted["training_data_check"]["likely_cause"]


def test_a_model_without_statistics_says_once_it_cannot_check(tmp_path, caplog):
    old = mapping_fixtures.train_and_export(str(tmp_path / "old"), features.RGB, count=50, epochs=1,
                                            with_statistics=False)
    caplog.set_level(logging.INFO)
    scene = write_scene(tmp_path / "rgb.tif", paint(features.RGB, 20, seed=3))
    summary = landuse.map_scene(scene, predictors.SavedModelPredictor(old), str(tmp_path / "map"))
    block = summary["training_data_check"]
    assert block["status"] == "unchecked" and "carries no training statistics" in block["reason"]
    [line] = check_lines(caplog)
    assert "not done" in line.getMessage() and "--training-statistics" in line.getMessage()


def test_endpoint_map_checks_with_the_statistics_from_model_or_file(bands_model, bands_server, test_split, tmp_path,
                                                                     capsys):
    scene = write_scene(tmp_path / "offset.tif", test_split + np.uint16(1000))
    stats_file = training_statistics.path_in(predictors.resolve_model(bands_model)[0])
    runs = {"none": [], "model": ["--model", bands_model], "file": ["--training-statistics", stats_file]}
    for name, extra in runs.items():
        argv = ["map", "--server", bands_server, "--input", scene, "--output", str(tmp_path / name), *extra]
        assert pipeline_runner.main(argv) == 0
    blocks = {}
    for name in runs:
        with open(tmp_path / name / "summary.json") as f:
            blocks[name] = json.load(f)["training_data_check"]
    assert blocks["none"]["status"] == "unchecked" and "TF Serving does not serve" in blocks["none"]["reason"]
    assert blocks["model"]["status"] == blocks["file"]["status"] == "warning"
    assert blocks["model"] == blocks["file"]


def test_beam_map_warns_too(bands_model, bands_predictor, test_split, tmp_path):
    from pipeline.mapping.beam import run_beam_maps

    inputs = [write_scene(tmp_path / "test.tif", test_split),
              write_scene(tmp_path / "offset.tif", test_split + np.uint16(1000))]
    outputs = run_beam_maps(inputs, bands_model, str(tmp_path / "maps"), ["--direct_running_mode=in_memory"])
    checks = {}
    for scene, folder in outputs.items():
        with open(os.path.join(folder, "summary.json")) as f:
            checks[os.path.basename(scene)] = json.load(f)["training_data_check"]
    assert checks["test.tif"]["status"] == "ok"
    assert checks["offset.tif"]["status"] == "warning" and "radiometric offset" in checks["offset.tif"]["likely_cause"]
    local = landuse.map_scene(inputs[1], bands_predictor, str(tmp_path / "local"))
    assert checks["offset.tif"] == local["training_data_check"]


def test_nan_pixels_of_a_float_scene_are_nodata_with_a_count(bands_predictor, test_split, tmp_path):
    values = test_split.astype(np.float32)
    values[3, 10:20, 5:9, 4] = np.nan  # 40 pixels of patch 3, 64 more of patch 25
    values[25, 0, :, 0] = np.nan
    summary = landuse.map_scene(write_scene(tmp_path / "nan.tif", values), bands_predictor, str(tmp_path / "map"))
    assert summary["pixels_nonfinite"] == 104 and summary["tiles_masked"] == 2
    with rasterio.open(tmp_path / "map" / "landuse.tif") as src:
        classes = src.read(1)
    assert classes[0, 3] == classes[2, 5] == cells.NODATA_CLASS and (classes != cells.NODATA_CLASS).sum() == 58


def one_line_error(capsys, argv) -> str:
    assert pipeline_runner.main(["map", *argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def test_float_reflectance_scene_and_infinite_dn_range_are_refused(bands_model, test_split, tmp_path, capsys):
    reflectance = write_scene(tmp_path / "reflectance.tif", test_split.astype(np.float32) / 10_000)
    line = one_line_error(capsys, ["--model", bands_model, "--input", reflectance, "--output", str(tmp_path / "a")])
    assert "reflectance (0..1)" in line and "gdal_translate" in line
    scene = write_scene(tmp_path / "dn.tif", test_split)
    line = one_line_error(capsys, ["--model", bands_model, "--input", scene, "--output", str(tmp_path / "b"),
                                   "--dn-range", "0,inf"])
    assert "--dn-range 0,inf: give finite digital numbers" in line
