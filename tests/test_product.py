"""Sentinel-2 products as delivered (pipeline/mapping/product.py, bands.py): products written in the
real layout by tests/product_fixtures.py from a synthetic 13-band scene, read and mapped with the
small models of tests/mapping_fixtures.py (trained as test_mapping's fixtures are)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import rasterio

from pipeline.mapping import cells, landuse, predictors
from pipeline.mapping.bands import ProductRaster
from pipeline.mapping.errors import MapError
from pipeline.mapping.options import MapOptions
from pipeline.mapping.product import find_product
from schema import features
from schema.example_data import synthetic
from tests import mapping_fixtures
from tests import product_fixtures as pf
from tests.test_mapping import _one_line_error, read_tif

ROWS, COLS = 6, 9  # patches: 384 x 576 px, whole 60 m pixels
CLOUDY = (3, 4)  # the patch under a cloud in the products written with clouds


def layout() -> np.ndarray:
    classes = (np.arange(COLS)[None, :] + np.arange(ROWS)[:, None]) % features.NUM_CLASSES
    classes[0, :2] = synthetic.NODATA_PATCH  # a no-data corner, as a tile's swath edge
    return classes


@pytest.fixture(scope="module")
def products(tmp_path_factory):
    """One scene as: a baseline-02 folder of band files (no offset), baseline-02 and -05 L1C .SAFE
    (05: DN + 1000, a cloud mask), the latter zipped, and an L2A .SAFE of baseline 05 with its SCL."""
    root = tmp_path_factory.mktemp("products")
    scene = synthetic.write_synthetic_scene(str(root / "scene.tif"), layout(), features.ALL_BANDS, seed=2)
    clouds = np.zeros((ROWS, COLS), bool)
    clouds[CLOUDY] = True
    out = {"scene": scene}
    pf.write_band_folder(scene, str(root / "bucket"), name="T32TMT_20230621T103629_{band}.jp2")
    out["bucket"] = str(root / "bucket")
    out["l1c_02"] = pf.write_product(scene, str(root / "l1c_02"), "L1C", "02.14")
    out["l1c_05"] = pf.write_product(scene, str(root / "l1c_05"), "L1C", "05.09", clouds)
    out["l1c_05_zip"] = pf.zip_product(out["l1c_05"], str(root))
    out["l2a_05"] = pf.write_product(scene, str(root / "l2a_05"), "L2A", "05.09", clouds)
    return out


def read_all(path: str, modality: str = features.ALL_BANDS, **options) -> np.ndarray:
    opts = MapOptions(**options)
    with ProductRaster(find_product(path, opts.dn_offset), modality, opts.cloud_mask) as raster:
        return raster.read(list(range(1, raster.count + 1)))


# --- the band order ----------------------------------------------------------------------------------
def test_band_order_is_eurosats_with_b8a_13th():
    assert features.BAND_NAMES == ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11",
                                   "B12", "B8A")
    forest = synthetic.synthetic_bands(features.class_id("Forest"), np.random.default_rng(0)).astype(float)
    # the synthetic spectra follow it: Forest's B8A (~2800) is band 13, its B09 (~850) band 9
    assert 2300 < forest[..., 12].mean() < 3300 and 600 < forest[..., 8].mean() < 1100


def test_a_13_band_model_gets_the_bands_in_eurosats_order(products):
    with rasterio.open(products["scene"]) as src:
        scene = src.read()
    values = read_all(products["l1c_02"])
    means = values.reshape(13, -1).mean(1)
    expected = scene.reshape(13, -1).mean(1)
    np.testing.assert_allclose(means, expected, rtol=0.02, atol=5)  # band k of the product is the scene's band k
    assert read_all(products["l1c_02"], features.RGB).shape[0] == 3  # RGB: B04, B03, B02
    np.testing.assert_array_equal(read_all(products["l1c_02"], features.RGB), values[[3, 2, 1]])


# --- the layout: GDAL's own driver opens what the tests write ------------------------------------------
@pytest.mark.parametrize("name", ["l1c_02", "l1c_05", "l2a_05"])
def test_products_are_faithful_enough_for_gdals_sentinel2_driver(products, name):
    level = "L2A" if name.startswith("l2a") else "L1C"
    with rasterio.open(os.path.join(products[name], f"MTD_MSI{level}.xml")) as ds:
        assert ds.driver == "SENTINEL2"
        kinds = {s.split(":")[-2] for s in ds.subdatasets}
    assert {"10m", "20m", "60m"} <= kinds


# --- resampling --------------------------------------------------------------------------------------
def test_coarse_bands_are_resampled_by_cubic_spline_window_by_window(tmp_path):
    """A ramp in x at 20 and 60 m comes back a ramp at 10 m (cubic splines reproduce straight lines;
    nearest neighbour would give steps of up to 3 px x 2 DN), and strip reads equal a whole read."""
    width, height = 576, 384
    ramp = (1000 + 2 * np.arange(width, dtype=np.float64))[None, None, :].repeat(height, 1).repeat(13, 0)
    with rasterio.open(tmp_path / "ramp.tif", "w", driver="GTiff", width=width, height=height, count=13,
                       dtype="uint16", crs=synthetic.SCENE_CRS,
                       transform=rasterio.transform.from_origin(*synthetic.SCENE_ORIGIN, 10, 10)) as dst:
        dst.write(ramp.astype(np.uint16))
    pf.write_band_folder(str(tmp_path / "ramp.tif"), str(tmp_path / "bands"))
    with ProductRaster(find_product(str(tmp_path / "bands")), features.ALL_BANDS) as raster:
        whole = raster.read(list(range(1, 14)))
        strips = np.concatenate([raster.read(list(range(1, 14)), window=rasterio.windows.Window(0, r, width, 64))
                                 for r in range(0, height, 64)], axis=1)
    np.testing.assert_array_equal(strips, whole)
    interior = whole[:, 24:-24, 24:-24].astype(float) - ramp[:, 24:-24, 24:-24]
    assert np.abs(interior).max() <= 1.0, np.abs(interior).max(axis=(1, 2))


# --- the radiometric offset --------------------------------------------------------------------------
def test_the_offset_is_removed_exactly(products):
    """Baseline 02 (no offset, a folder of band files and a .SAFE) and baseline 05 (DN + 1000, offset
    -1000 in the metadata; .SAFE, zip and MTD file) give the model the same values."""
    reference = read_all(products["bucket"])
    for name in ("l1c_02", "l1c_05", "l1c_05_zip"):
        np.testing.assert_array_equal(read_all(products[name], cloud_mask=False), reference, err_msg=name)
    np.testing.assert_array_equal(read_all(os.path.join(products["l1c_05"], "MTD_MSIL1C.xml")), reference)
    # the same baseline-05 bands without their metadata: --dn-offset says it
    folder = os.path.join(products["l1c_05"], "GRANULE")
    assert not np.array_equal(read_all(folder), reference)
    np.testing.assert_array_equal(read_all(folder, dn_offset=-1000), reference)


def test_products_map_identically_class_for_class(products, bands_predictor, tmp_path):
    predictor = bands_predictor
    maps = {}
    for name in ("bucket", "l1c_05", "l1c_05_zip"):
        summary = landuse.map_scene(products[name], predictor, str(tmp_path / name), MapOptions(cloud_mask=False))
        maps[name] = read_tif(tmp_path / name / "landuse.tif")[0]
    np.testing.assert_array_equal(maps["l1c_05"], maps["bucket"])
    np.testing.assert_array_equal(maps["l1c_05_zip"], maps["bucket"])
    product = summary["product"]
    assert product["level"] == "L1C" and product["processing_baseline"] == "05.09"
    assert product["radiometric_offset"]["B8A"] == -1000 and product["offset_source"] == "MTD_MSIL1C.xml"
    truth, classes = layout(), maps["bucket"]
    valid = truth != synthetic.NODATA_PATCH
    assert (classes[~valid] == cells.NODATA_CLASS).all()
    assert (classes[valid] == truth[valid]).mean() >= 0.6  # the model classifies the product's bands
    with rasterio.open(products["scene"]) as src, rasterio.open(tmp_path / "bucket" / "landuse.tif") as out:
        assert out.crs == src.crs and out.transform == src.transform @ src.transform.scale(64)


# --- clouds and L2A ----------------------------------------------------------------------------------
def test_cloud_masks_mark_cells_as_nodata_unless_turned_off(products, rgb_model, bands_model, tmp_path):
    for name, model in (("l2a_05", rgb_model), ("l1c_05", bands_model)):
        predictor = predictors.SavedModelPredictor(model)
        masked = landuse.map_scene(products[name], predictor, str(tmp_path / name))
        classes = read_tif(tmp_path / name / "landuse.tif")[0]
        assert classes[CLOUDY] == cells.NODATA_CLASS, name
        assert masked["product"]["cloud_mask"] == ("SCL" if name == "l2a_05" else "MSK_CLASSI")
        assert 0.01 < masked["product"]["cloud_masked_share"] < 0.06  # 1 patch (and a 60 m rim) of 52
        kept = landuse.map_scene(products[name], predictor, str(tmp_path / f"{name}_all"),
                                 MapOptions(cloud_mask=False))
        assert read_tif(tmp_path / f"{name}_all" / "landuse.tif")[0][CLOUDY] != cells.NODATA_CLASS
        assert kept["product"]["cloud_mask"] is None and kept["tiles_classified"] > masked["tiles_classified"]
    assert any("L2A" in w for w in json.load(open(tmp_path / "l2a_05" / "summary.json"))["product"]["warnings"])


def test_product_errors_are_one_line(products, rgb_model, bands_model, tmp_path, capsys):
    out = str(tmp_path / "out")
    line = _one_line_error(capsys, ["--model", bands_model, "--input", products["l2a_05"], "--output", out])
    assert "is an L2A product" in line and "give the L1C product" in line
    missing = tmp_path / "missing"
    pf.write_band_folder(products["scene"], str(missing), bands=[b for b in pf.ESA_ORDER if b != "B05"])
    line = _one_line_error(capsys, ["--model", bands_model, "--input", str(missing), "--output", out])
    assert "lacks band B05" in line
    assert not os.path.exists(out)  # refused before anything is written
    corrupt = tmp_path / "corrupt"
    pf.write_band_folder(products["scene"], str(corrupt), bands=("B02", "B03", "B04"))
    data = (corrupt / "B03.jp2").read_bytes()
    (corrupt / "B03.jp2").write_bytes(data[: len(data) // 2])  # a download cut short
    line = _one_line_error(capsys, ["--model", rgb_model, "--input", str(corrupt), "--output", out])
    assert "B03" in line and "download the product again" in line  # found when its tiles are decoded


def test_a_folder_that_is_neither_a_product_nor_patches_is_refused_before_writing(products, rgb_model, tmp_path,
                                                                                 capsys):
    """Issue 20 item 4: single-band files named by band are a product now; single-band files of mixed
    resolutions named otherwise are refused, naming the user's files, with nothing written."""
    folder = tmp_path / "bands"
    folder.mkdir()
    for band, name in (("B04", "red.tif"), ("B03", "green.tif"), ("B05", "rededge.tif")):
        pf.write_band_file(products["scene"], band, str(folder / name))
    out = tmp_path / "out"
    line = _one_line_error(capsys, ["--model", rgb_model, "--input", str(folder), "--output", str(out)])
    assert "neither a Sentinel-2 product" in line and "mosaic" not in line and not out.exists()
    with pytest.raises(MapError, match="holds no Sentinel-2 band files"):
        find_product(str(tmp_path))


