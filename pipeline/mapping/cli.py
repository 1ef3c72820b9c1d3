"""`pipeline_runner.py map`: the command line of the land-use maps (parse, pick the predictor or
Beam, map, compare)."""
from __future__ import annotations

import argparse
import functools
import os
import sys
from typing import List

from pipeline.config import BEAM_RUNNERS, DIRECT_RUNNING_MODES, PipelineConfig
from pipeline.console import configure_logging, quiet_tensorflow
from pipeline.mapping.errors import MapError
from serving.contract import MODEL_NAME

_DEFAULTS = PipelineConfig()


def build_map_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pipeline_runner.py map",
        description="Classify a whole scene into a land-use map with the pushed model: 64x64 patches "
        "through the model's own signature, in process, through a gRPC endpoint (--server) or as a Beam "
        "pipeline (--beam, DirectRunner or Dataflow). Writes landuse.tif, confidence.tif, landuse.png, "
        "tiles.csv and summary.json into --output.")
    p.add_argument("--input", required=True, action="append",
                   help="a Sentinel-2 product as downloaded (a .SAFE folder, its .zip or its MTD_MSIL1C.xml/"
                   "MTD_MSIL2A.xml), a folder of its band files (B01.jp2 ..., names with the band token), a "
                   "GeoTIFF (any raster GDAL reads) of 3 bands (R, G, B) for an RGB model or of the 13 bands in "
                   "EuroSAT's order (B01 ... B12, B8A 13th) for a 13-band model, or a folder/zip of neighbouring "
                   "georeferenced patches; --beam takes the flag several times")
    p.add_argument("--output", required=True, help="folder for the map files (several --input: one sub-folder each)")
    p.add_argument("--model", help="a push directory (its newest version is used, e.g. outputs/serving/eurosat) "
                   "or a SavedModel folder; not needed with --server")
    p.add_argument("--server", help="host:port of a TF Serving / serving.server gRPC endpoint to classify through")
    p.add_argument("--training-statistics", metavar="FILE", help="the model's training statistics "
                   "(<version>/assets.extra/training_statistics.json) for the check that the scene is like the "
                   "training data; read from --model by default, so needed only with --server and no --model")
    p.add_argument("--model-name", default=MODEL_NAME, help=f"--server: the served model's name (default {MODEL_NAME})")
    p.add_argument("--stride", type=int, default=64, help="pixels between patch starts (64, 32, 16 or 8); below 64 "
                   "patches overlap, their probabilities are averaged and map cells are stride x stride px "
                   "(default 64)")
    p.add_argument("--batch-size", type=int, default=64, help="patches per model call or request (default 64)")
    p.add_argument("--dn-range", default="0,2750", help="RGB digital numbers LOW,HIGH mapped to 1..255 as EuroSAT's "
                   "RGB images were made (default 0,2750); 8-bit scenes are used as they are")
    p.add_argument("--dn-offset", type=float, default=0.0, help="a folder of band files without metadata: the "
                   "offset added to its digital numbers (-1000 for products of processing baseline 04.00 or later, "
                   "i.e. since 25 January 2022); products with MTD_MSIL*.xml use their own (default 0: as they are)")
    p.add_argument("--no-cloud-mask", action="store_true", help="classify the cells a product's cloud mask (L2A's "
                   "SCL, L1C's MSK_CLASSI_B00) marks as cloud, cloud shadow, cirrus or saturated too")
    p.add_argument("--max-nodata-fraction", type=float, default=0.0, help="patches with more nodata/zero pixels "
                   "than this are not classified (default 0: any)")
    p.add_argument("--compare", help="the output folder of an earlier map of the same grid: writes transitions.csv "
                   "(from->to hectares) and change.png")
    p.add_argument("--min-confidence", type=float, default=0.0, help="--compare: leave out cells whose top "
                   "probability is below this in either map (a map's errors look like change) (default 0)")
    g = p.add_argument_group("Beam (many scenes; Dataflow)")
    g.add_argument("--beam", action="store_true", help="run the tiling and inference as a Beam pipeline")
    g.add_argument("--beam-runner", choices=BEAM_RUNNERS, default="direct")
    g.add_argument("--beam-direct-running-mode", choices=DIRECT_RUNNING_MODES,
                   default=_DEFAULTS.beam_direct_running_mode)
    g.add_argument("--beam-num-workers", type=int, default=0, help="DirectRunner workers, 0 = one per core")
    g.add_argument("--project", default="", help="Dataflow: Google Cloud project")
    g.add_argument("--region", default="", help="Dataflow: region, e.g. europe-west4")
    g.add_argument("--temp-location", default="", help="Dataflow: gs:// staging folder")
    g.add_argument("--image", default="", help="Dataflow: the component image (workers import the project from it)")
    return p


def parse_dn_range(text: str) -> tuple:
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise MapError(f"--dn-range {text!r}: give LOW,HIGH digital numbers, e.g. 0,2750") from None
    return low, high


