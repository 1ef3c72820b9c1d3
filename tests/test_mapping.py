"""Land-use maps (pipeline/mapping): synthetic georeferenced scenes stitched from the synthetic
generator's patches in a known layout, mapped with a small trained model (tests/mapping_fixtures.py)
in process, through serving.server, and with the Beam DirectRunner."""
from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest
import rasterio
from affine import Affine

import pipeline_runner
from pipeline.mapping import cells, change, landuse, predictors
from pipeline.mapping import outputs as map_outputs
from pipeline.mapping import scene as scenes
from pipeline.mapping.errors import MapError
from pipeline.mapping.grid import TileGrid
from schema import features
from schema.example_data import synthetic
from tests import mapping_fixtures

NODATA = synthetic.NODATA_PATCH
MARGIN = 0.1  # the map may agree with the layout this much less than the model's own accuracy


def block_layout(rows: int, cols: int = 10) -> np.ndarray:
    """Every class in each row, shifted by one class a row; the first row nodata (zeros)."""
    layout = (np.arange(cols)[None, :] + np.arange(rows)[:, None]) % features.NUM_CLASSES
    layout[0] = NODATA
    return layout


@pytest.fixture(scope="session")
def rgb_predictor(rgb_model):
    return predictors.SavedModelPredictor(rgb_model)


@pytest.fixture(scope="session")
def scenes_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scenes")
    layout = block_layout(9)
    synthetic.write_synthetic_scene(str(folder / "rgb.tif"), layout, features.RGB, seed=1)
    synthetic.write_synthetic_scene(str(folder / "rgb_dn.tif"), layout, features.RGB, seed=1, rgb_dn=True)
    synthetic.write_synthetic_scene(str(folder / "bands.tif"), block_layout(6), features.ALL_BANDS, seed=2)
    return folder


@pytest.fixture(scope="session")
def rgb_map(scenes_dir, rgb_predictor, tmp_path_factory):
    out = tmp_path_factory.mktemp("rgb_map")
    summary = landuse.map_scene(str(scenes_dir / "rgb.tif"), rgb_predictor, str(out))
    return out, summary


def read_tif(path):
    with rasterio.open(path) as src:
        return src.read(1), src.profile


def layout_agreement(classes: np.ndarray, layout: np.ndarray) -> tuple:
    """(the layout's data cells, the share of them where the map has the layout's class)."""
    valid = layout != NODATA
    return valid, float((classes[valid] == layout[valid]).mean())


def model_accuracy(predictor, modality: str) -> float:
    """The model's accuracy on fresh synthetic patches through its own signature."""
    pixels, labels = mapping_fixtures.synthetic_patches(200, modality, seed=99)
    return float((predictor.predict(pixels).argmax(-1) == labels).mean())


# --- pure pieces -------------------------------------------------------------------------------
def test_tile_grid_covers_whole_patches_and_scales_the_transform():
    grid = TileGrid(height=200, width=130)
    assert (grid.rows, grid.cols, grid.cell_rows, grid.cell_cols) == (3, 2, 3, 2)  # edge remainder dropped
    overlapping = TileGrid(height=200, width=130, stride=32)
    assert (overlapping.rows, overlapping.cols, overlapping.cell_rows, overlapping.cell_cols) == (5, 3, 6, 4)
    transform = Affine(10, 0, 500000, 0, -10, 5200000)
    assert overlapping.cell_transform(transform) == Affine(320, 0, 500000, 0, -320, 5200000)
    assert grid.patch_centre(transform, 1, 1) == (500000 + 96 * 10, 5200000 - 96 * 10)
    with pytest.raises(MapError, match="must divide 64"):
        TileGrid(200, 200, stride=48)
    with pytest.raises(MapError, match="smaller than one 64x64 patch"):
        TileGrid(63, 500)


def test_dn_scaling_follows_eurosat_and_passes_8_bit_through():
    eight_bit = np.array([[0, 17, 255]], np.uint8)
    assert scenes.dn_to_uint8(eight_bit) is eight_bit
    dn = np.array([0, 1375, 2750, 9000], np.uint16)
    np.testing.assert_array_equal(scenes.dn_to_uint8(dn), [1, 128, 255, 255])
    np.testing.assert_array_equal(scenes.dn_to_uint8(np.array([0, 550, 2750, 9000]), (0, 5500)), [1, 26, 128, 255])
    image = synthetic.synthetic_image(3, np.random.default_rng(0))  # the scene writer's inverse
    back = scenes.dn_to_uint8(synthetic.scene_patch(3, np.random.default_rng(0), features.RGB, rgb_dn=True))
    np.testing.assert_array_equal(back, np.maximum(image, 1))