# --- the endpoint and Beam maps read products the same way ---------------------------------------------
def test_endpoint_and_beam_map_a_product_as_in_process(products, bands_model, bands_predictor, bands_server, tmp_path):
    from pipeline.mapping.beam import run_beam_maps

    zipped = products["l1c_05_zip"]
    local = landuse.map_scene(zipped, bands_predictor, str(tmp_path / "local"))
    expected = read_tif(tmp_path / "local" / "landuse.tif")[0]
    assert expected[CLOUDY] == cells.NODATA_CLASS
    predictor = predictors.EndpointPredictor(bands_server, mapping_fixtures.MODEL_NAME)
    try:
        landuse.map_scene(zipped, predictor, str(tmp_path / "endpoint"))
    finally:
        predictor.close()
    np.testing.assert_array_equal(read_tif(tmp_path / "endpoint" / "landuse.tif")[0], expected)
    run_beam_maps([zipped], bands_model, str(tmp_path / "beam"), ["--direct_running_mode=in_memory"],
                  MapOptions(batch_size=32))
    np.testing.assert_array_equal(read_tif(tmp_path / "beam" / "landuse.tif")[0], expected)
    with open(tmp_path / "beam" / "summary.json") as f:
        assert json.load(f)["product"] == local["product"]


def test_big_folders_and_zips_of_patches_are_not_taken_for_products(tmp_path):
    """EuroSAT's 27,000 patches (folder or zip) are more files than a product holds: they are patches
    for mosaic.py, not an error."""
    import zipfile

    from pipeline.mapping.product import MAX_PRODUCT_MEMBERS, looks_like_product

    folder = tmp_path / "AnnualCrop"
    folder.mkdir()
    names = [f"AnnualCrop_{i}.tif" for i in range(MAX_PRODUCT_MEMBERS + 5)]
    for name in names:
        (folder / name).touch()
    assert not looks_like_product(str(folder))
    with zipfile.ZipFile(tmp_path / "patches.zip", "w") as archive:
        for name in names:
            archive.writestr(f"AnnualCrop/{name}", b"")
    assert not looks_like_product(str(tmp_path / "patches.zip"))


