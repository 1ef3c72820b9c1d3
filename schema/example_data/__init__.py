"""Example data sets in the example contract, written to disk.

For the tests, the benchmarks and anyone trying the pipeline offline: not what TFX runs (the ExampleGen reads every
--data source itself, and generates synthetic:N from schema.samples).

* ``synthetic``: the EuroSAT look-alike as TFRecords, and synthetic Sentinel-2 scenes for the map;
* ``digits``: scikit-learn's handwritten digits, a real image set, in EuroSAT's class-folder layout;
* ``textures``: patches of ten photographs that scikit-image and scikit-learn ship, a real
  rotation-invariant set (no "up", like overhead imagery), in the same layout.

``python -m schema.example_data.digits ROOT`` and ``python -m schema.example_data.textures ROOT``
write the folders.
"""
