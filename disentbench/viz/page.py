"""The per-run report: every figure of the package drawn for one run, and one HTML page with the PNGs beside it.

Why HTML with PNG files rather than Markdown: the page opens from disk in any browser with no renderer, holds
tables, captions and image grids at their pixel size, and the PNGs stay plain files that a README or a paper can
reuse. ``report.json`` beside it lists every figure with its pixel size, the SHA-256 of the arrays behind it
(identical for the same run, record and seed) and the wall and CPU seconds of each part.
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from disentbench.fileio import atomic_write_text
from disentbench.viz import curves, embeddings, heatmaps, reconstructions, traversals
from disentbench.viz.figures import arrays_sha256
from disentbench.viz.run import RunView


class _Figures:
    """Collects figures (file, caption, size, data hash) and the seconds spent on each part."""

    def __init__(self, out: Path):
        self.out = out
        self.items: list[dict[str, Any]] = []
        self.timings: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def add(self, name: str, caption: str, size: tuple[int, int], arrays: list[np.ndarray], part: str) -> None:
        self.items.append({"name": name, "file": f"{name}.png", "caption": caption, "part": part,
                           "height": size[0], "width": size[1], "arrays_sha256": arrays_sha256(arrays)})

    def timed(self, part: str, fn: Callable[[], Any]) -> Any:
        """Run ``fn``, adding its wall and CPU seconds (this process) to ``part``'s."""
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return fn()
        finally:
            self.timings[part] = round(self.timings.get(part, 0.0) + time.perf_counter() - wall, 2)
            self.cpu[part] = round(self.cpu.get(part, 0.0) + time.process_time() - cpu, 2)


def _row_labels(n_codes: int, maps: list[heatmaps.Heatmap], factor_names: list[str]) -> list[str]:
    """``z_j`` and, when the record has the MI matrix, the factor it shares most information with."""
    mi = next((m for m in maps if m.name == "mutual_info"), None)
    if mi is None:
        return [f"z{j}" for j in range(n_codes)]
    return [f"z{j} ~ {text}" for j, text in enumerate(heatmaps.matched_factors(mi, factor_names))]


def _traversal_figures(run: RunView, figs: _Figures, seed: int, labels: list[str]) -> list[dict]:
    """Decoded traversals when a decoder exists, nearest-image ones when the model has none of its own; returns the
    'factors moved' tables of the nearest-image traversals."""
    base = traversals.base_position(len(run.codes), seed)
    moved_tables = []
    kinds = (["decoded"] if run.decode is not None else []) + \
            ([] if run.own_decoder else ["nearest"])
    spans = {"fixed": "−1 to 1 in steps of 0.1 (seed 004)", "quantile": "the code's own 5 %–95 % quantiles (dlib-style)"}
    for kind in kinds:
        for span, span_text in spans.items():
            values = traversals.span_values(run.codes, span)
            if kind == "decoded":
                trav = traversals.decoded_traversal(run.decode, run.codes[base], values, span)
                how = f"decoded by {run.decoder_source}"
            else:
                trav = traversals.nearest_traversal(run.codes, run.images, run.codes[base], values, span)
                how = "nearest evaluated image to each target code (no decoder)"
                moved_tables.append({"span": span, "moved": traversals.factors_moved(run.classes, trav.positions)})
            name = f"traversal_{kind}_{span}"
            rows = labels if span == "fixed" else [f"{t}\n[{v[0]:.3g}, {v[-1]:.3g}]" for t, v in zip(labels, values)]
            size = traversals.plot_traversal(trav, figs.out / f"{name}.png", row_labels=rows,
                                             title=f"{run.record['model']}: traversal over {span_text}; {how}")
            figs.add(name, f"Latent traversal, {how}: row j sets code z_j to {span_text}, the other codes fixed at "
                           f"those of grid image {int(run.indices[base])}.", size, trav.arrays(), "traversals")
    return moved_tables


