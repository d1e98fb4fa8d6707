"""CPU throughput and agreement of marsad's inference paths against the HF pipeline.

    python bench/throughput.py --json                  # both sizes, ~10 min on 2 cores
    python bench/throughput.py --quick                 # a 1-2 minute smoke run
    python bench/throughput.py --sizes tiny --articles 20 --repeats 5

Paths, all on the same articles, the same saved model folder and ``torch.set_num_threads(T)``:

- ``pipeline``: ``transformers.pipeline("token-classification", model=DIR,
  aggregation_strategy="simple", stride=128)``, one call per article (the baseline);
- ``fp32``: ``Extractor`` in fp32 (the reference for agreement; ``precision="auto"`` on CPUs without native bf16);
- ``bf16``: ``Extractor`` with the encoder's matmuls in bf16 (``precision="auto"`` on CPUs with AMX or AVX512-BF16);
- ``int8``: ``Extractor`` with torch dynamic int8 quantisation;
- ``onnx-int8``: ``Extractor`` with the encoder in ONNX Runtime, int8
  (``marsad.model.onnx_backend``; the export is cached beside the model and not timed).

Repetitions are interleaved finely in one process: each round runs every chunk of articles
(about ``--chunk-tokens`` tokens) through every path back to back, in an order rotating with the
chunk, so load from other programs falls on all paths alike. Medians over rounds are reported;
``ratio_vs_pipeline`` is the median over rounds of the pipeline's time divided by the path's.
See ``bench/README.md`` for what every number means.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEED_ARTICLE = ROOT / "seeds" / "000_e7278219d2bbbc70.txt"
FIGNEWS = ROOT.parent / "shared" / "data" / "fignews2024" / "FIGNEWS-2024-TEXT-IAA.tsv"
CORPUS_TEST = ROOT / "data" / "corpus" / "test.jsonl"
ALL_PATHS = ("pipeline", "loop", "loop-bf16", "fp32", "bf16", "int8", "onnx-int8")
BASELINES = ("pipeline", "loop", "loop-bf16")
BASE_SHAPE = {"vocab_size": 64000, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
              "intermediate_size": 3072, "max_position_embeddings": 512, "type_vocab_size": 2}
POSTS_PER_ARTICLE = 6  # FIGNEWS posts are short: six make an article-sized text


def say(*a):
    print(*a, file=sys.stderr, flush=True)


# --- articles ----------------------------------------------------------------------------------
def fignews_articles() -> list[str]:
    """FIGNEWS posts in Arabic (the original for Arabic posts, the Arabic MT otherwise), unique,
    grouped into pseudo-articles. Read at run time, never copied into the repository."""
    if not FIGNEWS.is_file():
        return []
    with open(FIGNEWS, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    posts = []
    for r in rows:
        text = (r.get("Text") if r.get("Source Language") == "Arabic" else r.get("Arabic MT")) or ""
        text = " ".join(text.split())
        if text and text not in posts:
            posts.append(text)
    return ["\n".join(posts[i : i + POSTS_PER_ARTICLE]) for i in range(0, len(posts), POSTS_PER_ARTICLE)]


def corpus_articles(path: Path = CORPUS_TEST) -> list[str]:
    """``data/corpus/test.jsonl`` sentences, regrouped into their documents."""
    if not path.is_file():
        return []
    docs: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            r = json.loads(line)
            docs.setdefault(str(r.get("meta", {}).get("doc", r.get("id"))), []).append(r["text"])
    return [" ".join(v) for v in docs.values()]


def load_articles(n: int | None, corpus_test: Path = CORPUS_TEST) -> tuple[list[str], dict]:
    """The seed article, then FIGNEWS and corpus pseudo-articles taken in turn."""
    sources = [fignews_articles(), corpus_articles(corpus_test)]
    articles = [SEED_ARTICLE.read_text(encoding="utf-8")]
    picked = {"seed": 1, "fignews": 0, "corpus_test": 0}
    i = 0
    while (n is None or len(articles) < n) and any(i < len(s) for s in sources):
        for name, src in zip(("fignews", "corpus_test"), sources):
            if i < len(src) and (n is None or len(articles) < n):
                articles.append(src[i])
                picked[name] += 1
        i += 1
    return articles, picked


# --- models ------------------------------------------------------------------------------------
def ensure_tiny(folder: Path, train_missing: bool) -> Path | None:
    if (folder / "model.safetensors").is_file():
        return folder
    if not train_missing:
        say(f"[tiny] no trained model at {folder}: skipping the tiny size. Train one with "
            f"`marsad train configs/tiny.yaml --output-dir {folder}`, or pass --train-missing")
        return None
    config = ROOT / "configs" / "tiny.yaml"
    overrides = ["train.epochs=1"]
    splits = ROOT / "data" / "corpus"
    if not (splits / "train.jsonl").is_file():  # build the corpus splits in a temporary folder
        tmp = Path(tempfile.mkdtemp(prefix="marsad-corpus-"))
        (tmp / "corpus").mkdir()
        os.symlink(splits / "src", tmp / "corpus" / "src")
        subprocess.run([sys.executable, "-m", "marsad.training.corpus", "build", "--data", str(tmp)], check=True,
                       stdout=subprocess.DEVNULL)
        splits = tmp / "corpus"
        overrides += [f"data.train=[{splits / 'train.jsonl'}, {ROOT / 'data' / 'seed.jsonl'}]",
                      f"data.dev=[{splits / 'dev.jsonl'}]", f"data.test=[{splits / 'test.jsonl'}]"]
    say(f"[tiny] training a quick model into {folder} (1 epoch)")
    subprocess.run([sys.executable, "-m", "marsad.training.cli", "train", "--output-dir", str(folder), str(config),
                    *overrides], check=True, stdout=sys.stderr)
    return folder


def ensure_base(folder: Path, tokenizer_from: Path | None) -> Path:
    """A MarsadModel with AraBERT's shape and random weights (seeded, so the saved file, and with
    it the ONNX cache, is the same on every build)."""
    if (folder / "model.safetensors").is_file():
        cfg = json.loads((folder / "config.json").read_text())
        if all(cfg.get(k) == v for k, v in BASE_SHAPE.items()):
            return folder
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from marsad.model.configuration import MarsadSettings
    from marsad.model.modeling import MarsadModel

    say(f"[base] building a random-weight model with AraBERT's shape in {folder}")
    torch.manual_seed(0)
    encoder = BertModel(BertConfig(**BASE_SHAPE), add_pooling_layer=False)
    model = MarsadModel.from_encoder(encoder, MarsadSettings(max_length=256, stride=32, relation_hidden=512))
    model.save_pretrained(folder)
    if tokenizer_from is not None and (tokenizer_from / "tokenizer.json").is_file():
        tok = AutoTokenizer.from_pretrained(str(tokenizer_from), use_fast=True)
    else:  # no tiny model: a WordPiece learnt from the benchmark's own texts
        from marsad.training.scratch import train_wordpiece

        tok = train_wordpiece(load_articles(None)[0], 32000)
    tok.model_max_length = BASE_SHAPE["max_position_embeddings"]  # the pipeline windows at 512, like AraBERT
    tok.save_pretrained(str(folder))
    return folder


def non_embedding_params(model) -> int:
    return sum(p.numel() for n, p in model.encoder.named_parameters() if not n.startswith("embeddings."))


# --- measuring ---------------------------------------------------------------------------------
def fp32_peak_flops(seconds: float = 2.0, dtype=None) -> float:
    """Best FLOP/s of a 2048^3 torch.mm (fp32 unless ``dtype``) on this process's threads."""
    import torch

    n = 2048
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(2):
        torch.mm(a, b)
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * n**3 / (time.perf_counter() - t))
    return best


