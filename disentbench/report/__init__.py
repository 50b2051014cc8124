"""See a representation: the per-run report (``disentbench report RUN_DIR``).

One module per figure family, each a function computing the arrays and one drawing them:

* :mod:`~disentbench.report.traversals` — latent traversals (decoded, or nearest evaluated images without a decoder);
* :mod:`~disentbench.report.reconstructions` — inputs beside their reconstructions;
* :mod:`~disentbench.report.embeddings` — PCA / t-SNE (/ UMAP) of the codes, one panel per factor;
* :mod:`~disentbench.report.heatmaps` — MI, DCI importance and Spearman matrices from the score record;
* :mod:`~disentbench.report.curves` — losses and metrics over steps from ``log.jsonl``;
* :mod:`~disentbench.report.run` — the run, its record and codes; :mod:`~disentbench.report.page` — the page.
"""

from disentbench.report.page import build_report
from disentbench.report.run import RECORD_NAME, ReportError, RunView, load_run

__all__ = ["RECORD_NAME", "ReportError", "RunView", "build_report", "load_run"]
