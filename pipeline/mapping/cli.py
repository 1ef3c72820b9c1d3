"""`pipeline_runner.py map`: the command line of the land-use maps (parse, pick the predictor or Beam, map, compare)."""
from __future__ import annotations

import argparse
import functools
import os
import sys
from typing import List

from components import settings
from pipeline.config import PipelineConfig
from pipeline.console import configure_logging, quiet_tensorflow
from pipeline.mapping.errors import MapError
from pipeline.mapping.options import MAP, MapOptions
from schema.locations import is_local
from serving.contract import MODEL_NAME

# The pipeline's settings a Beam map takes (their flags, types and defaults come from PipelineConfig).
BEAM_SETTINGS = ("beam_runner", "beam_direct_running_mode", "beam_num_workers", "project", "region",
                 "temp_location", "image")
DATAFLOW_NEEDS = ("project", "region", "temp_location", "image")


def build_map_parser() -> argparse.ArgumentParser:
    """The `map` subcommand's argument parser (MapOptions' flags among them)."""
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
    options = settings.add_arguments(p, MapOptions, MAP)
    p.add_argument("--compare", help="the output folder of an earlier map of the same grid: writes transitions.csv "
                   "(from->to hectares) and change.png")
    p.add_argument("--min-confidence", type=float, default=0.0, help="--compare: leave out cells whose top "
                   "probability is below this in either map (a map's errors look like change) (default 0)")
    g = p.add_argument_group("Beam (many scenes; Dataflow)")
    g.add_argument("--beam", action="store_true", help="run the tiling and inference as a Beam pipeline")
    beam = settings.add_arguments(g, PipelineConfig, None, names=BEAM_SETTINGS)
    p.set_defaults(option_dests=options, beam_dests=beam)
    return p


def parse_dn_range(text: str) -> tuple:
    """--dn-range LOW,HIGH as two floats; MapError when it is not two numbers."""
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise MapError(f"--dn-range {text!r}: give LOW,HIGH digital numbers, e.g. 0,2750") from None
    return low, high


def check_paths(args: argparse.Namespace) -> None:
    """Local --input and --model paths that do not exist, before TensorFlow loads.

    The rest of what they hold is checked where they are read.
    """
    from pipeline.mapping.scene import require_input

    for path in args.input:
        require_input(path)
    if args.model and is_local(args.model) and not os.path.exists(args.model):
        raise MapError(f"--model {args.model!r} does not exist; give a push directory (e.g. "
                       "outputs/serving/eurosat) or a SavedModel folder")


def interrupted(output: str) -> str:
    """The message for a map interrupted before it was moved into `output`."""
    return (f"interrupted: the map being written was not moved into {output!r} (an earlier map there is as it "
            "was); run the same command again")


def map_options(args: argparse.Namespace) -> MapOptions:
    """MapOptions from the flags given (the rest: MapOptions' defaults), validated."""
    values = settings.given(args, args.option_dests)
    if "dn_range" in values:
        values["dn_range"] = parse_dn_range(values["dn_range"])
    return MapOptions(**values)


def run(argv: List[str]) -> int:
    """Run `map`: parse, pick the predictor (in process / endpoint) or Beam, map, compare.

    `map`: parse, pick the predictor (in process / endpoint) or Beam, map, compare. Ctrl-C: one line and exit code
    130, the pipeline's.
    """
    args = build_map_parser().parse_args(argv)
    configure_logging()
    options = map_options(args)  # flag and input errors before TensorFlow loads
    check_paths(args)
    try:
        return map_and_compare(args, options)
    except KeyboardInterrupt:
        print(interrupted(args.output), file=sys.stderr)
        return 130


def compare_staged(changes: dict, args: argparse.Namespace, staging: str) -> None:
    """--compare into the folder of a finished map that is not yet moved into args.output."""
    from pipeline.mapping import change

    changes[args.output] = change.compare(args.compare, staging, args.min_confidence)


def map_and_compare(args: argparse.Namespace, options: MapOptions) -> int:
    """Map one scene (or several with --beam) and, with --compare, the change against an earlier map."""
    from pipeline.mapping import change, folders, landuse

    folders.check_output_dir(args.output)  # before the model loads
    change.check_min_confidence(args.min_confidence)
    changes: dict = {}  # output folder -> the change summary written into it
    if args.beam:
        if args.server:
            raise MapError("--beam runs the SavedModel on the workers; drop --server (or --beam)")
        beam_config = PipelineConfig().replace(**settings.given(args, args.beam_dests))
        missing = [settings.flag(PipelineConfig, k) for k in DATAFLOW_NEEDS
                   if beam_config.beam_runner == "dataflow" and not getattr(beam_config, k)]
        if missing:
            raise MapError(f"{settings.flag(PipelineConfig, 'beam_runner')} dataflow needs {', '.join(missing)}")
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
                change.check_scene_grid(args.compare, dataset, TileGrid(dataset.height, dataset.width, options.stride))
        outputs = run_beam_maps(args.input, args.model, args.output, beam_config.beam_pipeline_args(), options,
                                args.training_statistics)
    else:
        if len(args.input) != 1:
            raise MapError("several --input scenes need --beam (one map per run otherwise)")
        if not (args.server or args.model):
            raise MapError("give --model (a push directory or SavedModel) or --server host:port")
        quiet_tensorflow()
        from pipeline.mapping import predictors, training_check

        predictor: predictors.Predictor
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
