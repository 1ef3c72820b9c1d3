"""Land-use maps: a whole Sentinel-2 scene in, a georeferenced map of EuroSAT classes out.

    python pipeline_runner.py map --model outputs/serving/eurosat --input scene.tif --output maps/2024

- ``scene``: open and check a scene, the tile grid, windowed reads, nodata masks, RGB scaling;
- ``predictors``: the exported model's own signatures, in process or through a gRPC endpoint;
- ``landuse``: overlap averaging, the local run with progress, and the outputs;
- ``change``: the from->to transition matrix between two maps of the same grid;
- ``beam``: the same tiling and inference as a Beam pipeline (DirectRunner or Dataflow).

Only the command line imports this package.
"""
