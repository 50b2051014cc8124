"""Training throughput of the multi-head model (64×64 inputs): disentbench trainer vs a bare PyTorch loop.

The trainer run includes its whole pipeline: uint8 → float conversion per batch, data order, NaN checks,
JSON-lines logging, progress accounting, per-epoch test evaluation and checkpoints (every
``--checkpoint-every`` steps, at every epoch end, and the final two). The bare loop does the same
forward/backward/Adam steps on preconverted in-memory float tensors. Both run in this process,
alternating, ``--repeats`` times; the report gives the median images/s of each and their ratio.

    .venv/bin/python benchmarks/bench_training.py --threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from disentbench.training import resolve_spec, train
from disentbench.training.loop import setup_run


def bare_loop(run, steps: int, batch_size: int) -> float:
    """images/s of forward + summed task MSE + backward + Adam on in-memory float tensors."""
    torch.manual_seed(0)
    from disentbench.models import build_model

    model = build_model(run.model.name, run.model.config, run.model.context).to(run.data.images.device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x_all = run.data.images[run.data.train].float().div(float(run.data.pixel_max))
    y_all = run.data.targets[run.data.train]
    gen = torch.Generator().manual_seed(0)
    n = len(x_all)
    done, start = 0, time.perf_counter()
    while done < steps:
        order = torch.randperm(n, generator=gen)
        for b in range(n // batch_size):
            idx = order[b * batch_size:(b + 1) * batch_size]
            loss = (model.heads(model.encode(x_all[idx])) - y_all[idx]).pow(2).mean(dim=0).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
            if done == steps:
                break
    if x_all.is_cuda:
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - start)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="dsprites-procedural")
    p.add_argument("--images", type=int, default=2048, help="subset size (10%% held out for the test split)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = p.parse_args(argv)

    budget = {"subset": args.images, "epochs": args.epochs, "batch_size": args.batch_size,
              "checkpoint_every_steps": args.checkpoint_every}
    spec = resolve_spec("multi-head", tier="smoke", seed=0, dataset=args.dataset, device=args.device,
                        threads=args.threads, overrides=budget)
    run = setup_run(spec)
    steps = (len(run.data.train) // args.batch_size) * args.epochs
    trainer, bare = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            bare.append(bare_loop(run, steps, args.batch_size))
            summary = train(spec, Path(tmp) / f"run{r}", progress=False)
            trainer.append(summary["images_per_s"])
            print(f"repeat {r}: bare {bare[-1]:.1f} img/s, trainer {trainer[-1]:.1f} img/s", file=sys.stderr)
    result = {
        "model": "multi-head", "dataset": args.dataset, "device": args.device, "threads": args.threads,
        "batch_size": args.batch_size, "steps_per_run": steps, "repeats": args.repeats,
        "bare_images_per_s": round(statistics.median(bare), 1),
        "trainer_images_per_s": round(statistics.median(trainer), 1),
        "trainer_over_bare": round(statistics.median(trainer) / statistics.median(bare), 3),
        "all_bare": [round(v, 1) for v in bare], "all_trainer": [round(v, 1) for v in trainer],
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
