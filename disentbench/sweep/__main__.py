"""``python -m disentbench.sweep CELL_DIR``: run one cell (the local backend starts one such process per cell)."""

import sys

from disentbench.sweep.cells import run_cell

if len(sys.argv) != 2:
    sys.exit("usage: python -m disentbench.sweep CELL_DIR")
print(f"cell {sys.argv[1]}: {run_cell(sys.argv[1])}", flush=True)
