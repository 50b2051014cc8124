"""See a representation: the per-run report (``disentbench report RUN_DIR``).

One module per figure family, each a function computing the arrays and one drawing them:

* :mod:`~disentbench.viz.traversals` — latent traversals (decoded, or nearest evaluated images without a decoder);
* :mod:`~disentbench.viz.reconstructions` — inputs beside their reconstructions;
* :mod:`~disentbench.viz.embeddings` — PCA / t-SNE (/ UMAP) of the codes, one panel per factor;
* :mod:`~disentbench.viz.heatmaps` — MI, DCI importance and Spearman matrices from the score record;
* :mod:`~disentbench.viz.curves` — losses and metrics over steps from ``log.jsonl``;
* :mod:`~disentbench.viz.run` — the run, its record and codes; :mod:`~disentbench.viz.page` — the page.
"""

from disentbench.viz.page import build_report
from disentbench.viz.run import RECORD_NAME, ReportError, RunView, load_run

__all__ = ["RECORD_NAME", "ReportError", "RunView", "build_report", "load_run"]