def make_runner(path: str, folder: Path, reference=None):
    """A function articles -> list of entity sets, with the model loaded (and exported) now.
    Extractor paths share ``reference``'s (an fp32 Extractor's) model, tokenizer and gazetteer."""
    import torch

    if path == "pipeline":
        import transformers
        from transformers import pipeline

        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        pipe = pipeline("token-classification", model=str(folder), aggregation_strategy="simple", stride=128,
                        device="cpu")

        def run(articles):
            with torch.inference_mode():
                return [{"entities": {(e["start"], e["end"], e["entity_group"]) for e in pipe(a)}} for a in articles]

        return run
    if path in ("loop", "loop-bf16"):
        return make_loop(folder, bf16=path == "loop-bf16")
    from marsad.model import Extractor

    if reference is None:
        ex = Extractor.from_pretrained(folder, device="cpu", precision=path)
    else:
        ex = Extractor(reference.model, reference.tokenizer, device="cpu", precision=path, model_dir=folder,
                       gazetteer=getattr(reference, "gazetteer", None))

    def run(articles):
        ex.clear_caches()  # every chunk starts cold: no credit for words seen before
        return [record_items(r) for r in ex.extract(articles)]

    return run


def record_items(rec: dict) -> dict[str, set]:
    """What agreement compares in an Extractor record: entities ``(start, end, label)``, relations
    ``(head entity, tail entity, label)`` and casualty fields ``(start, end, count, approximate,
    status)`` of every CASUALTY entity."""
    ents = rec["entities"]

    def span(e):
        return e["start"], e["end"], e["label"]

    return {"entities": {span(e) for e in ents},
            "relations": {(span(ents[r["head"]]), span(ents[r["tail"]]), r["label"]) for r in rec["relations"]},
            "casualty": {(e["start"], e["end"], e.get("count"), e.get("approximate"), e.get("status"))
                         for e in ents if e["label"] == "CASUALTY"}}