def test_overlapping_patches_average_their_probabilities():
    grid = TileGrid(height=96, width=64, stride=32)  # 2 patch rows overlapping in cell row 1
    acc = landuse.MapAccumulator(grid)
    a = np.eye(features.NUM_CLASSES, dtype=np.float32)[[2]] * 0.9 + 0.01
    b = np.eye(features.NUM_CLASSES, dtype=np.float32)[[5]] * 0.6 + 0.04
    acc.add(np.array([0]), np.array([0]), a)
    acc.add(np.array([1]), np.array([0]), b)
    classes, confidence = acc.result()
    assert classes[:, 0].tolist() == [2, 2, 5]  # row 1: mean of a and b, where 2 wins (0.455 vs 0.32)
    np.testing.assert_allclose(confidence[:, 0], [a[0, 2], (a[0, 2] + b[0, 2]) / 2, b[0, 5]], rtol=1e-6)


def test_batches_regroup_strips_and_report_masked_patches():
    strip = lambda row, n, masked: scenes.Strip(row, np.arange(n), np.zeros((n, 2), np.uint8), masked)  # noqa: E731
    masked = []
    out = list(landuse.batches([strip(0, 3, 1), strip(1, 0, 4), strip(2, 4, 0)], 5, masked.append))
    assert [len(b.rows) for b in out] == [5, 2] and masked == [1, 4]
    assert out[0].rows.tolist() == [0, 0, 0, 2, 2] and out[1].cols.tolist() == [2, 3]


def test_progress_line_gives_rate_and_time_left():
    now = [0.0]
    progress = landuse.Progress(100, "scene", clock=lambda: now[0])
    now[0] = 5.0
    progress.done = 40
    assert progress.line(now[0]) == "scene: 40/100 tiles (40 %), 8.0 tiles/s, 8 s left"


def test_transition_counts_leave_nodata_out():
    earlier = np.array([[1, 1, 2, 255]], np.uint8)
    later = np.array([[1, 7, 7, 7]], np.uint8)
    counts = change.transition_counts(earlier, later)
    assert counts[1, 1] == 1 and counts[1, 7] == 1 and counts[2, 7] == 1 and counts.sum() == 3


# --- maps of synthetic scenes -------------------------------------------------------------------
def test_rgb_map_matches_the_layout_and_the_model_patch_by_patch(scenes_dir, rgb_map, rgb_predictor):
    out, summary = rgb_map
    classes, profile = read_tif(out / "landuse.tif")
    valid, agreement = layout_agreement(classes, block_layout(9))
    accuracy = model_accuracy(rgb_predictor, features.RGB)
    assert accuracy >= 0.7, "the fixture model must classify, or the layout check says nothing"
    assert agreement >= accuracy - MARGIN, (agreement, accuracy)
    # the map's class of each patch is the model's own prediction for that patch
    with rasterio.open(scenes_dir / "rgb.tif") as src:
        pixels = np.moveaxis(src.read(), 0, -1)
    patches = np.stack([pixels[r * 64:(r + 1) * 64, c * 64:(c + 1) * 64] for r, c in zip(*np.nonzero(valid))])
    np.testing.assert_array_equal(classes[valid], rgb_predictor.predict(patches).argmax(-1))
    assert summary["tiles_classified"] == valid.sum() and summary["tiles_masked"] == (~valid).sum()


