"""``disentbench data list|info|fetch|verify|show``: the ground-truth datasets."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser("data", help="list, fetch, verify and show ground-truth datasets")
    _add_common(parser, argparse.SUPPRESS)
    common = argparse.ArgumentParser(add_help=False)
    _add_common(common, argparse.SUPPRESS)
    parser.set_defaults(cache_dir=None, offline=None)
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    sub.add_parser("list", parents=[common], help="every dataset: kind, size, factors, whether available locally")
    for action, text in (("info", "manifest, files and factors of one dataset"),
                         ("fetch", "download, verify and convert an official dataset"),
                         ("verify", "re-check files and conversion against the manifest")):
        p = sub.add_parser(action, parents=[common], help=text)
        p.add_argument("name")
    show = sub.add_parser("show", parents=[common], help="PNG grid of samples: one row per factor sweep")
    show.add_argument("name")
    show.add_argument("--out", type=Path, required=True, help="PNG file to write")
    show.add_argument("--seed", type=int, default=0, help="seed of the base point of every sweep")
    show.add_argument("--columns", type=int, default=10, help="images per row (at most the factor's size)")
    parser.set_defaults(func=_run)


def _add_common(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument("--cache-dir", type=Path, default=default,
                        help="dataset cache directory (default: $DISENTBENCH_DATA, else $DISENTBENCH_CACHE/data, "
                             "else the user cache dir)")
    parser.add_argument("--offline", action="store_true", default=default,
                        help="never download (also: DISENTBENCH_OFFLINE=1)")


def _run(args: argparse.Namespace) -> int:
    handler = {"list": _list, "info": _info, "fetch": _fetch, "verify": _verify, "show": _show}[args.data_command]
    return handler(args)


def _list(args) -> int:
    from disentbench.data import list_datasets

    rows = list_datasets(cache_dir=args.cache_dir)
    print(f"{'name':<20} {'kind':<11} {'images':>9} {'download':>10} {'local':<6} factors")
    for r in rows:
        if r["download_bytes"]:
            size = f"{r['download_bytes'] / 1e6:.0f} MB"
        else:
            size = "-" if r["kind"] == "procedural" else "?"  # "?": the size is not published
        factors = " ".join(f"{k}={v}" for k, v in r["factors"].items())
        local = "yes" if r["available"] else "no"
        print(f"{r['name']:<20} {r['kind']:<11} {r['images']:>9,} {size:>10} {local:<6} {factors}")
    return 0


def _info(args) -> int:
    from disentbench.data.cache import dataset_dir
    from disentbench.data.registry import get_entry

    entry = get_entry(args.name)
    space = entry.factor_space()
    print(f"{entry.name} ({entry.kind}): {entry.description}")
    print(f"images: {space.n_points:,} x 64x64x{entry.channels}")
    for name, size, values in zip(space.names, space.sizes, space.values):
        shown = ", ".join(f"{v:g}" for v in values[:6]) + (", ..." if size > 6 else "")
        print(f"  {name:<18} {size:>4} values: {shown}")
    if entry.kind == "official":
        from disentbench.data.manifest import load_manifest

        manifest = load_manifest(entry.name)
        directory = dataset_dir(entry.name, args.cache_dir)
        print(f"version {manifest.version}; homepage {manifest.homepage}; cache {directory}")
        if manifest.format.get("alternatives"):
            print("files (any one of them, in order of preference):")
        for spec in manifest.files:
            state = "present" if (directory / spec.name).is_file() else "missing"
            print(f"  [{state}] {spec.describe()}")
            for url in spec.urls:
                print(f"           {url}")
            if spec.note:
                print(f"           note: {spec.note}")
        if manifest.note:
            print(f"note: {manifest.note}")
    return 0


def _fetch(args) -> int:
    from disentbench.data.official import open_official
    from disentbench.data.registry import get_entry

    if get_entry(args.name).kind != "official":
        print(f"{args.name} is procedural: nothing to fetch, it renders on demand")
        return 0
    dataset = open_official(args.name, cache_dir=args.cache_dir, download=True, offline=args.offline)
    print(f"{dataset.name}: {len(dataset):,} images ready")
    return 0


def _verify(args) -> int:
    from disentbench.data.official import verify_official
    from disentbench.data.registry import get_entry

    if get_entry(args.name).kind != "official":
        print(f"{args.name} is procedural: renders are a pure function of the factors, nothing to verify")
        return 0
    for line in verify_official(args.name, cache_dir=args.cache_dir):
        print(line)
    return 0


def _show(args) -> int:
    import numpy as np

    from disentbench.data import get_dataset
    from disentbench.data.registry import get_entry

    kw = {"cache_dir": args.cache_dir, "offline": args.offline} if get_entry(args.name).kind == "official" else {}
    dataset = get_dataset(args.name, **kw)
    space = dataset.factor_space
    base = space.sample_classes(1, args.seed)[0]
    rows = []
    for k, size in enumerate(space.sizes):
        steps = np.unique(np.linspace(0, size - 1, min(args.columns, size)).round().astype(np.int64))
        classes = np.repeat(base[None], args.columns, axis=0)
        classes[: len(steps), k] = steps
        imgs = dataset.images_for_classes(classes).astype(np.uint8)
        if dataset.channels == 1 and imgs.max() <= 1:
            imgs = imgs * 255
        imgs[len(steps):] = 0  # factors with fewer values than columns leave the rest black
        rows.append(np.concatenate(list(imgs), axis=1))
    grid = np.concatenate(rows, axis=0)
    if grid.shape[-1] == 1:
        grid = np.repeat(grid, 3, axis=-1)
    _write_png(args.out, grid)
    print(f"wrote {args.out}: rows = {', '.join(space.names)}")
    return 0


def _write_png(path: Path, rgb) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import image as mpimg

    from disentbench.fileio import atomic_write

    atomic_write(path, lambda fh: mpimg.imsave(fh, rgb, format="png"))
