"""Land-use map throughput and memory: a synthetic scene mapped in process and through gRPC.

    PYTHONPATH=$PWD python benchmarks/map_throughput.py --model outputs/serving/eurosat \
        [--size 2560] [--memory-sizes 5120,10944] [--batch-size 64]

Writes synthetic georeferenced RGB scenes (schema.example_data.synthetic.write_synthetic_scene) of
size x size pixels and of each --memory-sizes side, then runs `pipeline_runner.py map` on them,
each run in its own process so its peak RSS is its own (os.wait4):

1. the small scene in process (SavedModel loaded by the map command);
2. the small scene through `python -m serving.server` with --server (client RSS; the server's too);
3. each larger scene in process: the same peak RSS as 1 means memory does not grow with the scene.
   10,944 px is 171 x 171 = 29,241 patches, the patch count of a full Sentinel-2 tile;
4. with --change: the small scene's landscape some years later (forest cleared, town grown),
   mapped with --compare against 1 (the change example in the README);
5. with --product-size N (10980: a full tile): a 13-band scene of N x N px written as a Sentinel-2
   L1C product of baseline 05.09 (.SAFE, JPEG2000 band files at 10/20/60 m, DN + 1000 with the
   offset in MTD_MSIL1C.xml, an MSK_CLASSI_B00 cloud mask: tests/product_fixtures.py) and mapped
   in process with a 13-band model (--bands-model, or the tests' small 13-band CNN), beside the
   single 13-band GeoTIFF it was written from (same scene, same model; the scene repeats a
   2,048 px landscape). --product-only skips 1-4.

Baseline, in this process on the same machine: the model's pixel signature alone on the same
number of patches already in memory (no reading, tiling, masking or writing), so the ratio
map / model says what the tiling costs. Prints tiles/s, wall time, peak RSS and the time
extrapolated for a full Sentinel-2 tile (10,980 x 10,980 px = 171 x 171 = 29,241 patches).
Without --model it trains the tests' small CNN (tests/mapping_fixtures.py) in a temporary folder.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import json
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from schema import features
from schema.example_data import synthetic

S2_TILE_PATCHES = (10980 // 64) ** 2


def layout(n: int, seed: int = 0, later: bool = False) -> np.ndarray:
    """An n x n patch landscape: fields, a forest, a town by a highway, a river into a lake; `later`:
    the same some years on, with part of the forest cleared for crops and the town grown.
    """
    rng = np.random.default_rng(seed)
    fields = rng.choice([0, 2, 5, 6], size=(n // 5 + 1, n // 5 + 1))  # crops, meadows, pasture, orchards
    classes = np.kron(fields, np.ones((5, 5), int))[:n, :n]
    r, c = np.mgrid[0:n, 0:n] / n
    classes[(r / 0.38) ** 2 + (c / 0.42) ** 2 + rng.normal(0, 0.08, (n, n)) < 1] = 1  # forest, top left
    if later:
        classes[(r < 0.22) & (c > 0.18) & (c < 0.36)] = 0  # a clear-cut, now crops
    grown = 1.35 if later else 1.0
    town = ((r - 0.68) / (0.14 * grown)) ** 2 + ((c - 0.3) / (0.17 * grown)) ** 2 < 1
    classes[town] = 7  # residential
    classes[(np.abs(r - 0.5) < 0.06) & (np.abs(c - 0.4) < 0.1)] = 4  # industrial by the highway
    classes[np.abs(r - 0.44) < 0.5 / n] = 3  # highway, west to east
    lake = ((r - 0.8) / 0.16) ** 2 + ((c - 0.8) / 0.2) ** 2 < 1
    river = (np.abs(c - (0.62 + 0.07 * np.sin(r * 9))) < 0.6 / n) & (r < 0.75)
    classes[river] = 8
    classes[lake] = 9
    return classes


def run_measured(command: list) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MiB, output) of one child process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env={**os.environ, "PYTHONPATH": REPO},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if process.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{output[-3000:]}")
    return wall, usage.ru_maxrss / 1024.0, output


def map_command(scene: str, output: str, model_args: list, batch_size: int) -> list:
    return [sys.executable, "pipeline_runner.py", "map", "--input", scene, "--output", output,
            "--batch-size", str(batch_size), *model_args]


def model_alone(model: str, patches: int, batch_size: int) -> float:
    """Tiles/s of the pixel signature on patches already in memory (the baseline)."""
    from pipeline.mapping.predictors import SavedModelPredictor

    predictor = SavedModelPredictor(model)
    rng = np.random.default_rng(1)
    pixels = np.stack([synthetic.synthetic_image(i % 10, rng) for i in range(batch_size)])
    predictor.predict(pixels)  # warm-up (tracing)
    started = time.perf_counter()
    done = 0
    while done < patches:
        predictor.predict(pixels)
        done += batch_size
    return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="push directory or SavedModel (default: train the tests' small CNN)")
    parser.add_argument("--size", type=int, default=2560, help="side of the scene, px (2560: 1,600 patches)")
    parser.add_argument("--memory-sizes", default="5120",
                        help="sides of the memory-check scenes, px, comma-separated ('' to skip)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--skip-grpc", action="store_true")
    parser.add_argument("--change", action="store_true", help="also map a later scene and compare")
    parser.add_argument("--product-size", type=int, default=0, help="also map a Sentinel-2 product of this side "
                        "(px, a multiple of 6; 10980: a full tile) beside its GeoTIFF (0: skip)")
    parser.add_argument("--bands-model", help="13-band push directory for --product-size (default: train the "
                        "tests' small 13-band CNN)")
    parser.add_argument("--product-only", action="store_true", help="only the product comparison (5)")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="map_bench_")
    if args.product_only:
        print(json.dumps(product_benchmark(work, args), indent=2))
        return
    model = args.model
    if not model:
        from tests import mapping_fixtures

        model = mapping_fixtures.train_and_export(os.path.join(work, "model"))
    results = {}
    memory_sizes = [int(v) for v in args.memory_sizes.split(",") if v]
    scenes = {"small": args.size, **{f"side_{size}": size for size in memory_sizes},
              **({"later": args.size} if args.change else {})}
    for name, size in scenes.items():
        path = os.path.join(work, f"{name}.tif")
        t = time.perf_counter()
        synthetic.write_synthetic_scene(path, layout(size // 64, later=name == "later"), features.RGB,
                                        seed=4 if name == "later" else 3)
        print(f"scene {name}: {size}x{size} px, {(size // 64) ** 2} patches, "
              f"{os.path.getsize(path) / 2**20:.0f} MiB, written in {time.perf_counter() - t:.0f} s", flush=True)

    def record(label: str, scene: str, model_args: list) -> None:
        out = os.path.join(work, label)
        wall, rss, _ = run_measured(map_command(scene, out, model_args, args.batch_size))
        with open(os.path.join(out, "summary.json")) as f:
            summary = json.load(f)
        results[label] = {"tiles": summary["tiles_classified"], "tiles_per_s": summary["tiles_per_s"],
                          "map_s": summary["wall_time_s"], "process_wall_s": round(wall, 1),
                          "peak_rss_mib": round(rss)}
        print(label, json.dumps(results[label]), flush=True)
        if label != "in_process":
            os.remove(os.path.join(out, "tiles.csv"))  # the big ones are not needed after the figures

    small = os.path.join(work, "small.tif")
    record("in_process", small, ["--model", model])
    if not args.skip_grpc:
        from pipeline.mapping.predictors import resolve_model
        from tests.mapping_fixtures import start_dev_server

        export_dir, _ = resolve_model(model)
        server, address = start_dev_server(os.path.dirname(export_dir))
        try:
            record("grpc", small, ["--server", address])
        finally:
            server.terminate()
            _, _, usage = os.wait4(server.pid, 0)
        results["grpc"]["server_peak_rss_mib"] = round(usage.ru_maxrss / 1024.0)
    for size in memory_sizes:
        record(f"in_process_{size}px", os.path.join(work, f"side_{size}.tif"), ["--model", model])
    if args.change:
        record("in_process_later", os.path.join(work, "later.tif"),
               ["--model", model, "--compare", os.path.join(work, "in_process")])
        with open(os.path.join(work, "in_process_later", "summary.json")) as f:
            change = json.load(f)["change"]
        print("change", json.dumps({k: change[k] for k in ("unit", "compared", "changed", "largest_transitions")}))
    print(f"maps and scenes kept in {work}", flush=True)
    baseline = model_alone(model, results["in_process"]["tiles"], args.batch_size)
    rate = results["in_process"]["tiles_per_s"]
    print(json.dumps({
        "model": model,
        "batch_size": args.batch_size,
        "results": results,
        "model_alone_tiles_per_s": round(baseline, 1),
        "map_vs_model_alone": round(rate / baseline, 3),
        "full_s2_tile_patches": S2_TILE_PATCHES,
        "full_s2_tile_minutes_in_process": round(S2_TILE_PATCHES / rate / 60, 1),
        **({"full_s2_tile_minutes_grpc": round(S2_TILE_PATCHES / results["grpc"]["tiles_per_s"] / 60, 1)}
           if "grpc" in results else {}),
        **({"product": product_benchmark(work, args)} if args.product_size else {}),
    }, indent=2))


def product_benchmark(work: str, args) -> dict:
    """A Sentinel-2 product of --product-size px and the 13-band GeoTIFF it is written from, each
    mapped in process in its own process (tiles/s, wall, peak RSS); the maps compared cell for cell.
    """
    from tests import product_fixtures

    size = args.product_size
    model = args.bands_model
    if not model:
        from tests import mapping_fixtures

        model = mapping_fixtures.train_and_export(os.path.join(work, "model13"), features.ALL_BANDS, count=500,
                                                  epochs=15)
    t = time.perf_counter()
    # the 2,048 px landscape (1,024 patches) repeated over the tile: writing 29,000 distinct
    # synthetic patches would take most of the benchmark's time
    whole = synthetic.write_synthetic_scene(os.path.join(work, "bands_2048.tif"), layout(min(32, -(-size // 64))),
                                            features.ALL_BANDS, seed=3)
    scene = product_fixtures.tile_scene(whole, os.path.join(work, f"bands_{size}.tif"), size)
    os.remove(whole)
    written = {"scene_s": round(time.perf_counter() - t)}
    t = time.perf_counter()
    clouds = np.zeros((size // 64 + 1, size // 64 + 1), bool)
    clouds[2:6, 2:6] = True  # a cloud of 4 x 4 patches
    safe = product_fixtures.write_product(scene, os.path.join(work, "product"), "L1C", "05.09", clouds)
    written["product_s"] = round(time.perf_counter() - t)
    written["product_mib"] = round(sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(safe)
                                       for f in fs) / 2**20)
    written["geotiff_mib"] = round(os.path.getsize(scene) / 2**20)
    print(f"product of {size} px written: {json.dumps(written)}", flush=True)
    results = {}
    for label, source in (("geotiff_13_bands", scene), ("product_l1c_05", safe)):
        out = os.path.join(work, label)
        wall, rss, _ = run_measured(map_command(source, out, ["--model", model], args.batch_size))
        with open(os.path.join(out, "summary.json")) as f:
            summary = json.load(f)
        results[label] = {"tiles": summary["tiles_classified"], "tiles_per_s": summary["tiles_per_s"],
                          "map_s": summary["wall_time_s"], "process_wall_s": round(wall, 1),
                          "peak_rss_mib": round(rss)}
        if "product" in summary:
            results[label]["cloud_masked_share"] = summary["product"]["cloud_masked_share"]
        print(label, json.dumps(results[label]), flush=True)
    import rasterio

    maps = []
    for label in results:
        with rasterio.open(os.path.join(work, label, "landuse.tif")) as src:
            maps.append(src.read(1))
    both = (maps[0] != 255) & (maps[1] != 255)
    results["cells_same_class"] = round(float((maps[0][both] == maps[1][both]).mean()), 4)
    return {"size_px": size, "model": model, "written": written, **results}


if __name__ == "__main__":
    main()
