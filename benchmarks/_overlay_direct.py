"""The overlay reader on the benchmark's corpus, clip by clip, in this process: a developer's
loop, not a benchmark (no anchor, no vault, no commands; hence the "_", which keeps
`run.py` and `make bench` from running it).

`benchmarks/overlay.py` times whole commands; this reads each corpus clip's frames once (the
frames the `overlay_ocr` step takes: `reading_times` and every frame of the first `DENSE_S`
seconds), caches them (compressed) in benchmarks/work/overlay/frames-<corpus>/, and runs
`media.ocr.read_overlay` and `fit_segments` on them, scored by the benchmark's own
`score_corpus`. A run over 200 clips takes minutes, so run it on both corpora after every
change to the reader, and compare the failing clips with the last run's (`--save`, `--diff`).

What it does not do: date orders from other clips (each clip is read alone, so an ambiguous
slashed date stays unplaced here where `process` may place it).

    .venv/bin/python benchmarks/_overlay_direct.py [--generator 2|3] [--workers 2]
        [--save runs/now.json] [--diff runs/before.json] [cctv_0007.mp4 ...]
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from overlay import GENERATORS, N_FULL, SEED, WORK, corpus_dir, score_corpus


def frames(corpus: Path, name: str) -> tuple[list[tuple[float, Any]], list[tuple[float, Any]]]:
    """The clip's (regular, dense) greyscale frames as the overlay_ocr step takes them (its
    own job on a decode pass: keyframes nearest the reading times in clips of
    `SPARSE_MIN_S` and more)."""
    import numpy as np

    from strongroom.pipeline.steps.overlay import SPARSE_MIN_S

    cache = WORK / f"frames-{corpus.name}-v8-{SPARSE_MIN_S:g}" / f"{name}.npz"
    if cache.exists():
        with np.load(cache) as z:
            return (list(zip(z["regular_t"].tolist(), z["regular"], strict=True)),
                    list(zip(z["dense_t"].tolist(), z["dense"], strict=True)))
    from strongroom.media.frames import decode_pass
    from strongroom.media.probe import probe
    from strongroom.pipeline.step import Context
    from strongroom.pipeline.steps import registry
    from strongroom.pipeline.steps.overlay import DENSE_S, reading_times

    facts, _ = probe(corpus / name)
    ctx = Context(sha256="0" * 64, path=corpus / name, workdir=WORK, facts=facts)
    job = registry()["overlay_ocr"].start(ctx)
    if job.consumer is None:
        raise RuntimeError("the overlay_ocr job consumes no frames")
    ctx.decoded_duration = decode_pass(corpus / name, [job.consumer],
                                       facts.duration or 0.0).decoded_s
    every = job.pixels()
    want = reading_times(ctx.duration())
    nearest = sorted({min(range(len(every)), key=lambda i: abs(every[i][0] - w)) for w in want})
    regular, dense = [every[i] for i in nearest], [f for f in every if f[0] <= DENSE_S]
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache, regular_t=np.array([t for t, _ in regular]),
                        regular=np.stack([g for _, g in regular]),
                        dense_t=np.array([t for t, _ in dense]),
                        dense=np.stack([g for _, g in dense]))
    return regular, dense


def read(corpus: Path, name: str, duration: float) -> tuple[str, dict[str, Any], float]:
    """One clip's result, in the shape the overlay_ocr step stores (the keys scoring reads)."""
    from strongroom.media.ocr import read_overlay
    from strongroom.media.overlay import ClockReading, fit_segments
    from strongroom.pipeline.steps.overlay import _status, segment_rows

    regular, dense = frames(corpus, name)
    start = time.perf_counter()
    found = read_overlay(regular, dense)
    segments, _ = fit_segments([ClockReading(*c) for c in found.clocks], duration,
                               read_at=[t for t, _ in regular], read_otherwise=found.vetoed)
    seconds = time.perf_counter() - start
    return name, {
        "label": found.label, "label_uncertain": found.label_uncertain,
        "label_confidence": found.label_confidence, "status": _status(found, segments),
        "segments": segment_rows(segments)}, seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="only these clips (file names)")
    ap.add_argument("--generator", type=int, choices=GENERATORS, default=GENERATORS[-1])
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--n", type=int, default=N_FULL)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--save", type=Path, help="write the failing clips and figures here")
    ap.add_argument("--diff", type=Path, help="a --save of an earlier run to compare with")
    args = ap.parse_args(argv)
    corpus, _ = corpus_dir(args.seed, args.n, args.generator)
    truths = json.loads((corpus / "truth.json").read_text(encoding="utf-8"))["clips"]
    if args.names:
        truths = [t for t in truths if t["name"] in set(args.names)]
    jobs = [(corpus, t["name"], float(t["duration"])) for t in truths]
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            done = list(pool.map(read, *zip(*jobs, strict=True)))
    else:
        done = [read(*job) for job in jobs]
    results = {name: result for name, result, _ in done}
    acc = score_corpus(truths, results, seconds={name: s for name, _, s in done})
    failing = {f["name"]: f["failed"] for f in acc["failing_clips"]}
    for name, failed in failing.items():
        print(name, "; ".join(failed))
    clock, labels = acc["clock"], acc["labels"]
    figures = {"clock_exact_pct": clock["exact_pct"], "clock_exact": clock["exact"],
               "readable_seconds": clock["readable_seconds"],
               "wrong_time_clips": acc["wrong_time_clip_names"], "labels": labels,
               "ocr_seconds": round(sum(s for _, _, s in done), 1)}
    print(json.dumps(figures, ensure_ascii=False))
    if args.diff is not None:
        before = json.loads(args.diff.read_text(encoding="utf-8"))["failing"]
        for name in sorted(set(before) | set(failing)):
            if before.get(name) != failing.get(name):
                print("was:", name, before.get(name), "\n now:", name, failing.get(name))
    if args.save is not None:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        args.save.write_text(json.dumps({"figures": figures, "failing": failing},
                                        ensure_ascii=False, indent=1), encoding="utf-8")
    return 1 if acc["wrong_time_clip_names"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
