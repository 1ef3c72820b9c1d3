"""`python -m pipeline.report`: the report of a finished run."""
import sys

from pipeline.report import main

sys.exit(main())
