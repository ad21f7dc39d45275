"""`python -m tugboat_workloads.serve`: see server.main for exit codes."""

import sys

from .server import main

sys.exit(main())
