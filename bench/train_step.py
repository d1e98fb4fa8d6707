"""Training-step time of a config's model: torch's dropout against marsad's cheaper CPU masks
(``training/fastdropout.py``), and the cost of ``train.deterministic``.

    python bench/train_step.py [configs/tiny.yaml] [--steps 20] [--rounds 3]

One process builds the config's model and batches once (as ``marsad train`` does), then times the
same batches through three copies of the model, taking turns round by round: native dropout,
fast dropout (what training uses), and fast dropout under ``torch.use_deterministic_algorithms``.
It prints the median seconds per round and the ratios to the native copy, with the CPU's name.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import machine_info  # noqa: E402

from marsad.training import trainer  # noqa: E402
from marsad.training.config import load_config  # noqa: E402
from marsad.training.fastdropout import FastDropout  # noqa: E402


def native_copy(model: nn.Module) -> nn.Module:
    """``model`` with torch's own dropout modules and SDPA attention again."""
    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, FastDropout):
                setattr(parent, name, nn.Dropout(child.p))
    model.encoder.set_attn_implementation("sdpa")
    return model


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", nargs="?", default=str(Path(__file__).resolve().parents[1] / "configs" / "tiny.yaml"))
    ap.add_argument("--steps", type=int, default=20, help="batches per round")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)

    config = load_config(args.config)
    accelerator = trainer._accelerator("no", 1)
    records, train_records = trainer._load_data(config, lambda *a: None)
    run = trainer._Run(config, Path("/tmp/marsad-bench-train-step"), accelerator, lambda *a: None, records, train_records, None)
    batches = [b for _, b in zip(range(args.steps), run.loader)]
    variants = {"native dropout": (native_copy(run.model), False), "fast dropout": (run.model, False),
                "fast + deterministic": (copy.deepcopy(run.model), True)}
    optimizers = {k: torch.optim.AdamW(m.parameters(), lr=config.train.lr) for k, (m, _) in variants.items()}
    secs = {k: [] for k in variants}
    before = torch.are_deterministic_algorithms_enabled()
    for _ in range(args.rounds + 1):  # the first round warms up and is not counted
        for name, (model, deterministic) in variants.items():
            torch.use_deterministic_algorithms(deterministic)
            model.train()
            t0 = time.perf_counter()
            for batch in batches:
                loss = model(**batch)["loss"]
                loss.backward()
                optimizers[name].step()
                optimizers[name].zero_grad()
            secs[name].append(time.perf_counter() - t0)
    torch.use_deterministic_algorithms(before)
    info = machine_info(torch.get_num_threads(), [0.0])
    print(f"{info['cpu']} ({', '.join(info.get('isa', []))}), {torch.get_num_threads()} threads; "
          f"{args.steps} batches of {args.config}, median of {args.rounds} rounds:")
    base = statistics.median(secs["native dropout"][1:])
    for name, s in secs.items():
        med = statistics.median(s[1:])
        print(f"  {name:22} {med:6.2f} s  {med / base:.3f}x the native time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
