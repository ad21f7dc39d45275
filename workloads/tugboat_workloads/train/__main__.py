"""`python -m tugboat_workloads.train`: see entrypoint.py."""

import sys

from tugboat_workloads.train.entrypoint import main

sys.exit(main())
