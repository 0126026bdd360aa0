"""python -m minimrcnn.ablations: the sweep's command line (minimrcnn/ablations/sweep.py)."""

from minimrcnn.ablations.sweep import main
from minimrcnn.errors import run_command

run_command(main)
