"""One GPU check of the AraBERT path (issue 12), prepared to run once when a GPU is lent.

1. Builds a random-weight BERT of AraBERT v0.2's exact shape (vocabulary 64,000, 12 layers,
   hidden 768) in the hub's published layout (config.json, pytorch_model.bin, vocab.txt,
   tokenizer_config.json): no weights are downloaded.
2. ``marsad train configs/arabert.yaml`` on the written corpus, one epoch, bf16 (on a GPU):
   steps/s, time per epoch, peak GPU memory.
3. Inference tokens/s of ``Extractor`` against ``transformers.pipeline`` on the same device and
   the same texts (the trained folder is a standard token-classification checkpoint).

    python bench/gpu_arabert.py --json > gpu.json            # on the GPU machine
    python bench/gpu_arabert.py --layers 2 --hidden 64 --vocab 2000 --records 64   # a CPU smoke run

Prints one JSON object; name the card (``device`` in the output) next to every number.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def published_folder(folder: Path, vocab_size: int, layers: int, hidden: int) -> Path:
    from transformers import BertConfig, BertForMaskedLM

    from marsad.training.scratch import train_wordpiece

    texts = [json.loads(line)["text"] for line in (ROOT / "data" / "corpus" / "train.jsonl").open(encoding="utf-8")]
    learnt = list(train_wordpiece(texts, min(vocab_size, 30000)).get_vocab())
    vocab = list(dict.fromkeys(learnt + [f"[unused{i}]" for i in range(vocab_size)]))[:vocab_size]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False, "max_len": 512}))
    config = BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=max(1, hidden // 64), intermediate_size=4 * hidden, architectures=["BertForMaskedLM"])
    (folder / "config.json").write_text(config.to_json_string())
    torch.save(BertForMaskedLM(config).state_dict(), folder / "pytorch_model.bin")
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vocab", type=int, default=64000)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--records", type=int, default=None, help="train on the first N corpus records (default: all)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from conftest import read_jsonl, write_jsonl
    from marsad.model import Extractor
    from marsad.training.config import load_config
    from marsad.training.trainer import train

    cuda = torch.cuda.is_available()
    work = Path(tempfile.mkdtemp(prefix="gpu-arabert-"))
    encoder = published_folder(work / "bert-base-arabertv02-shape", args.vocab, args.layers, args.hidden)
    records = read_jsonl(ROOT / "data" / "corpus" / "train.jsonl")[: args.records]
    write_jsonl(records, work / "train.jsonl")
    config = load_config(ROOT / "configs" / "arabert.yaml", [
        f"model.encoder={encoder}", f"data.train=[{work / 'train.jsonl'}]", "train.epochs=1",
        "train.mixed_precision=" + ("bf16" if cuda else '"no"'), "augment.enabled=false"])
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    train(config, work / "run", log=lambda *a, **k: print(*a, file=sys.stderr))
    train_s = time.perf_counter() - start
    epoch = json.loads((work / "run" / "metrics.jsonl").read_text(encoding="utf-8").splitlines()[0])
    out = {"device": torch.cuda.get_device_name() if cuda else "cpu", "shape": vars(args), "train_records": len(records),
           "epoch_seconds": epoch["elapsed_s"], "steps": epoch["step"],
           "steps_per_s": round(epoch["step"] / max(epoch["elapsed_s"], 1e-9), 2),
           "run_seconds_with_loading_and_eval": round(train_s, 1),
           "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None}
    texts = [r["text"] for r in read_jsonl(ROOT / "data" / "corpus" / "test.jsonl")] + [(ROOT / "seeds").glob("*.txt").__next__().read_text(encoding="utf-8")]
    device = "cuda" if cuda else "cpu"
    ex = Extractor.from_pretrained(work / "run", device=device)
    n_tokens = sum(len(ex.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
    ex.extract(texts[:8])  # warm-up
    t0 = time.perf_counter(); ex.extract(texts); marsad_s = time.perf_counter() - t0
    from transformers import pipeline

    pipe = pipeline("token-classification", model=str(work / "run"), device=0 if cuda else -1, stride=128,
                    aggregation_strategy="first", dtype=torch.bfloat16 if cuda else None)
    pipe(texts[:8])
    t0 = time.perf_counter(); pipe(texts, batch_size=32); pipe_s = time.perf_counter() - t0
    out.update({"predict_tokens": n_tokens, "marsad_tokens_per_s": round(n_tokens / marsad_s), "pipeline_tokens_per_s": round(n_tokens / pipe_s),
                "ratio_vs_pipeline": round(pipe_s / marsad_s, 2)})
    print(json.dumps(out, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
