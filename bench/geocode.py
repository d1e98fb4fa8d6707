"""What geocoding adds to ``marsad predict``: the offline index's load time and the events of the
seed article with their places, against the whole ``predict`` of the seed (a subprocess).

    python bench/geocode.py [--model runs/tiny]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "seeds" / "000_e7278219d2bbbc70.txt"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(ROOT / "runs" / "tiny"))
    args = ap.parse_args()
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "marsad.training.cli", "predict", "-m", args.model, str(SEED), "-q"],
                         capture_output=True, text=True, check=True).stdout
    predict_s = time.perf_counter() - t
    records = [json.loads(line) for line in out.splitlines()]
    t = time.perf_counter()
    from marsad.model.geo import default_geocoder

    default_geocoder()
    load_s = time.perf_counter() - t
    from marsad.model.events import events_from_record

    t = time.perf_counter()
    events = [e for i, r in enumerate(records) for e in events_from_record(r, i)]
    events_s = time.perf_counter() - t
    placed = sum(e.get("lat") is not None for e in events)
    print(f"predict of the seed (without events): {predict_s:.2f} s; geocoder index load {load_s:.2f} s; "
          f"{len(events)} events ({placed} with coordinates) in {events_s * 1000:.1f} ms; "
          f"geocoding adds {(load_s + events_s) / predict_s:.1%}")


if __name__ == "__main__":
    main()