def test_product_zip_members_are_bounded_like_every_zip(tmp_path, monkeypatch):
    """A product .zip with a decompression bomb or an over-size band file is refused in one line, before
    anything is unpacked (components.sources.member_problem, with the band files' bound)."""
    import zipfile

    from pipeline.mapping import product
    from pipeline.mapping.errors import MapError

    bomb = tmp_path / "S2A_MSIL1C_bomb.SAFE.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("S2A_MSIL1C_bomb.SAFE/MTD_MSIL1C.xml", "<x/>")
        archive.writestr("S2A_MSIL1C_bomb.SAFE/GRANULE/G/IMG_DATA/T_B01.jp2", b"\0" * (4 << 20))
    with pytest.raises(MapError, match=r"member '.*T_B01.jp2' is refused: .*decompression bomb"):
        product.find_product(str(bomb))
    monkeypatch.setattr(product, "MAX_BAND_FILE_BYTES", 1 << 10)
    big = tmp_path / "S2A_MSIL1C_big.SAFE.zip"
    with zipfile.ZipFile(big, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("S2A_MSIL1C_big.SAFE/MTD_MSIL1C.xml", "<x/>")
        archive.writestr("S2A_MSIL1C_big.SAFE/GRANULE/G/IMG_DATA/T_B01.jp2", b"\1" * (4 << 10))
    with pytest.raises(MapError, match=r"larger than the 1,024-byte limit for one band file"):
        product.find_product(str(big))