def make_loop(folder: Path, bf16: bool = False, batch_size: int = 32):
    """The second baseline: what a competent transformers user writes in ten lines. Articles are
    split into sentences, sorted by length and batched; ``AutoModelForTokenClassification``
    tags them (fp32, or under ``torch.autocast("cpu", torch.bfloat16)`` where the CPU multiplies
    bf16 natively); a word's first sub-word's argmax gives its IOB2 tag."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from marsad.model.backends import cpu_has_fast_bf16
    from marsad.model.text import split_sentences

    if bf16 and not cpu_has_fast_bf16():
        raise ValueError("loop-bf16: this CPU has no native bf16 (AMX / AVX512-BF16)")
    tok = AutoTokenizer.from_pretrained(str(folder), use_fast=True)
    model = AutoModelForTokenClassification.from_pretrained(str(folder)).eval()
    id2label = model.config.id2label

    def tag(sentences):  # -> per sentence, (start, end, label) spans in sentence offsets
        enc = tok(sentences, padding=True, truncation=True, max_length=512, return_offsets_mapping=True, return_tensors="pt")
        offsets = enc.pop("offset_mapping").tolist()
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            labels = model(**enc).logits.argmax(-1).tolist()
        out = []
        for k, (offs, labs) in enumerate(zip(offsets, labels)):
            spans, prev_word = [], None
            for j, w in enumerate(enc.word_ids(k)):
                if w is None or w == prev_word:
                    continue
                prev_word, lab = w, id2label[labs[j]]
                if lab.startswith("B-") or (lab.startswith("I-") and (not spans or spans[-1][2] != lab[2:])):
                    spans.append([offs[j][0], offs[j][1], lab[2:]])
                elif lab.startswith("I-"):
                    spans[-1][1] = offs[j][1]
            out.append(spans)
        return out

    def run(articles):
        items = [(a, s, e) for a, text in enumerate(articles) for s, e in split_sentences(text)]
        items.sort(key=lambda it: it[2] - it[1])
        found = [set() for _ in articles]
        for i in range(0, len(items), batch_size):
            batch = items[i:i + batch_size]
            for (a, s, _), spans in zip(batch, tag([articles[a][s:e] for a, s, e in batch])):
                found[a] |= {(s + x, s + y, lab) for x, y, lab in spans}
        return [{"entities": f} for f in found]

    return run


def _agree(reference: list[set], other: list[set]) -> tuple[float, float, int, int]:
    """recall of ``reference``'s items, symmetric F1, and the two counts."""
    same = sum(len(a & b) for a, b in zip(reference, other))
    n_ref, n_got = sum(map(len, reference)), sum(map(len, other))
    return (round(same / n_ref, 4) if n_ref else 1.0, round(2 * same / (n_ref + n_got), 4) if n_ref + n_got else 1.0,
            n_ref, n_got)


def agreement(reference: list[dict], other: list[dict]) -> dict:
    """Agreement with the fp32 Extractor: entities at the top level (``recall``, ``f1``), and, for
    paths that give them, ``relations`` and ``casualty`` (fields of every CASUALTY entity);
    ``min_recall``: the lowest of the three recalls."""
    recall, f1, n_ref, n_got = _agree([r["entities"] for r in reference], [o["entities"] for o in other])
    out = {"recall": recall, "f1": f1, "fp32_entities": n_ref, "entities": n_got}
    recalls = [recall]
    for kind in ("relations", "casualty"):
        if all(kind in o for o in other):
            r, f, n_r, n_g = _agree([x[kind] for x in reference], [o[kind] for o in other])
            out[kind] = {"recall": r, "f1": f, f"fp32_{kind}": n_r, kind: n_g}
            recalls.append(r)
    out["min_recall"] = min(recalls)
    return out


def memory_child(args) -> None:
    """Runs in a fresh process: load one path, extract once, print peak RSS (MiB)."""
    import psutil
    import torch

    torch.set_num_threads(args.threads)
    import marsad.model.extractor  # noqa: F401  (imports counted in the baseline, not the path)
    import transformers  # noqa: F401

    if args.path.startswith("onnx"):
        import onnxruntime  # noqa: F401
    articles = json.loads(Path(args.articles_file).read_text(encoding="utf-8"))
    me = psutil.Process()
    before = me.memory_info().rss
    run = make_runner(args.path, Path(args.model))
    load_peak, loaded = _vm_hwm(), me.memory_info().rss
    reset = _reset_hwm()  # from here VmHWM is the peak of the extraction alone
    run(articles)
    peak = _vm_hwm()
    mib = 1 << 20
    print(json.dumps({"rss_after_imports_mb": round(before / mib, 1),
                      "loaded_rss_delta_mb": round((loaded - before) / mib, 1),
                      "load_peak_rss_delta_mb": round((load_peak - before) / mib, 1),
                      "run_peak_rss_delta_mb": round((peak - before) / mib, 1) if reset else None,
                      "peak_rss_mb": round(max(peak, load_peak) / mib, 1)}))


