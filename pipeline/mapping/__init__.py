"""Land-use maps: a whole Sentinel-2 scene in, a georeferenced map of EuroSAT classes out.

    python pipeline_runner.py map --model outputs/serving/eurosat --input scene.tif --output maps/2024

- ``scene``: open and check a scene, windowed reads of its strips, the true-colour preview;
- ``grid``: the tile grid (patches every --stride pixels) and the map cells they cover;
- ``pixels``: nodata masks, RGB digital numbers -> 8 bits, the model's pixel dtype;
- ``mosaic``: a folder or zip of georeferenced patches -> one GeoTIFF to map;
- ``product``, ``bands``: a Sentinel-2 product as delivered -> its band files, offsets and cloud
  mask -> the model's bands on the 10 m grid; ``inputs``: what --input is -> the dataset to read;
- ``predictors``: the exported model's own signatures, in process or through a gRPC endpoint;
- ``cells``: overlap averaging of the patches' probabilities into the map's cells;
- ``outputs``: the GeoTIFFs, PNG, tiles.csv and summary.json of a map;
- ``folders``: the map's --output, checked first and written whole or not at all (staged, then moved in);
- ``landuse``: the local run (batches, read-ahead, progress);
- ``options``, ``errors``: MapOptions and MapError;
- ``change``: the from->to transition matrix between two maps of the same grid;
- ``beam``: the same tiling and inference as a Beam pipeline (DirectRunner or Dataflow).

Only the command line imports this package.
"""
