"""Image folders (the EuroSAT RGB archive layout) -> TFRecords, including every kind of bad input."""
import dataclasses
import io
import json
import os
import zipfile

import numpy as np
import pytest
from PIL import Image

from components import convert, prepare, sources
from pipeline.data import source_modality
from schema import features
from tests.ingest import run_example_gen, sources_of, split_examples

BEAM = ["--direct_running_mode=in_memory"]


def _convert(source: str, out: str, max_bad_fraction: float = 0.01) -> dict:
    """The ExampleGen's executor on `source` (tests/ingest.py): its conversion report's summary."""
    return run_example_gen(source, out, max_bad_fraction=max_bad_fraction)[1]["summary"]


def _image(seed: int, size=(64, 64), mode="RGB", fmt="JPEG") -> bytes:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    arr = rng.integers(0, 255, (size[1], size[0], channels), dtype=np.uint8)
    img = Image.fromarray(arr[..., 0] if channels == 1 else arr, mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def _write(path, data: bytes):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def make_archive(root, per_class=3, classes=features.CLASS_NAMES):
    """A EuroSAT RGB archive look-alike: <root>/EuroSAT_RGB/2750/<Class>/<Class>_<i>.jpg."""
    class_root = os.path.join(root, "EuroSAT_RGB", "2750")
    for c, name in enumerate(classes):
        for i in range(1, per_class + 1):
            _write(os.path.join(class_root, name, f"{name}_{i}.jpg"), _image(100 * c + i))
    return class_root


def test_finds_class_folder_level_and_labels_in_eurosat_order(tmp_path):
    class_root = make_archive(tmp_path, per_class=1)
    tree = sources.open_tree(str(tmp_path))
    assert sources.find_class_root(tree) == os.path.relpath(class_root, tmp_path) + "/"
    files, empty = sources.list_source(tree)
    assert empty == []
    assert [(f.source, f.label) for f in files][:2] == [("AnnualCrop/AnnualCrop_1.jpg", 0), ("Forest/Forest_1.jpg", 1)]
    assert sources.eurosat_class("sealake") == "SeaLake"  # folder names match case-insensitively


def test_prepare_image_keeps_64px_rgb_jpeg_and_normalizes_the_rest():
    jpeg = _image(1)
    kept = prepare.prepare_image(jpeg)
    assert kept.image == jpeg and kept.normalized is None  # stored byte for byte
    for data, reason in ((_image(2, size=(100, 80)), "size 100x80 resized to 64x64"),
                         (_image(3, mode="L"), "mode L converted to RGB"),
                         (_image(4, mode="RGBA", fmt="PNG"), "mode RGBA converted to RGB"),
                         (_image(5, fmt="BMP"), "BMP re-encoded as PNG")):
        out = prepare.prepare_image(data)
        assert reason in out.normalized
        img = Image.open(io.BytesIO(out.image))
        assert (img.format, img.mode, img.size) == ("PNG", "RGB", (64, 64))
    for data in (jpeg[: len(jpeg) // 2], b"not an image at all", b""):
        with pytest.raises(ValueError, match="cannot decode image"):
            prepare.prepare_image(data)


def test_bad_fraction_error_names_the_report_and_the_flag():
    assert prepare.bad_fraction_error(1, 100, 0.01, "r.json") is None
    msg = prepare.bad_fraction_error(2, 100, 0.01, "r.json")
    assert "2 of 100" in msg and "r.json" in msg and "--max-bad-fraction" in msg


def test_example_gen_converts_a_folder_and_its_identity_follows_the_files(tmp_path):
    from components.data_sources import source_identity

    make_archive(tmp_path / "src", per_class=2)
    out = str(tmp_path / "examples")
    src = str(tmp_path / "src")
    artifact, report = run_example_gen(src, out)
    examples = split_examples(out)
    assert len(examples) == 20 and report["summary"]["examples"] == 20 and report["summary"]["bad"] == 0
    assert sources_of(examples)[0] == "AnnualCrop/AnnualCrop_1.jpg"
    for e in examples:
        f = e.features.feature
        name = f["class_name"].bytes_list.value[0].decode()
        assert features.class_id(name) == f["label"].int64_list.value[0]
        assert f["source"].bytes_list.value[0].decode().startswith(name + "/")
        # the ExampleGen adds each converted JPEG's per-band mean (the gates' pixel statistics)
        np.testing.assert_allclose(f[features.PATCH_MEAN_KEY].float_list.value,
                                   features.patch_mean(features.RGB, f["image"].bytes_list.value[0]), rtol=1e-6)
    # The identity TFX's cache keys the ExampleGen on: the same while nothing changed, another one
    # when a file is added or touched (no folder of converted data is kept beside TFX's cache).
    identity = source_identity(src)
    assert source_identity(src) == identity == artifact.mlmd_artifact.custom_properties["source_identity"].string_value
    _write(str(tmp_path / "src/EuroSAT_RGB/2750/Forest/Forest_99.jpg"), _image(999))
    added = source_identity(src)
    assert added != identity
    os.utime(tmp_path / "src/EuroSAT_RGB/2750/Forest/Forest_1.jpg", ns=(1, 1))
    assert source_identity(src) != added


def test_every_kind_of_bad_input_is_reported_and_nothing_else_is_lost(tmp_path):
    class_root = make_archive(tmp_path, per_class=3, classes=features.CLASS_NAMES[:9])  # SeaLake empty
    os.makedirs(os.path.join(class_root, "SeaLake"))
    good = _image(7)
    _write(f"{class_root}/Forest/corrupt.jpg", b"\xff\xd8\xff garbage")
    _write(f"{class_root}/Forest/truncated.jpg", good[: len(good) // 2])
    _write(f"{class_root}/Forest/notes.txt", b"hello")
    _write(f"{class_root}/Forest/.DS_Store", b"ignored")
    _write(f"{class_root}/Forest/big.png", _image(8, size=(120, 90), fmt="PNG"))
    _write(f"{class_root}/Forest/gray.jpg", _image(9, mode="L"))
    _write(f"{class_root}/Forest/rgba.png", _image(10, mode="RGBA", fmt="PNG"))
    _write(f"{class_root}/Forest/Forest_1_copy.jpg", open(f"{class_root}/Forest/Forest_1.jpg", "rb").read())
    _write(f"{class_root}/River/dup_in_two_classes.jpg", open(f"{class_root}/Highway/Highway_2.jpg", "rb").read())
    _write(f"{class_root}/Clouds/Clouds_1.jpg", _image(11))
    out = str(tmp_path / "out")
    with pytest.raises(convert.ConversionError, match="--max-bad-fraction"):
        _convert(str(tmp_path), out, max_bad_fraction=0.01)
    summary = _convert(str(tmp_path), out, max_bad_fraction=0.5)
    report = json.load(open(os.path.join(out, convert.REPORT_NAME)))
    reasons = {r["path"]: r["reason"] for r in report["bad"]}
    assert "cannot decode" in reasons["Forest/corrupt.jpg"] and "0x" not in reasons["Forest/corrupt.jpg"]
    assert "cannot decode" in reasons["Forest/truncated.jpg"]
    assert "not an image" in reasons["Forest/notes.txt"]
    assert "unknown class folder 'Clouds'" in reasons["Clouds/Clouds_1.jpg"]
    assert "different classes" in reasons["River/dup_in_two_classes.jpg"]
    assert "different classes" in reasons["Highway/Highway_2.jpg"]
    assert len(reasons) == 6
    assert report["duplicates"] == [{"path": "Forest/Forest_1_copy.jpg",
                                     "reason": "duplicate of Forest/Forest_1.jpg (same bytes)"}]
    assert {r["path"] for r in report["normalized"]} == {"Forest/big.png", "Forest/gray.jpg", "Forest/rgba.png"}
    assert summary["empty_classes"] == ["SeaLake"]
    # 27 archive images + 9 added files (.DS_Store ignored): each is an example, bad, or a duplicate.
    assert summary["files"] == 27 + 9 == summary["examples"] + summary["bad"] + summary["duplicates"]
    examples = split_examples(out)
    assert len(examples) == summary["examples"] == 36 - 6 - 1
    import tensorflow as tf

    for e in examples:  # everything written decodes with the contract's decoder to 64x64x3
        img = features.decode_image(tf.constant(e.features.feature["image"].bytes_list.value[0]))
        assert img.shape == (64, 64, 3)


def test_empty_or_foreign_sources_fail_clearly(tmp_path):
    os.makedirs(tmp_path / "empty" / "Forest")
    _write(str(tmp_path / "cats/Cat/c.jpg"), _image(1))
    with pytest.raises(FileNotFoundError, match="neither TFRecord files"):
        source_modality(str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="neither TFRecord files"):  # the same words in the DAG
        run_example_gen(str(tmp_path / "empty"), str(tmp_path / "e1"), modality="rgb")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        source_modality(str(tmp_path / "missing"))
    with pytest.raises(convert.ConversionError, match="EuroSAT class names"):
        run_example_gen(str(tmp_path / "cats"), str(tmp_path / "e2"), modality="rgb")


def zip_folder(folder, zpath):
    """Zip `folder`'s contents with paths relative to it, as the EuroSAT archives are."""
    with zipfile.ZipFile(zpath, "w") as zf:
        for dirpath, _, files in os.walk(folder):
            for fn in files:
                full = os.path.join(dirpath, fn)
                zf.write(full, os.path.relpath(full, folder))


def test_example_gen_converts_a_zipped_archive_and_reports_into_its_artifact(tmp_path):
    make_archive(tmp_path / "src", per_class=4)
    zpath = tmp_path / "EuroSAT_RGB.zip"
    zip_folder(tmp_path / "src", zpath)
    with zipfile.ZipFile(zpath, "a") as zf:
        zf.writestr("EuroSAT_RGB/2750/Forest/bad.jpg", b"not an image")
    out = str(tmp_path / "examples")
    artifact, report = run_example_gen(str(zpath), out, max_bad_fraction=0.05)
    assert sorted(os.listdir(out)) == ["Split-eval", "Split-test", "Split-train", "conversion_report.json"]
    assert len(split_examples(out)) == 40 and all(split_examples(out, s) for s in ("train", "eval", "test"))
    assert report["summary"]["source"] == str(zpath) and report["summary"]["bad"] == 1
    assert [r["path"] for r in report["bad"]] == ["Forest/bad.jpg"]
    identity = report["summary"]["source_identity"]  # what TFX's cache keys the examples on
    assert identity["path"] == str(zpath) and identity["size"] == zpath.stat().st_size and identity["mtime_ns"]
    props = artifact.mlmd_artifact.custom_properties  # the lineage ML Metadata keeps
    assert props["source"].string_value == str(zpath) and props["bad"].int_value == 1
    assert props["files"].int_value == 41 and props["examples"].int_value == 40
    assert props["conversion_report"].string_value == os.path.join(out, "conversion_report.json")
    with pytest.raises(convert.ConversionError, match=r"1 of 41 files \(2.4%\) cannot be used.*--max-bad-fraction"):
        run_example_gen(str(zpath), str(tmp_path / "strict"), max_bad_fraction=0.01)
    assert json.load(open(tmp_path / "strict" / "conversion_report.json"))["bad"][0]["path"] == "Forest/bad.jpg"


# ---------------------------------------------------------------------------------------------
# 13-band (all-bands archive) sources
# ---------------------------------------------------------------------------------------------
def make_bands_archive(root, per_class=2, classes=features.CLASS_NAMES, top="EuroSAT_MS"):
    """A EuroSAT all-bands archive look-alike: <root>/<top>/<Class>/<Class>_<i>.tif (13-band uint16);
    returns the class root and {source: bands}."""
    from schema.example_data.synthetic import synthetic_band_examples

    class_root = os.path.join(root, top)
    written = {}
    for bands, label, source in synthetic_band_examples(features.NUM_CLASSES * per_class, seed=3):
        if features.class_name(label) in classes:
            _write(os.path.join(class_root, source), features.encode_bands_tiff(bands))
            written[source] = bands
    return class_root, written


def _bands(example) -> np.ndarray:
    return np.array(example.features.feature["bands"].int64_list.value).reshape(features.BANDS_SHAPE)


def test_modality_is_decided_from_the_first_readable_tiff(tmp_path):
    class_root, _ = make_bands_archive(tmp_path / "ms", per_class=1)
    _write(f"{class_root}/AnnualCrop/AnnualCrop_0.tif", b"II*\x00 corrupt")  # sorted first, unreadable
    files, empty, modality = convert.scan_source(class_root)
    assert modality == features.ALL_BANDS and empty == []
    assert convert.scan_source(make_archive(tmp_path / "rgb", per_class=1))[2] == features.RGB
    rgb_tiff = io.BytesIO()  # 3-band TIFFs are an RGB set (read by PIL)
    Image.open(io.BytesIO(_image(1))).save(rgb_tiff, format="TIFF")
    _write(str(tmp_path / "rgbtif/Forest/Forest_1.tif"), rgb_tiff.getvalue())
    assert convert.scan_source(str(tmp_path / "rgbtif"))[2] == features.RGB


def test_converts_13_band_folder_with_labels_sources_and_modality(tmp_path):
    _, written = make_bands_archive(tmp_path / "src", per_class=2)
    out = str(tmp_path / "out")
    _convert(str(tmp_path / "src"), out)
    report = json.load(open(os.path.join(out, convert.REPORT_NAME)))
    assert report["summary"]["modality"] == "all" and report["summary"]["examples"] == 20
    examples = split_examples(out)
    assert features.detect_modality(out) == features.ALL_BANDS
    assert sorted(e.features.feature["source"].bytes_list.value[0].decode() for e in examples) == sorted(written)
    for e in examples:
        f = e.features.feature
        source = f["source"].bytes_list.value[0].decode()
        assert f["label"].int64_list.value[0] == features.class_id(source.split("/")[0])
        np.testing.assert_array_equal(_bands(e), written[source])  # digital numbers unchanged


def test_every_kind_of_bad_13_band_input_is_reported_and_nothing_else_is_lost(tmp_path):
    class_root, written = make_bands_archive(tmp_path, per_class=2, classes=features.CLASS_NAMES[:9])
    os.makedirs(os.path.join(class_root, "SeaLake"))
    good = features.encode_bands_tiff(written["Forest/Forest_1.tif"])
    bad_arrays = {
        "four_bands.tif": np.zeros((64, 64, 4), np.uint16),
        "small.tif": np.zeros((32, 32, 13), np.uint16),
        "scaled.tif": np.full((64, 64, 13), 0.25, np.float32),
        "range.tif": np.full((64, 64, 13), 70000, np.int32),
    }
    for name, array in bad_arrays.items():
        _write(f"{class_root}/Forest/{name}", features.encode_bands_tiff(array))
    _write(f"{class_root}/Forest/corrupt.tif", b"not a TIFF at all")
    _write(f"{class_root}/Forest/truncated.tif", good[: len(good) // 2])
    _write(f"{class_root}/Forest/photo.jpg", _image(1))
    _write(f"{class_root}/Forest/notes.txt", b"hello")
    # Same band values, other bytes (band-first layout): a duplicate, found on the pixels.
    _write(f"{class_root}/Forest/Forest_1_copy.tif",
           features.encode_bands_tiff(np.transpose(written["Forest/Forest_1.tif"], (2, 0, 1))))
    _write(f"{class_root}/River/dup_in_two_classes.tif",
           features.encode_bands_tiff(written["Highway/Highway_2.tif"]))
    _write(f"{class_root}/Clouds/Clouds_1.tif", good)
    out = str(tmp_path / "out")
    with pytest.raises(convert.ConversionError, match="--max-bad-fraction"):
        _convert(str(tmp_path), out, max_bad_fraction=0.01)
    summary = _convert(str(tmp_path), out, max_bad_fraction=0.5)
    report = json.load(open(os.path.join(out, convert.REPORT_NAME)))
    reasons = {r["path"]: r["reason"] for r in report["bad"]}
    assert "expected 13 Sentinel-2 bands" in reasons["Forest/four_bands.tif"]
    assert "not resampled" in reasons["Forest/small.tif"]
    assert "non-integer" in reasons["Forest/scaled.tif"]
    assert "outside 0..65535" in reasons["Forest/range.tif"]
    assert "cannot decode GeoTIFF" in reasons["Forest/corrupt.tif"]
    assert "cannot decode GeoTIFF" in reasons["Forest/truncated.tif"]
    assert "not a TIFF file" in reasons["Forest/photo.jpg"] and "not a TIFF file" in reasons["Forest/notes.txt"]
    assert "unknown class folder 'Clouds'" in reasons["Clouds/Clouds_1.tif"]
    assert "different classes" in reasons["River/dup_in_two_classes.tif"]
    assert "different classes" in reasons["Highway/Highway_2.tif"]
    assert len(reasons) == 11
    assert report["duplicates"] == [{"path": "Forest/Forest_1_copy.tif",
                                     "reason": "duplicate of Forest/Forest_1.tif (same band values)"}]
    assert report["normalized"] == []  # 13-band patches are never resampled or converted
    assert summary["modality"] == "all" and summary["empty_classes"] == ["SeaLake"]
    assert summary["files"] == 18 + 11 == summary["examples"] + summary["bad"] + summary["duplicates"]
    examples = split_examples(out)
    assert len(examples) == summary["examples"] == 29 - 11 - 1
    assert all(_bands(e).shape == features.BANDS_SHAPE for e in examples)


def test_empty_13_band_source_fails_clearly(tmp_path):
    os.makedirs(tmp_path / "EuroSAT_MS" / "Forest")
    # The ExampleGen's words (the standalone converter that said "no usable images" is gone).
    with pytest.raises(FileNotFoundError, match=r"neither TFRecord files.*\*\.tif"):
        run_example_gen(str(tmp_path), str(tmp_path / "out"), modality="all")


def test_source_identity_changes_with_the_converter_version(tmp_path, monkeypatch):
    from components.data_sources import source_identity

    root = make_bands_archive(tmp_path, per_class=1)[0]
    before = source_identity(root)
    assert source_identity(root) == before
    monkeypatch.setattr(convert, "CONVERTER_VERSION", convert.CONVERTER_VERSION + "-next")
    assert source_identity(root) != before  # a changed converter does not reuse cached examples


def test_example_gen_converts_a_zipped_13_band_archive(tmp_path):
    # The layout of EuroSATallBands.zip: the class folders are six levels down.
    make_bands_archive(tmp_path / "src", per_class=1, top="ds/images/remote_sensing/otherDatasets/sentinel_2/tif")
    zpath = tmp_path / "EuroSATallBands.zip"
    zip_folder(tmp_path / "src", zpath)
    assert source_modality(str(zpath)) == features.ALL_BANDS  # --modality auto, before the run
    out = str(tmp_path / "examples")
    _, report = run_example_gen(str(zpath), out)
    assert report["summary"]["modality"] == features.ALL_BANDS
    examples = split_examples(out)
    assert len(examples) == 10 and all(features.modality_of(e) == features.ALL_BANDS for e in examples)
    with pytest.raises(ValueError, match="is 'all' data .* built for 'rgb'; pass --modality all"):
        run_example_gen(str(zpath), str(tmp_path / "wrong"), modality="rgb")


# ---------------------------------------------------------------------------------------------
# Hostile and odd input: bounded memory, nothing unpacked, every file reported
# ---------------------------------------------------------------------------------------------
def _declaring(jpeg: bytes, width: int, height: int) -> bytes:
    """`jpeg` with its frame header (SOF0) declaring another size: a bomb without the bytes."""
    sof = jpeg.index(b"\xff\xc0")
    return jpeg[:sof + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + jpeg[sof + 9:]


def test_image_size_is_checked_before_decoding():
    with pytest.raises(ValueError, match="declares 6000x6000 pixels.*refused before decoding"):
        prepare.prepare_image(_declaring(_image(1), 6000, 6000))
    with pytest.raises(ValueError, match="1x1 pixels, smaller than the 16x16 minimum"):
        prepare.prepare_image(_image(2, size=(1, 1), fmt="PNG"))


def test_pillows_own_bomb_error_is_a_reason_not_a_crash():
    # Over twice Pillow's MAX_IMAGE_PIXELS: Image.open itself raises DecompressionBombError.
    with pytest.raises(ValueError, match="refused as a decompression bomb"):
        prepare.prepare_image(_declaring(_image(1), 14000, 14000))


def test_huge_and_tiny_images_are_listed_as_bad_and_the_rest_converts(tmp_path):
    class_root = make_archive(tmp_path / "src", per_class=3)
    _write(f"{class_root}/Forest/huge.jpg", _declaring(_image(5), 14000, 14000))
    _write(f"{class_root}/Forest/dot.png", _image(6, size=(1, 1), fmt="PNG"))
    out = str(tmp_path / "out")
    summary = _convert(str(tmp_path / "src"), out, max_bad_fraction=0.1)
    reasons = {r["path"]: r["reason"] for r in json.load(open(os.path.join(out, convert.REPORT_NAME)))["bad"]}
    assert "decompression bomb" in reasons["Forest/huge.jpg"] and "1x1" in reasons["Forest/dot.png"]
    assert summary["examples"] == 30 and summary["bad"] == 2


def test_zip_is_read_in_place_with_bounded_members(tmp_path):
    make_archive(tmp_path / "src", per_class=10)
    zpath = str(tmp_path / "EuroSAT_RGB.zip")
    zip_folder(tmp_path / "src", zpath)
    with zipfile.ZipFile(zpath, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        # 8 MiB of zeros packs to ~8 KB: a bomb by ratio; the other is over the size limit too.
        zf.writestr("EuroSAT_RGB/2750/Forest/bomb.jpg", bytes(8 << 20))
        zf.writestr("EuroSAT_RGB/2750/Forest/too_big.jpg", bytes(sources.MAX_FILE_BYTES + 1))
    out = tmp_path / "examples"
    _, report = run_example_gen(zpath, str(out), max_bad_fraction=0.05)
    assert sorted(os.listdir(tmp_path)) == ["EuroSAT_RGB.zip", "examples", "src"]  # nothing unpacked
    assert sorted(os.listdir(out)) == ["Split-eval", "Split-test", "Split-train", "conversion_report.json"]
    reasons = {r["path"]: r["reason"] for r in report["bad"]}
    assert "refused as a decompression bomb" in reasons["Forest/bomb.jpg"]
    assert "larger than the 67,108,864-byte limit" in reasons["Forest/too_big.jpg"]
    assert len(split_examples(str(out))) == 100


def test_zip_members_are_never_read_past_the_limit(tmp_path, monkeypatch):
    """A member whose directory entry lies about its size is still cut at the limit."""
    zpath = str(tmp_path / "a.zip")
    with zipfile.ZipFile(zpath, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("Forest/x.jpg", os.urandom(4096))
    monkeypatch.setattr(sources, "MAX_FILE_BYTES", 1000)
    files, _ = sources.list_source(sources.open_tree(zpath))
    monkeypatch.setattr(sources, "member_problem", lambda info: None)  # as if the listing had lied
    with pytest.raises(ValueError, match="larger than the 1,000-byte limit"):
        sources.SourceReader().read(dataclasses.replace(files[0], problem=None, label=1))


def test_a_zip_that_is_not_a_zip_is_named(tmp_path, capsys):
    import pipeline_runner

    fake = tmp_path / "EuroSAT.zip"
    fake.write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(convert.ConversionError, match="EuroSAT.zip' is not a readable zip archive"):
        source_modality(str(fake))
    assert pipeline_runner.main(["--data", str(fake), "--output-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is not a readable zip archive" in err and err.count("\n") == 1


def test_a_garbage_tfrecord_is_named_before_the_pipeline_starts(tmp_path, capsys, synthetic_records):
    import shutil

    import pipeline_runner

    folder = tmp_path / "records"
    shutil.copytree(synthetic_records, folder)
    (folder / "zz-garbage.tfrecord.gz").write_bytes(os.urandom(2000))
    with pytest.raises(ValueError, match="zz-garbage.tfrecord.gz' is not a file of tf.Example records"):
        source_modality(str(folder))
    with pytest.raises(ValueError, match="zz-garbage.tfrecord.gz' is not a file of tf.Example records"):
        run_example_gen(str(folder), str(tmp_path / "e"), modality="rgb")  # the same check in the DAG
    assert pipeline_runner.main(["--data", str(folder), "--output-dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "zz-garbage.tfrecord.gz" in err and err.count("\n") == 1 and "Traceback" not in err


# ---------------------------------------------------------------------------------------------
# Sources on other filesystems (gs:// on Dataflow): Beam's FileSystems, tested with mem://
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def memfs():
    from tests.memfs import MemoryFileSystem

    yield MemoryFileSystem
    MemoryFileSystem.clear()


def test_converts_a_folder_and_a_zip_on_another_filesystem(tmp_path, memfs):
    class_root = make_archive(tmp_path / "src", per_class=2)
    for dirpath, _, names in os.walk(tmp_path / "src"):
        for fn in names:
            full = os.path.join(dirpath, fn)
            memfs.put("mem://bucket/eurosat/" + os.path.relpath(full, tmp_path / "src"), open(full, "rb").read())
    memfs.put("mem://bucket/eurosat/EuroSAT_RGB/2750/Forest/bad.jpg", b"not an image")
    assert convert.holds_class_folders("mem://bucket/eurosat")
    out = str(tmp_path / "examples")
    _, report = run_example_gen("mem://bucket/eurosat", out, max_bad_fraction=0.1)
    assert len(split_examples(out)) == 20
    assert report["summary"]["source"] == "mem://bucket/eurosat"
    assert [r["path"] for r in report["bad"]] == ["Forest/bad.jpg"]
    # The same files as a zip in the bucket: read in place through the same filesystem.
    zpath = tmp_path / "EuroSAT_RGB.zip"
    zip_folder(os.path.dirname(os.path.dirname(class_root)), zpath)
    memfs.put("mem://bucket/EuroSAT_RGB.zip", zpath.read_bytes())
    zipped = str(tmp_path / "zipped")
    run_example_gen("mem://bucket/EuroSAT_RGB.zip", zipped)
    assert sources_of(split_examples(zipped)) == sources_of(split_examples(out))
    for split in ("train", "eval", "test"):  # the same hash split, whichever way the files came
        assert sources_of(split_examples(zipped, split)) == sources_of(split_examples(out, split))