def _vm_hwm() -> int:
    """Peak RSS of this process in bytes: VmHWM (reset by exec, unlike ru_maxrss, which a child
    inherits from the parent that forked it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _reset_hwm() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0: ``echo 5 > /proc/self/clear_refs``)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def measure_memory(path: str, folder: Path, articles: list[str], threads: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
        json.dump(articles, f, ensure_ascii=False)
    try:
        out = subprocess.run([sys.executable, __file__, "--memory-child", path, "--model", str(folder),
                              "--articles-file", f.name, "--threads", str(threads)],
                             capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        os.unlink(f.name)


def chunk_articles(articles: list[str], counts: list[int], chunk_tokens: int) -> list[list[str]]:
    """Consecutive articles in groups of at least ``chunk_tokens`` tokens (the last may be smaller)."""
    chunks, cur, n = [], [], 0
    for a, k in zip(articles, counts):
        cur.append(a)
        n += k
        if n >= chunk_tokens:
            chunks.append(cur)
            cur, n = [], 0
    if cur:
        chunks.append(cur)
    return chunks


def bench_size(name: str, folder: Path, paths: list[str], articles: list[str], repeats: int, threads: int,
               memory_articles: int, chunk_tokens: int) -> dict:
    import transformers
    from transformers import AutoTokenizer

    from marsad.model import Extractor
    from marsad.model.backends import auto_precision

    transformers.logging.set_verbosity_error()
    tok = AutoTokenizer.from_pretrained(str(folder), use_fast=True)
    tok_counts = [len(ids) for ids in tok(articles, add_special_tokens=False)["input_ids"]]
    n_tokens = sum(tok_counts)
    # one model shared by the Extractor paths (int8 quantises a copy; onnx reads the folder)
    reference = Extractor.from_pretrained(folder, device="cpu", precision="fp32")
    flops_per_token = 2 * non_embedding_params(reference.model)
    default_path = auto_precision("cpu")  # what precision="auto" picks on this CPU
    say(f"[{name}] {len(articles)} articles, {n_tokens} tokens, {flops_per_token / 1e6:.1f} MFLOP/token, paths {paths} "
        f"(default {default_path})")

    runners, load_s, skipped = {}, {}, {}
    for p in paths:
        t = time.perf_counter()
        try:
            runners[p] = make_runner(p, folder, reference)
            runners[p](articles[:2])  # warm-up (allocator, ORT arenas, first-call paths)
        except (ImportError, ValueError) as e:  # onnxruntime missing; bf16 on a CPU without native bf16
            runners.pop(p, None)
            skipped[p] = str(e)
            say(f"[{name}] skipping {p}: {e}")
            continue
        load_s[p] = round(time.perf_counter() - t, 2)
    active = [p for p in paths if p in runners]

    # Interleave finely: each chunk of articles (about chunk_tokens tokens) runs through every
    # path, in an order rotating with the chunk, so other programs' load falls on all paths alike.
    chunks = chunk_articles(articles, tok_counts, chunk_tokens)
    times = {p: [0.0] * repeats for p in active}  # per round: the sum over chunks
    cpu = {p: [0.0] * repeats for p in active}
    outputs = {p: [] for p in active}
    load_before = os.getloadavg()[0]
    for r in range(repeats):
        for c, chunk in enumerate(chunks):
            k = (r + c) % len(active)
            for p in active[k:] + active[:k]:
                c0, t0 = time.process_time(), time.perf_counter()
                out = runners[p](chunk)
                times[p][r] += time.perf_counter() - t0
                cpu[p][r] += time.process_time() - c0
                if r == 0:
                    outputs[p] += out
        say(f"[{name}] round {r + 1}/{repeats}: " + ", ".join(f"{p} {n_tokens / times[p][r]:.0f} tok/s" for p in active))
    del runners

    res: dict = {"model": str(folder), "articles": len(articles), "tokens": n_tokens, "repeats": repeats,
                 "chunks": len(chunks), "load_average_during": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                 "flops_per_token": flops_per_token, "default_path": default_path, "paths": {}}
    for p in active:
        med = statistics.median(times[p])
        entry = {"tokens_per_s": round(n_tokens / med, 1), "articles_per_s": round(len(articles) / med, 3),
                 "median_s": round(med, 3), "seconds": [round(x, 3) for x in times[p]], "load_s": load_s[p],
                 "best_tokens_per_s": round(n_tokens / min(times[p]), 1),
                 "tokens_per_cpu_s": round(n_tokens / statistics.median(cpu[p]), 1)}
        if "pipeline" in times:
            entry["ratio_vs_pipeline"] = round(statistics.median(a / b for a, b in zip(times["pipeline"], times[p])), 2)
            entry["ratio_vs_pipeline_best"] = round(min(times["pipeline"]) / min(times[p]), 2)
        loops = [b for b in ("loop", "loop-bf16") if b in times]
        if loops:  # against the faster of the batched loops (fp32, or bf16 autocast where native)
            best = min(loops, key=lambda b: statistics.median(times[b]))
            entry["ratio_vs_loop"] = round(statistics.median(a / b for a, b in zip(times[best], times[p])), 2)
            entry["loop_baseline"] = best
        if "fp32" in outputs and p != "fp32":
            entry["agreement"] = agreement(outputs["fp32"], outputs[p])
        res["paths"][p] = entry
    if memory_articles:
        for p in active:
            say(f"[{name}] memory of {p} (fresh process)")
            res["paths"][p]["memory"] = measure_memory(p, folder, articles[:memory_articles], threads)
    if default_path in res["paths"] and "ratio_vs_pipeline" in res["paths"][default_path]:
        res["ratio_vs_pipeline"] = res["paths"][default_path]["ratio_vs_pipeline"]
        if "ratio_vs_loop" in res["paths"][default_path]:
            res["ratio_vs_loop"] = res["paths"][default_path]["ratio_vs_loop"]
        if "agreement" in res["paths"][default_path]:
            res["agreement"] = res["paths"][default_path]["agreement"]
    fast = {p: e for p, e in res["paths"].items() if p not in BASELINES}
    if fast:
        def speed(p):  # the paired ratio is the steadier number on a busy machine
            return fast[p].get("ratio_vs_pipeline", fast[p]["tokens_per_s"])

        res["fastest"] = max(fast, key=speed)
        ok = [p for p, e in fast.items() if p == "fp32" or e.get("agreement", {}).get("min_recall", 0) >= 0.99]
        res["fastest_at_99pct_agreement"] = max(ok, key=speed) if ok else None
    if skipped:
        res["skipped"] = skipped
    return res


# --- one article, a cold process, the command line ---------------------------------------------
def articles_of_words(n_words: int = 400, k: int = 8) -> list[str]:
    """Up to ``k`` distinct articles of about ``n_words`` words: the benchmark's texts joined and cut
    at the first sentence end after ``n_words`` words (at ``n_words`` + 40 words at the latest)."""
    words = " ".join(load_articles(None)[0]).split()
    out, i = [], 0
    while len(out) < k and i + n_words <= len(words):
        j = i + n_words
        while j < min(len(words), i + n_words + 40) and not words[j - 1].endswith((".", "!", "?", "؟")):
            j += 1
        out.append(" ".join(words[i:j]))
        i = j
    return out


def measure_latency(folder: Path, calls: int, reference=None) -> dict:
    """p50 / p95 milliseconds of ``Extractor.extract(article)`` on single ~400-word articles, for
    the default path (``precision="auto"``) and fp32; caches cleared before every call; the
    paths take turns call by call."""
    import numpy as np

    from marsad.model import Extractor
    from marsad.model.backends import auto_precision

    articles = articles_of_words()
    default = auto_precision("cpu")
    names = ["fp32"] if default == "fp32" else ["default", "fp32"]
    exs = {}
    for name in names:
        precision = "fp32" if name == "fp32" else default
        exs[name] = (Extractor(reference.model, reference.tokenizer, device="cpu", precision=precision, model_dir=folder,
                               gazetteer=getattr(reference, "gazetteer", None)) if reference is not None
                     else Extractor.from_pretrained(folder, device="cpu", precision=precision))
        for a in articles[:2]:
            exs[name].extract(a)  # warm-up
    ms = {name: [] for name in names}
    for i in range(calls):
        for name in names:
            exs[name].clear_caches()
            t = time.perf_counter()
            exs[name].extract(articles[i % len(articles)])
            ms[name].append((time.perf_counter() - t) * 1000)
    res = {"words_per_article": round(statistics.mean(len(a.split()) for a in articles), 1), "calls": calls,
           "articles": len(articles), "default_precision": default}
    for name in names:
        res[name] = {"p50_ms": round(float(np.percentile(ms[name], 50)), 1), "p95_ms": round(float(np.percentile(ms[name], 95)), 1),
                     "mean_ms": round(statistics.mean(ms[name]), 1)}
    if default == "fp32":
        res["default"] = "fp32 (precision=auto picks fp32 on this CPU)"
    return res


def measure_sentences(folder: Path, n: int, rounds: int) -> dict:
    """``Extractor.extract`` on ``n`` sentences in one call (the default path, caches cleared)
    against the transformers pipeline called once per sentence, as a user tagging sentence by
    sentence would: tokens/s of each and their ratio (medians over ``rounds`` taking turns)."""
    import torch
    import transformers
    from transformers import pipeline

    from marsad.model import Extractor
    from marsad.model.text import split_sentences

    sentences = [a[s:e] for a in corpus_articles() for s, e in split_sentences(a)][:n]
    transformers.logging.set_verbosity_error()
    pipe = pipeline("token-classification", model=str(folder), aggregation_strategy="simple", device="cpu")
    ex = Extractor.from_pretrained(folder, device="cpu")
    tokens = sum(len(ex.tokenizer.tokenize(t)) for t in sentences)
    for t in sentences[:5]:  # warm-up
        pipe(t)
    ex.extract(sentences[:5])
    secs = {"pipeline_per_sentence": [], "extract_one_call": []}
    for _ in range(rounds):
        t0 = time.perf_counter()
        with torch.inference_mode():
            for t in sentences:
                pipe(t)
        secs["pipeline_per_sentence"].append(time.perf_counter() - t0)
        ex.clear_caches()
        t0 = time.perf_counter()
        ex.extract(sentences)
        secs["extract_one_call"].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in secs.items()}
    return {"sentences": len(sentences), "tokens": tokens, "precision": ex.precision, "rounds": rounds,
            **{f"{k}_tokens_per_s": round(tokens / v) for k, v in med.items()},
            "ratio": round(med["pipeline_per_sentence"] / med["extract_one_call"], 2)}


COLD_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import torch
torch.set_num_threads(int(sys.argv[3]))
from marsad.model import Extractor
t1 = time.perf_counter()
ex = Extractor.from_pretrained(sys.argv[1], device="cpu")
t2 = time.perf_counter()
ex.extract(open(sys.argv[2], encoding="utf-8").read())
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "first_article_s": t3 - t2, "precision": ex.precision}))
"""