def check_paths(args: argparse.Namespace) -> None:
    """Local --input and --model paths that do not exist, before TensorFlow loads (the rest of
    what they hold is checked where they are read)."""
    from pipeline.mapping.scene import require_input

    for path in args.input:
        require_input(path)
    if args.model and "://" not in args.model and not os.path.exists(args.model):
        raise MapError(f"--model {args.model!r} does not exist; give a push directory (e.g. "
                       "outputs/serving/eurosat) or a SavedModel folder")


def interrupted(output: str) -> str:
    return (f"interrupted: the map being written was not moved into {output!r} (an earlier map there is as it "
            "was); run the same command again")


def run(argv: List[str]) -> int:
    """`map`: parse, pick the predictor (in process / endpoint) or Beam, map, compare. Ctrl-C: one
    line and exit code 130, the pipeline's."""
    args = build_map_parser().parse_args(argv)
    configure_logging()
    dn_range = parse_dn_range(args.dn_range)  # flag and input errors before TensorFlow loads
    check_paths(args)
    try:
        return map_and_compare(args, dn_range)
    except KeyboardInterrupt:
        print(interrupted(args.output), file=sys.stderr)
        return 130


def compare_staged(changes: dict, args: argparse.Namespace, staging: str) -> None:
    """--compare into the folder of a finished map that is not yet moved into args.output."""
    from pipeline.mapping import change

    changes[args.output] = change.compare(args.compare, staging, args.min_confidence)


def map_and_compare(args: argparse.Namespace, dn_range: tuple) -> int:
    from pipeline.mapping import change, folders, landuse
    from pipeline.mapping.options import MapOptions

    options = MapOptions(args.stride, args.batch_size, dn_range, args.max_nodata_fraction,
                         dn_offset=args.dn_offset, cloud_mask=not args.no_cloud_mask)
    folders.check_output_dir(args.output)  # before the model loads
    change.check_min_confidence(args.min_confidence)
    changes: dict = {}  # output folder -> the change summary written into it
    if args.beam:
        if args.server:
            raise MapError("--beam runs the SavedModel on the workers; drop --server (or --beam)")
        beam_config = PipelineConfig(beam_runner=args.beam_runner, project=args.project, region=args.region,
                                     temp_location=args.temp_location, image=args.image,
                                     beam_direct_running_mode=args.beam_direct_running_mode,
                                     beam_num_workers=args.beam_num_workers)
        missing = [f"--{k.replace('_', '-')}" for k in ("project", "region", "temp_location", "image")
                   if args.beam_runner == "dataflow" and not getattr(args, k)]
        if missing:
            raise MapError(f"--beam-runner dataflow needs {', '.join(missing)}")
        if not args.model:
            raise MapError("--beam needs --model (a push directory or SavedModel the workers can read)")
        quiet_tensorflow()
        from pipeline.mapping import inputs as scene_inputs
        from pipeline.mapping.beam import run_beam_maps
        from pipeline.mapping.grid import TileGrid
        from schema import modalities

        for path in args.input if args.compare else ():  # before any worker starts
            # the grid does not depend on the bands: any modality opens the scene for its size
            with scene_inputs.open_scene(path, modalities.RGB.name, options) as dataset:
                change.check_scene_grid(args.compare, dataset, TileGrid(dataset.height, dataset.width, args.stride))
        outputs = run_beam_maps(args.input, args.model, args.output, beam_config.beam_pipeline_args(), options,
                                args.training_statistics)
    else:
        if len(args.input) != 1:
            raise MapError("several --input scenes need --beam (one map per run otherwise)")
        if not (args.server or args.model):
            raise MapError("give --model (a push directory or SavedModel) or --server host:port")
        quiet_tensorflow()
        from pipeline.mapping import predictors, training_check

        if args.server:
            predictor = predictors.EndpointPredictor(args.server, args.model_name)
            if args.model and not args.training_statistics:  # TF Serving does not serve the model's files
                predictor.training_statistics, predictor.no_statistics_reason = training_check.statistics_of_model(
                    predictors.resolve_model(args.model)[0])
        else:
            predictor = predictors.SavedModelPredictor(args.model)
        if args.training_statistics:
            predictor.training_statistics = training_check.statistics_file(args.training_statistics)
        # --compare: the grid is checked before any inference, the change files join the map before it moves in
        check = functools.partial(change.check_scene_grid, args.compare) if args.compare else None
        finish = functools.partial(compare_staged, changes, args) if args.compare else None
        landuse.map_scene(args.input[0], predictor, args.output, options, check=check, finish=finish)
        outputs = {args.input[0]: args.output}
    for output in outputs.values() if args.compare else ():
        result = changes.get(output) or change.compare(args.compare, output, args.min_confidence)
        print(f"change: {result['changed']} {result['unit']} of {result['compared']} changed class; "
              f"{os.path.join(output, 'change.png')}")
    for output in outputs.values():
        print(f"map: {os.path.join(output, 'landuse.png')}")
    return 0