def test_map_is_georeferenced_and_masks_nodata(scenes_dir, rgb_map):
    out, summary = rgb_map
    classes, profile = read_tif(out / "landuse.tif")
    confidence, conf_profile = read_tif(out / "confidence.tif")
    with rasterio.open(scenes_dir / "rgb.tif") as src:
        assert profile["crs"] == src.crs and conf_profile["crs"] == src.crs
        assert profile["transform"] == src.transform @ Affine.scale(64)
        assert profile["transform"] @ (0, 0) == src.transform @ (0, 0)
    assert profile["dtype"] == "uint8" and profile["nodata"] == cells.NODATA_CLASS
    assert (classes[0] == cells.NODATA_CLASS).all() and (confidence[0] == cells.NODATA_CONFIDENCE).all()
    assert (classes[1:] < features.NUM_CLASSES).all() and (confidence[1:] >= 0.1).all()
    with open(out / "tiles.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == summary["tiles_classified"]
    first = rows[0]
    assert (int(first["row"]), int(first["col"])) == (1, 0)  # row 0 is nodata
    assert float(first["x"]) == 500000 + 32 * 10 and float(first["y"]) == 5200000 - 96 * 10
    assert int(first["class_id"]) == classes[1, 0]
    assert summary["cell_area_ha"] == pytest.approx(40.96)  # 640 m x 640 m
    assert sum(summary["area_ha"].values()) == pytest.approx(summary["cells_mapped"] * 40.96)
    assert summary["model_version"] == "1" and summary["crs"] == synthetic.SCENE_CRS
    assert os.path.getsize(out / "landuse.png") > 10_000


def test_rgb_digital_numbers_map_like_the_8_bit_scene(scenes_dir, rgb_map, rgb_predictor, tmp_path):
    landuse.map_scene(str(scenes_dir / "rgb_dn.tif"), rgb_predictor, str(tmp_path))
    eight_bit, _ = read_tif(rgb_map[0] / "landuse.tif")
    from_dn, _ = read_tif(tmp_path / "landuse.tif")
    assert (eight_bit == from_dn).mean() >= 0.95  # pixels of 0 become 1: nothing else changes


def test_13_band_map_matches_the_layout(scenes_dir, bands_predictor, tmp_path):
    predictor = bands_predictor
    assert predictor.modality == features.ALL_BANDS
    summary = landuse.map_scene(str(scenes_dir / "bands.tif"), predictor, str(tmp_path))
    classes, _ = read_tif(tmp_path / "landuse.tif")
    valid, agreement = layout_agreement(classes, block_layout(6))
    accuracy = model_accuracy(predictor, features.ALL_BANDS)
    assert accuracy >= 0.7, "the fixture model must classify, or the layout check says nothing"
    assert agreement >= accuracy - MARGIN
    assert (classes[~valid] == cells.NODATA_CLASS).all() and summary["modality"] == "all"


def test_partial_nodata_patches_are_masked_unless_allowed(scenes_dir, rgb_predictor, tmp_path):
    path = tmp_path / "holes.tif"
    synthetic.write_synthetic_scene(str(path), block_layout(3), features.RGB, seed=4)
    with rasterio.open(path, "r+") as dst:  # a 16x16 hole in patch (1, 2) and (2, 5)
        dst.write(np.zeros((3, 16, 16), np.uint8), window=rasterio.windows.Window(2 * 64 + 10, 64 + 5, 16, 16))
        dst.write(np.zeros((3, 16, 16), np.uint8), window=rasterio.windows.Window(5 * 64, 2 * 64, 16, 16))
    landuse.map_scene(str(path), rgb_predictor, str(tmp_path / "strict"))
    strict, _ = read_tif(tmp_path / "strict" / "landuse.tif")
    assert strict[1, 2] == strict[2, 5] == cells.NODATA_CLASS and (strict[1:] != 255).sum() == 18
    landuse.map_scene(str(path), rgb_predictor, str(tmp_path / "lenient"),
                      landuse.MapOptions(max_nodata_fraction=0.1))
    lenient, _ = read_tif(tmp_path / "lenient" / "landuse.tif")
    assert (lenient[1:] != 255).all()


def test_stride_32_maps_finer_cells_on_the_same_footprint(scenes_dir, rgb_predictor, tmp_path):
    summary = landuse.map_scene(str(scenes_dir / "rgb.tif"), rgb_predictor, str(tmp_path),
                                landuse.MapOptions(stride=32))
    classes, profile = read_tif(tmp_path / "landuse.tif")
    assert classes.shape == (18, 20) and summary["tiles"] == 17 * 19
    with rasterio.open(scenes_dir / "rgb.tif") as src:
        assert profile["transform"] == src.transform @ Affine.scale(32)
    assert (classes[:2] == cells.NODATA_CLASS).all() and (classes[2:] != cells.NODATA_CLASS).all()


def test_folder_and_zip_of_georeferenced_patches_are_mosaicked_and_mapped(scenes_dir, rgb_map, rgb_predictor,
                                                                         tmp_path):
    import zipfile

    from rasterio.windows import Window
    from rasterio.windows import transform as window_transform

    folder = tmp_path / "patches" / "Scene_1"
    folder.mkdir(parents=True)
    with rasterio.open(scenes_dir / "rgb.tif") as src:
        for r in range(1, 4):
            for c in range(2, 6):
                window = Window(c * 64, r * 64, 64, 64)
                profile = dict(driver="GTiff", width=64, height=64, count=3, dtype="uint8", crs=src.crs,
                               transform=window_transform(window, src.transform))
                with rasterio.open(folder / f"patch_{r}_{c}.tif", "w", **profile) as dst:
                    dst.write(src.read(window=window))
    with zipfile.ZipFile(tmp_path / "patches.zip", "w") as archive:
        for f in sorted(folder.iterdir()):
            archive.write(f, f"Scene_1/{f.name}")
    expected = read_tif(rgb_map[0] / "landuse.tif")[0][1:4, 2:6]
    for name, source in (("from_folder", tmp_path / "patches"), ("from_zip", tmp_path / "patches.zip")):
        landuse.map_scene(str(source), rgb_predictor, str(tmp_path / name))
        classes, profile = read_tif(tmp_path / name / "landuse.tif")
        np.testing.assert_array_equal(classes, expected)
        assert profile["transform"] @ (0, 0) == (500000 + 2 * 640, 5200000 - 640)
    with rasterio.open(folder / "bare.tif", "w", driver="GTiff", width=64, height=64, count=3, dtype="uint8") as dst:
        dst.write(np.full((3, 64, 64), 90, np.uint8))  # no CRS, no transform
    with pytest.raises(MapError, match="has no georeference"):
        landuse.map_scene(str(tmp_path / "patches"), rgb_predictor, str(tmp_path / "again"))


@pytest.fixture(scope="module")
def server(rgb_model):
    with mapping_fixtures.dev_server(rgb_model) as address:
        yield address


def test_endpoint_gives_the_same_map_as_in_process(scenes_dir, rgb_map, server, tmp_path):
    predictor = predictors.EndpointPredictor(server, mapping_fixtures.MODEL_NAME)
    try:
        assert (predictor.modality, predictor.version) == (features.RGB, "1")
        landuse.map_scene(str(scenes_dir / "rgb.tif"), predictor, str(tmp_path),
                          landuse.MapOptions(batch_size=16))
    finally:
        predictor.close()
    np.testing.assert_array_equal(read_tif(tmp_path / "landuse.tif")[0], read_tif(rgb_map[0] / "landuse.tif")[0])
    np.testing.assert_allclose(read_tif(tmp_path / "confidence.tif")[0], read_tif(rgb_map[0] / "confidence.tif")[0],
                               atol=1e-5)


def test_13_band_endpoint_gives_the_same_map_as_in_process(scenes_dir, bands_predictor, bands_server, tmp_path):
    landuse.map_scene(str(scenes_dir / "bands.tif"), bands_predictor, str(tmp_path / "local"))
    predictor = predictors.EndpointPredictor(bands_server, mapping_fixtures.MODEL_NAME)
    try:
        assert predictor.modality == features.ALL_BANDS
        landuse.map_scene(str(scenes_dir / "bands.tif"), predictor, str(tmp_path / "endpoint"))
    finally:
        predictor.close()
    np.testing.assert_array_equal(read_tif(tmp_path / "endpoint" / "landuse.tif")[0],
                                  read_tif(tmp_path / "local" / "landuse.tif")[0])


def test_beam_direct_runner_gives_the_same_maps(scenes_dir, rgb_model, rgb_map, tmp_path):
    from pipeline.mapping.beam import run_beam_maps

    inputs = [str(scenes_dir / "rgb.tif"), str(scenes_dir / "rgb_dn.tif")]
    outputs = run_beam_maps(inputs, rgb_model, str(tmp_path), ["--direct_running_mode=in_memory"],
                            landuse.MapOptions(batch_size=32))
    assert outputs == {inputs[0]: str(tmp_path / "rgb"), inputs[1]: str(tmp_path / "rgb_dn")}
    assert sorted(os.listdir(tmp_path / "rgb")) == sorted(map_outputs.FILES)
    np.testing.assert_array_equal(read_tif(tmp_path / "rgb" / "landuse.tif")[0],
                                  read_tif(rgb_map[0] / "landuse.tif")[0])
    np.testing.assert_allclose(read_tif(tmp_path / "rgb" / "confidence.tif")[0],
                               read_tif(rgb_map[0] / "confidence.tif")[0], atol=1e-5)
    with open(tmp_path / "rgb" / "tiles.csv") as f, open(rgb_map[0] / "tiles.csv") as g:
        assert [r[:5] for r in csv.reader(f)] == [r[:5] for r in csv.reader(g)]


def test_compare_gives_transitions_in_hectares(scenes_dir, rgb_map, rgb_model, tmp_path):
    later_layout = block_layout(9)
    later_layout[1:5, :5] = 1  # the top-left quarter turned into forest
    path = tmp_path / "later.tif"
    synthetic.write_synthetic_scene(str(path), later_layout, features.RGB, seed=7)
    code = pipeline_runner.main(["map", "--model", rgb_model, "--input", str(path),
                                 "--output", str(tmp_path / "later"), "--compare", str(rgb_map[0])])
    assert code == 0
    earlier, _ = read_tif(rgb_map[0] / "landuse.tif")
    later, _ = read_tif(tmp_path / "later" / "landuse.tif")
    summary = json.loads((tmp_path / "later" / "summary.json").read_text())["change"]
    both = (earlier != 255) & (later != 255)
    assert summary["unit"] == "ha"
    assert summary["compared"] == pytest.approx(both.sum() * 40.96)
    assert summary["changed"] == pytest.approx(((earlier != later) & both).sum() * 40.96)
    assert summary["matrix"]["Forest"]["Forest"] == pytest.approx(((earlier == 1) & (later == 1)).sum() * 40.96)
    with open(tmp_path / "later" / "transitions.csv") as f:
        table = list(csv.reader(f))
    assert table[0][1:] == list(features.CLASS_NAMES) and len(table) == 11
    assert os.path.getsize(tmp_path / "later" / "change.png") > 10_000
    sure = change.compare(str(rgb_map[0]), str(tmp_path / "later"), min_confidence=0.9)
    confident = both & (read_tif(rgb_map[0] / "confidence.tif")[0] >= 0.9) & (
        read_tif(tmp_path / "later" / "confidence.tif")[0] >= 0.9)
    assert 0 < confident.sum() < both.sum()
    assert sure["compared"] == pytest.approx(confident.sum() * 40.96)
    assert sure["left_out_uncertain"] == pytest.approx((both & ~confident).sum() * 40.96)
    assert sure["changed"] == pytest.approx(((earlier != later) & confident).sum() * 40.96)


def test_compare_refuses_another_grid(rgb_map, tmp_path):
    map_outputs.write_geotiff(str(tmp_path / "landuse.tif"), np.zeros((3, 3), np.uint8), synthetic.SCENE_CRS,
                          Affine(640, 0, 0, 0, -640, 0), 255)
    (tmp_path / "summary.json").write_text("{}")  # a whole map (--compare refuses one without)
    with pytest.raises(MapError, match="is not on this map's grid"):
        change.compare(str(tmp_path), str(rgb_map[0]))


# --- bad input: one line, exit code 2 -----------------------------------------------------------
def _one_line_error(capsys, argv) -> str:
    assert pipeline_runner.main(["map", *argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ")
    return last


def test_bad_inputs_get_one_line_errors(rgb_model, bands_model, scenes_dir, tmp_path, capsys):
    out = str(tmp_path / "out")
    text = tmp_path / "notes.tif"
    text.write_text("not a raster\n")
    assert "is not a raster GDAL can read" in _one_line_error(
        capsys, ["--model", rgb_model, "--input", str(text), "--output", out])
    line = _one_line_error(capsys, ["--model", rgb_model, "--input", str(scenes_dir / "bands.tif"), "--output", out])
    assert "has 13 bands but the model is an RGB model" in line
    line = _one_line_error(capsys, ["--model", bands_model, "--input", str(scenes_dir / "rgb.tif"), "--output", out])
    assert "has 3 bands but the model is a 13-band model" in line
    empty = tmp_path / "empty.tif"
    synthetic.write_synthetic_scene(str(empty), np.full((2, 3), NODATA), features.RGB)
    assert "has no patch without nodata" in _one_line_error(
        capsys, ["--model", rgb_model, "--input", str(empty), "--output", out])
    small = tmp_path / "small.tif"
    with rasterio.open(small, "w", driver="GTiff", width=40, height=32, count=3, dtype="uint8") as dst:
        dst.write(np.full((3, 32, 40), 100, np.uint8))
    assert "smaller than one 64x64 patch" in _one_line_error(
        capsys, ["--model", rgb_model, "--input", str(small), "--output", out])
    assert "no such file" in _one_line_error(
        capsys, ["--model", rgb_model, "--input", str(tmp_path / "missing.tif"), "--output", out])
    assert "neither a SavedModel" in _one_line_error(
        capsys, ["--model", str(tmp_path), "--input", str(small), "--output", out])
    assert "--stride 48" in _one_line_error(
        capsys, ["--model", rgb_model, "--input", str(scenes_dir / "rgb.tif"), "--output", out, "--stride", "48"])
    assert "--dn-range" in _one_line_error(
        capsys, ["--model", rgb_model, "--input", str(scenes_dir / "rgb.tif"), "--output", out, "--dn-range", "x"])


def test_hectares_need_a_projected_crs():
    cell = Affine(640, 0, 500000, 0, -640, 5200000)
    assert map_outputs.cell_area_ha(rasterio.crs.CRS.from_epsg(32632).to_wkt(), cell) == pytest.approx(40.96)
    assert map_outputs.cell_area_ha(rasterio.crs.CRS.from_epsg(4326).to_wkt(), Affine(0.01, 0, 8, 0, -0.01, 50)) is None
    assert map_outputs.cell_area_ha(None, cell) is None


def test_map_beam_on_dataflow_gets_the_pipelines_dataflow_arguments(monkeypatch, capsys):
    from pipeline.mapping import beam

    calls = []
    monkeypatch.setattr(beam, "run_beam_maps", lambda *a: calls.append(a) or {a[0][0]: a[2]})
    argv = ["map", "--beam", "--model", "gs://b/serving/eurosat", "--input", "gs://b/a.tif", "--output", "gs://b/maps",
            "--beam-runner", "dataflow", "--project", "p", "--region", "europe-west4", "--temp-location", "gs://b/tmp",
            "--image", "europe-docker.pkg.dev/p/ml/eurosat-tfx:1"]
    assert pipeline_runner.main(argv) == 0
    (inputs, model, output, beam_args, options, statistics_file), = calls
    assert inputs == ["gs://b/a.tif"] and model == "gs://b/serving/eurosat" and output == "gs://b/maps"
    assert statistics_file is None  # read from the model by default
    assert beam_args == ["--runner=DataflowRunner", "--project=p", "--region=europe-west4",
                         "--temp_location=gs://b/tmp",
                         "--sdk_container_image=europe-docker.pkg.dev/p/ml/eurosat-tfx:1"]
    assert pipeline_runner.main(argv[:-8] + ["--beam-runner", "dataflow"]) == 2
    assert "needs --project, --region, --temp-location, --image" in capsys.readouterr().err


def test_huge_scenes_are_refused_before_anything_is_allocated(rgb_predictor, tmp_path):
    def sparse(name, width, height):  # a header claiming a huge raster; GDAL writes no pixels
        path = tmp_path / name
        with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=3, dtype="uint8",
                           crs=synthetic.SCENE_CRS, transform=Affine(10, 0, 0, 0, -10, 0), tiled=True,
                           sparse_ok=True, BIGTIFF="YES"):
            pass
        return str(path)

    with pytest.raises(MapError, match="more than the 25,000,000 kept in memory"):
        landuse.map_scene(sparse("wide_map.tif", 41_000, 41_000), rgb_predictor, str(tmp_path / "a"),
                          landuse.MapOptions(stride=8))
    with pytest.raises(MapError, match="one strip of 64 rows would take 1.1 GiB"):
        landuse.map_scene(sparse("wide.tif", 6_000_000, 64), rgb_predictor, str(tmp_path / "b"))
    far = tmp_path / "far"
    far.mkdir()
    for i, x in enumerate((0, 500_000)):  # two patches 500 km apart, east and south
        with rasterio.open(far / f"p{i}.tif", "w", driver="GTiff", width=64, height=64, count=3, dtype="uint8",
                           crs=synthetic.SCENE_CRS, transform=Affine(10, 0, x, 0, -10, -x)) as dst:
            dst.write(np.full((3, 64, 64), 90, np.uint8))
    with pytest.raises(MapError, match="spread over .* pixels, more than"):
        landuse.map_scene(str(far), rgb_predictor, str(tmp_path / "c"))