def measure_cold_start(folder: Path, runs: int, threads: int) -> dict:
    """A fresh Python process per run: import marsad (and torch), ``Extractor.from_pretrained``
    (default precision) and the first ~400-word article; medians over ``runs``. ``wall_s`` is
    the parent's clock around the whole process (interpreter start and exit included)."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        f.write(articles_of_words(k=1)[0])
    rows = []
    try:
        for _ in range(runs):
            t = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", COLD_CHILD, str(folder), f.name, str(threads)],
                                 capture_output=True, text=True, timeout=600, env=_child_env(threads))
            wall = time.perf_counter() - t
            if out.returncode != 0:
                return {"error": (out.stderr.strip().splitlines() or [f"exit {out.returncode}"])[-1]}
            rows.append({**json.loads(out.stdout.strip().splitlines()[-1]), "wall_s": wall})
    finally:
        os.unlink(f.name)
    res = {k: round(statistics.median(r[k] for r in rows), 2) for k in ("wall_s", "import_s", "load_s", "first_article_s")}
    res.update(runs=runs, precision=rows[0]["precision"], wall_s_each=[round(r["wall_s"], 2) for r in rows])
    return res


def predict_records(n: int) -> list[dict]:
    """``n`` records ``{"id", "text"}``: corpus and real-text sentences taken in turn (test, then dev,
    then train splits), cycled if the files hold fewer."""
    sources = []
    for kind in ("corpus", "real"):
        texts = []
        for split in ("test", "dev", "train"):
            path = ROOT / "data" / kind / f"{split}.jsonl"
            if path.is_file():
                texts += [json.loads(x)["text"] for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
        sources.append(texts)
    mixed = [t for pair in zip(*sources) for t in pair] + [t for src in sources for t in src[min(map(len, sources)):]]
    if not mixed:
        mixed = load_articles(None)[0]
    return [{"id": f"bench-{i}", "text": mixed[i % len(mixed)]} for i in range(n)]


def measure_predict(folder: Path, n: int, threads: int) -> dict:
    """``marsad predict -m DIR records.jsonl -o out.jsonl -q`` in a subprocess on ``n`` records (default
    precision): seconds from process start to exit (import and load included) and records/s."""
    with tempfile.TemporaryDirectory(prefix="marsad-bench-") as tmp:
        src, dst = Path(tmp) / "records.jsonl", Path(tmp) / "out.jsonl"
        recs = predict_records(n)
        src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "marsad.training.cli", "predict", "-m", str(folder), str(src),
                              "-o", str(dst), "-q"], capture_output=True, text=True, timeout=3600, env=_child_env(threads))
        seconds = time.perf_counter() - t
        if out.returncode != 0:
            return {"error": (out.stderr.strip().splitlines() or [f"exit {out.returncode}"])[-1]}
        lines = dst.read_text(encoding="utf-8").count("\n")
    return {"records": n, "characters": sum(len(r["text"]) for r in recs), "seconds": round(seconds, 2),
            "records_per_s": round(n / seconds, 1), "output_lines": lines}


def _child_env(threads: int) -> dict:
    """The environment of a measured subprocess: this run's thread count, no progress bars."""
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "TRANSFORMERS_VERBOSITY": "error", "TQDM_DISABLE": "1"}