def build_report(run: RunView, out: Path, *, seed: int = 0, methods: list[str] | None = None) -> dict[str, Any]:
    """Draw every figure of ``run`` into ``out`` and write ``index.html`` and ``report.json``; returns the latter."""
    methods = methods or embeddings.available_methods()
    unknown = sorted(set(methods) - set(embeddings.available_methods()))
    if unknown:
        raise ValueError(f"embedding {unknown[0]!r} is not available; available: "
                         f"{', '.join(embeddings.available_methods())} (umap needs the umap-learn extra)")
    out.mkdir(parents=True, exist_ok=True)
    figs = _Figures(out)
    record, names = run.record, run.factor_names
    title = f"{record['model']} on {record['dataset']} (seed {record['seed']}, tier {record['tier']})"
    maps, missing = heatmaps.record_heatmaps(record, len(names))
    labels = _row_labels(run.codes.shape[1], maps, names)

    moved = figs.timed("traversals", lambda: _traversal_figures(run, figs, seed, labels))

    def recon() -> None:
        positions = reconstructions.sample_positions(len(run.codes), seed)
        rec = reconstructions.reconstruct(run.images(positions), run.encode, run.decode, positions)
        size = reconstructions.plot_reconstructions(rec, out / "reconstructions.png", title=f"{title}: reconstructions")
        figs.add("reconstructions", f"Inputs (top) and their reconstructions by {run.decoder_source} (bottom); "
                                    "columns: per-pixel MSE.", size, rec.arrays(), "reconstructions")

    if run.decode is not None:
        figs.timed("reconstructions", recon)

    def embed() -> None:
        positions = embeddings.subsample(len(run.codes), seed)
        embs = [figs.timed(f"embedding {m}", lambda m=m: embeddings.embed(run.codes, m, positions, seed))
                for m in methods]
        size = embeddings.plot_embeddings(embs, run.classes, names, out / "embeddings.png",
                                          title=f"{title}: 2-D embeddings of the codes")
        figs.add("embeddings", f"2-D embeddings ({', '.join(methods)}) of the standardised codes of {len(positions):,} "
                               "evaluated grid points; one panel per factor, coloured by its class.", size,
                 [e.points for e in embs] + [positions], "embeddings")

    figs.timed("embeddings (all)", embed)

    def heat() -> None:
        size = heatmaps.plot_heatmaps(maps, names, out / "heatmaps.png", title=f"{title}: codes × factors")
        figs.add("heatmaps", "Codes × factors, from the score record's matrices: "
                 + "; ".join(m.title for m in maps) + ".", size, [m.values for m in maps], "heatmaps")

    if maps:
        figs.timed("heatmaps", heat)
    series = curves.log_curves(run.log)

    def draw_curves() -> None:
        size = curves.plot_curves(series, out / "curves.png", title=f"{title}: training log")
        figs.add("curves", "Training losses, the model's own test numbers per epoch and, when trained with "
                           "--metrics-every, MIG and fast DCI on the monitoring sample.", size, series.arrays(),
                 "curves")

    if series.panels:
        figs.timed("curves", draw_curves)
    summary = {"run": str(run.run_dir), "record_id": record["record_id"], "seed": seed, "embeddings": methods,
               "decoder": run.decoder_source, "figures": figs.items, "timings_s": figs.timings,
               "cpu_s": figs.cpu,
               "missing_matrices": missing}
    atomic_write_text(out / "report.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(out / "index.html", _page(run, title, figs, maps, moved, missing, methods))
    return summary


def _table(head: list[str], rows: list[list[str]]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{cells}</tr>{body}</table>"


def _page(run: RunView, title: str, figs: _Figures, maps, moved, missing, methods) -> str:
    from disentbench.leaderboard import ordered_metrics
    from disentbench.metrics.registry import score_meaning

    record, names = run.record, run.factor_names
    warnings = list(record.get("warnings", [])) + [
        f"{metric}: {w}" for metric, d in record.get("metric_details", {}).items() for w in d.get("warnings", [])]
    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p>Run <code>{html.escape(str(run.run_dir))}</code>, record <code>{record['record_id']}</code> "
             f"({record['n_points']:,} grid points, preset <code>{record['preset']}</code>, code dimension "
             f"{record['code_dim']}, representation: {html.escape(str(record['model_source'].get('representation')))}"
             f"). Decoder: {html.escape(run.decoder_source or 'none (nearest-image traversals)')}. "
             f"Embeddings: {', '.join(methods)}"
             f"{'' if 'umap' in methods else ' (UMAP needs the optional umap-learn extra)'}.</p>"]
    if warnings:
        parts.append('<div class="warn"><b>Warnings</b><ul>' + "".join(f"<li>{html.escape(w)}</li>" for w in warnings)
                     + "</ul></div>")
    rows = [[k, f"{record['metrics'][k]:.4f}", score_meaning(k).describe()] for k in ordered_metrics(record["metrics"])]
    parts += ["<h2>Score record</h2>", _table(["metric", "value", "meaning"], rows)]
    for part in ("traversals", "reconstructions", "embeddings", "heatmaps", "curves"):
        items = [f for f in figs.items if f["part"] == part]
        if not items:
            continue
        parts.append(f"<h2>{part.capitalize()}</h2>")
        for f in items:
            parts.append(f'<figure><img src="{f["file"]}" width="{f["width"]}" height="{f["height"]}" '
                         f'alt="{html.escape(f["name"])}"><figcaption>{html.escape(f["caption"])}</figcaption></figure>')
        if part == "traversals":
            for table in moved:
                parts.append(f"<p>Factors whose class changes along each row of the nearest-image traversal "
                             f"({table['span']} span): number of distinct classes per factor.</p>")
                parts.append(_table(["code", *names], [[f"z{j}", *map(str, r)] for j, r in enumerate(table["moved"])]))
        if part == "heatmaps":
            sp = next((m for m in maps if m.name == "spearman"), None)
            if sp is not None:
                parts.append("<p>Spearman matching (seed 004 app. I): each code's matched factor (largest significant "
                             "|ρ|).</p>")
                parts.append(_table(["code", "matched factor (|ρ|)"],
                                    [[f"z{j}", t] for j, t in enumerate(heatmaps.matched_factors(sp, names))]))
            if missing:
                parts.append(f"<p>Not in the record: {html.escape(', '.join(missing))}.</p>")
    timing = ", ".join(f"{k} {v:.1f} s ({figs.cpu[k]:.1f} s CPU)" for k, v in figs.timings.items())
    parts.append(f"<p class=\"small\">Seconds per part: {timing}. Array hashes per figure: report.json.</p>")
    style = ("body{font-family:sans-serif;max-width:1500px;margin:1em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}"
             ".warn{background:#fff4e0;border:1px solid #e0a040;padding:.3em 1em}figure{margin:1em 0}"
             "figcaption{font-size:13px;color:#444}.small{font-size:12px;color:#666}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")