def end_to_end(size: str, folder: Path, args) -> dict:
    """The optional measurements beside throughput: latency, cold start, ``marsad predict``."""
    calls = args.latency_calls if args.latency_calls is not None else (5 if args.quick else 30)
    colds = args.cold_starts if args.cold_starts is not None else (1 if args.quick else 3)
    n_predict = args.predict_records if args.predict_records is not None else (500 if args.quick else 2000)
    n_sentences = args.sentences if args.sentences is not None else (100 if args.quick else 410)
    res = {}
    if n_sentences and size == "tiny":
        say(f"[{size}] {n_sentences} sentences: one extract call vs the pipeline once per sentence")
        res["sentences"] = measure_sentences(folder, n_sentences, 1 if args.quick else 3)
    if calls:
        say(f"[{size}] latency: {calls} single ~400-word articles per path")
        res["latency"] = measure_latency(folder, calls)
    if colds:
        say(f"[{size}] cold start: {colds} fresh process(es)")
        res["cold_start"] = measure_cold_start(folder, colds, args.threads)
    if n_predict:
        say(f"[{size}] marsad predict on {n_predict} records (subprocess)")
        res["predict"] = measure_predict(folder, n_predict, args.threads)
    return res


def machine_info(threads: int, peak: list[float]) -> dict:
    import torch
    import transformers

    from marsad.model.backends import cpu_flags

    info = {"cpu": platform.processor() or platform.machine(), "logical_cpus": os.cpu_count(), "torch_threads": threads,
            "python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "fp32_peak_gflops": round(max(peak) / 1e9, 1), "fp32_peak_gflops_each": [round(x / 1e9, 1) for x in peak]}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name"))
        isa = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
        info["isa"] = [f for f in isa if f in cpu_flags()]
    except (OSError, StopIteration):
        pass
    try:
        import psutil

        info["physical_cores"] = psutil.cpu_count(logical=False)
        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
        info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    except ImportError:
        pass
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout (progress goes to stderr)")
    ap.add_argument("--sizes", default="tiny,base", help="comma-separated: tiny, base")
    ap.add_argument("--paths", default=",".join(ALL_PATHS), help=f"comma-separated subset of {','.join(ALL_PATHS)}")
    ap.add_argument("--tiny-model", type=Path, default=ROOT / "runs" / "tiny", help="a trained offline-default model folder")
    ap.add_argument("--base-model", type=Path, default=ROOT / "runs" / "bench-base",
                    help="where the random-weight BERT-base-shaped model is built (and reused)")
    ap.add_argument("--corpus-test", type=Path, default=CORPUS_TEST,
                    help="held-out corpus sentences (JSONL) to regroup into articles, if the file exists")
    ap.add_argument("--train-missing", action="store_true", help="train a quick tiny model if --tiny-model is missing")
    ap.add_argument("--articles", type=int, default=None, help="articles for the base size (default 8; --quick 3)")
    ap.add_argument("--tiny-articles", type=int, default=None, help="articles for the tiny size (default: 5x --articles)")
    ap.add_argument("--repeats", type=int, default=None, help="interleaved rounds (default 3; --quick 1)")
    ap.add_argument("--threads", type=int, default=None, help="torch (and ONNX Runtime) threads; default: torch's own")
    ap.add_argument("--memory-articles", type=int, default=None,
                    help="articles for the fresh-process memory runs (0 = skip memory; default 6, --quick 0)")
    ap.add_argument("--chunk-tokens", type=int, default=None,
                    help="interleaving grain: articles are timed in groups of about this many tokens "
                         "(default 1000 for base, 2500 for tiny)")
    ap.add_argument("--latency-calls", type=int, default=None,
                    help="single ~400-word article calls per path for p50/p95 latency (0 = skip; default 30, --quick 5)")
    ap.add_argument("--cold-starts", type=int, default=None,
                    help="fresh processes timing import + load + first article (0 = skip; default 3, --quick 1)")
    ap.add_argument("--predict-records", type=int, default=None,
                    help="records of the `marsad predict` end-to-end run (0 = skip; default 2000, --quick 500)")
    ap.add_argument("--sentences", type=int, default=None,
                    help="sentences for the one-call extract vs per-sentence pipeline ratio, tiny size (default 410; 0: skip)")
    ap.add_argument("--quick", action="store_true", help="a 1-2 minute smoke run")
    ap.add_argument("--memory-child", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--articles-file", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    import torch

    args.threads = args.threads or torch.get_num_threads()
    if args.memory_child:
        args.path = args.memory_child
        memory_child(args)
        return 0
    torch.set_num_threads(args.threads)
    n_articles = args.articles or (3 if args.quick else 8)
    n_tiny = args.tiny_articles or 5 * n_articles
    repeats = args.repeats or (1 if args.quick else 3)
    mem_articles = args.memory_articles if args.memory_articles is not None else (0 if args.quick else 6)
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    if bad := [p for p in paths if p not in ALL_PATHS] + [s for s in sizes if s not in ("tiny", "base")]:
        ap.error(f"unknown path or size: {bad}")

    peak = [fp32_peak_flops()]
    say(f"fp32 matmul peak: {peak[0] / 1e9:.1f} GFLOP/s on {args.threads} threads")
    out = {"sizes": {}, "machine": {}}
    tiny = ensure_tiny(args.tiny_model, args.train_missing) if "tiny" in sizes or "base" in sizes else None
    for size in sizes:
        if size == "tiny":
            if tiny is None:
                out["sizes"]["tiny"] = {"skipped": f"no trained model at {args.tiny_model}"}
                continue
            folder, n = tiny, n_tiny
        else:
            folder, n = ensure_base(args.base_model, tiny), n_articles
        articles, picked = load_articles(n, args.corpus_test)
        res = bench_size(size, folder, paths, articles, repeats, args.threads, mem_articles,
                         args.chunk_tokens or (1000 if size == "base" else 2500))
        res["article_sources"] = picked
        res.update(end_to_end(size, folder, args))
        out["sizes"][size] = res
        peak.append(fp32_peak_flops(1.0))
    out["machine"] = machine_info(args.threads, peak)
    bf16_peak = None
    if "bf16" in paths:
        import torch

        from marsad.model.backends import cpu_has_fast_bf16

        if cpu_has_fast_bf16():
            bf16_peak = fp32_peak_flops(1.0, torch.bfloat16)
            out["machine"]["bf16_peak_gflops"] = round(bf16_peak / 1e9, 1)
    for res in out["sizes"].values():  # against the best peak seen: a busy moment lowers a measurement
        for p, e in res.get("paths", {}).items():
            e["fraction_of_fp32_peak"] = round(e["tokens_per_s"] * res["flops_per_token"] / max(peak), 3)
            if p == "bf16" and bf16_peak:
                e["fraction_of_bf16_peak"] = round(e["tokens_per_s"] * res["flops_per_token"] / bf16_peak, 3)
    out["notes"] = {
        "tokens": "sub-word tokens of the article texts under the model's tokenizer (no specials), the same count for every path",
        "ratio_vs_pipeline": "median over rounds of pipeline seconds / path seconds, a round timing every chunk of "
                             "articles through all paths back to back (rotating order); ratio_vs_pipeline_best: "
                             "best pipeline round / best path round",
        "tokens_per_s": "tokens / median round seconds; best_tokens_per_s: the fastest round; tokens_per_cpu_s: per "
                        "second of process CPU time (all threads, spin-waiting included)",
        "agreement": "recall: share of the fp32 Extractor's (start, end, label) entities the path reproduces exactly; "
                     "f1: symmetric (2*same / (n_fp32 + n_path)); pipeline decodes differently (no word normalisation, "
                     "sub-word aggregation) so its number is informative only",
        "memory": "a fresh process per path, RSS from psutil and /proc/self/status VmHWM, all deltas from the RSS after "
                  "imports: loaded_rss_delta_mb = resident after loading (weights, sessions); load_peak_rss_delta_mb = peak "
                  "while loading (a state dict and the model coexist); run_peak_rss_delta_mb = peak while extracting "
                  "(VmHWM reset after loading), i.e. what serving this path needs; peak_rss_mb = the process's absolute peak",
        "fraction_of_fp32_peak": "tokens/s x 2 x non-embedding encoder parameters / measured fp32 torch.mm FLOP/s "
                                 "(fraction_of_bf16_peak: the same against a bf16 torch.mm, for the bf16 path)",
        "agreement_relations_casualty": "agreement.relations: (head span+label, tail span+label, relation label) of the "
                                        "fp32 Extractor's relations; agreement.casualty: (start, end, count, approximate, "
                                        "status) of its CASUALTY entities; min_recall: the lowest of the three recalls "
                                        "(fastest_at_99pct_agreement ranks paths by it)",
        "sentences": "offline size: Extractor.extract on N corpus test sentences in one call (precision=auto, caches "
                     "cleared) against pipeline(aggregation_strategy='simple') called once per sentence; ratio of "
                     "median seconds over rounds taking turns",
        "latency": "Extractor.extract on one ~400-word article a call (caches cleared before each), p50/p95 ms over "
                   "the calls, default path (precision=auto) and fp32 taking turns",
        "cold_start": "a fresh python process: import torch + marsad, Extractor.from_pretrained (precision=auto), the "
                      "first ~400-word article; medians; wall_s includes interpreter start and exit",
        "predict": "`python -m marsad.training.cli predict -m DIR records.jsonl -o out.jsonl -q` in a subprocess "
                   "(precision=auto), corpus and real-text sentences as records; seconds from start to exit",
        "base_weights": "random (speed only; its agreement is a sanity number, the tiny model's is the meaningful one)",
    }
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
    else:
        print(format_table(out))
    return 0


def format_table(out: dict) -> str:
    lines = []
    for size, res in out["sizes"].items():
        if "paths" not in res:
            lines.append(f"{size}: skipped ({res.get('skipped')})")
            continue
        lines.append(f"\n{size}: {res['articles']} articles, {res['tokens']} tokens, {res['repeats']} rounds ({res['model']})")
        lines.append(f"{'path':<10} {'tokens/s':>9} {'articles/s':>10} {'vs pipe':>8} {'vs loop':>8} {'agree':>7} {'F1':>7} {'run MB':>8} {'of peak':>8}")
        for p, e in res["paths"].items():
            ag = e.get("agreement", {})
            mem = e.get("memory", {}).get("run_peak_rss_delta_mb", "")
            lines.append(f"{p:<10} {e['tokens_per_s']:>9.0f} {e['articles_per_s']:>10.2f} {e.get('ratio_vs_pipeline', ''):>8} "
                         f"{e.get('ratio_vs_loop', ''):>8} "
                         f"{ag.get('recall', ''):>7} {ag.get('f1', ''):>7} {mem:>8} {e['fraction_of_fp32_peak']:>8}")
        for p, why in res.get("skipped", {}).items():
            lines.append(f"{p:<10} skipped: {why}")
        lines += _extra_lines(res)
    m = out["machine"]
    lines.append(f"\n{m.get('cpu')}, {m.get('torch_threads')} threads, fp32 peak {m.get('fp32_peak_gflops')} GFLOP/s")
    return "\n".join(lines)


def _extra_lines(res: dict) -> list[str]:
    """Table lines for relation / casualty agreement, latency, cold start and ``marsad predict``."""
    lines = []
    for p, e in res["paths"].items():
        ag = e.get("agreement", {})
        if "relations" in ag:
            lines.append(f"{p:<10} agreement with fp32 (recall / F1): entities {ag['recall']} / {ag['f1']}, relations "
                         f"{ag['relations']['recall']} / {ag['relations']['f1']}, casualty fields "
                         f"{ag['casualty']['recall']} / {ag['casualty']['f1']}")
    sen = res.get("sentences")
    if sen:
        lines.append(f"{sen['sentences']} sentences ({sen['precision']}): one extract call {sen['extract_one_call_tokens_per_s']} "
                     f"tokens/s, pipeline once per sentence {sen['pipeline_per_sentence_tokens_per_s']} tokens/s: "
                     f"{sen['ratio']}x")
    lat = res.get("latency")
    if lat:
        parts = [f"{k} p50 {v['p50_ms']} ms, p95 {v['p95_ms']} ms" for k, v in lat.items() if isinstance(v, dict)]
        default = lat["default"] if isinstance(lat["default"], str) else ""
        lines.append(f"latency, one {lat['words_per_article']}-word article ({lat['calls']} calls): {'; '.join(parts)}"
                     + (f"; default = {default}" if default else ""))
    cold = res.get("cold_start")
    if cold:
        lines.append(f"cold start ({cold.get('precision')}): {cold['wall_s']} s wall (import {cold['import_s']} s, load "
                     f"{cold['load_s']} s, first article {cold['first_article_s']} s)" if "wall_s" in cold else f"cold start: {cold}")
    pred = res.get("predict")
    if pred:
        lines.append(f"marsad predict, {pred['records']} records: {pred['seconds']} s, {pred['records_per_s']} records/s"
                     if "seconds" in pred else f"marsad predict: {pred}")
    return lines


if __name__ == "__main__":
    sys.exit(main())
