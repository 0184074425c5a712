#!/usr/bin/env python3
"""Side-by-side comparison of oddity's batch outlier models with scikit-learn on ODDS CSVs.

Step 1 runs the references on every CSV (header row, label last, 1 = outlier):
  - sklearn IsolationForest (defaults) for each seed, scores = -score_samples(X), mean ROC-AUC;
  - sklearn LocalOutlierFactor(n_neighbors=20), scores = -negative_outlier_factor_;
  - a numpy z-score: per-feature mean and population std (0 -> 1, like StandardScaler),
    score = mean over features of z^2 (oddity maps its root to 0..1 monotonically, so the
    ranking, hence ROC-AUC and AP, must agree).
Each is fitted on all rows and scores the same rows (the unsupervised ODDS protocol), timing
fit + score (the fastest of --repeat runs, on both sides), and the results are printed as JSON.

Step 2 runs `cargo run --release -p oddity-eval --example tabular -- --json` on the same CSVs
with the same seeds, one process per detector (dataset by dataset, right after the sklearn
side, so both see the same machine load), and prints a table: ROC-AUC ours vs sklearn,
|diff|, AP, times and the speed-up (sklearn time / ours) against the targets of issue 3.

Cargo builds into $CARGO_TARGET_DIR when it is set (as usual), so a private target directory
avoids waiting on the build lock of others working in the same checkout.

Usage (from the repository root):
  python3 -m venv bench/.venv && bench/.venv/bin/pip install scikit-learn numpy
  bench/.venv/bin/python bench/sklearn_compare.py [--data DIR] [--seeds 0,1,2] [--repeat 10]
                                                  [--rounds 1] [--out FILE]
"""

import argparse
import glob
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np
import sklearn
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.neighbors import LocalOutlierFactor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.join(ROOT, "..", "shared", "data", "odds")

# detector -> (max |ROC-AUC diff|, min speed-up), from issue 3.
TARGETS = {
    "isolation_forest": (0.02, 10.0),
    "lof": (0.01, 5.0),
    "zscore": (0.01, None),
}


def load(path):
    data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    return data[:, :-1], data[:, -1].astype(int)


def metrics(y, scores, seconds):
    return {
        "roc_auc": float(roc_auc_score(y, scores)),
        "average_precision": float(average_precision_score(y, scores)),
        "secs": seconds,
    }


def mean_runs(runs):
    keys = runs[0].keys()
    out = {k: float(np.mean([r[k] for r in runs])) for k in keys}
    out["runs"] = runs
    return out


def zscore_scores(X):
    mu = X.mean(axis=0)
    sd = X.std(axis=0)  # population std (ddof 0)
    sd[sd == 0] = 1.0
    z = (X - mu) / sd
    return (z * z).mean(axis=1)


def timed(fn, repeat):
    """Runs fn() `repeat` times; returns its (deterministic) result and the fastest time."""
    best, result = float("inf"), None
    for _ in range(max(1, repeat)):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return result, best


def reference(path, seeds, repeat):
    X, y = load(path)
    out = {}
    runs = []
    for seed in seeds:
        s, secs = timed(lambda: -IsolationForest(random_state=seed).fit(X).score_samples(X),
                        repeat)
        runs.append(metrics(y, s, secs))
    out["isolation_forest"] = mean_runs(runs)

    s, secs = timed(lambda: -LocalOutlierFactor(n_neighbors=20).fit(X).negative_outlier_factor_,
                    repeat)
    out["lof"] = metrics(y, s, secs)

    s, secs = timed(lambda: zscore_scores(X), repeat)
    out["zscore"] = metrics(y, s, secs)
    return {"rows": int(X.shape[0]), "dims": int(X.shape[1]), "outliers": int(y.sum()),
            "detectors": out}


def build_ours():
    cmd = ["cargo", "build", "--release", "-q", "-p", "oddity-eval", "--example", "tabular"]
    subprocess.run(cmd, cwd=ROOT, check=True)


def run_ours(files, seeds, repeat):
    """Runs oddity's example on `files`, one process per detector: on the 2-vCPU VM, LOF timed
    in the same process right after 30 Isolation Forest fits came out 0.4-0.8 ms slower than
    alone (not so single-threaded, nor with LOF first), which is the order, not the detector."""
    ours = {}
    for detector in TARGETS:
        args = ["cargo", "run", "--release", "-q", "-p", "oddity-eval", "--example", "tabular",
                "--"]
        for f in files:
            args += ["--data", f]
        args += ["--detector", detector]
        args += ["--seeds", ",".join(str(s) for s in seeds), "--repeat", str(repeat), "--json"]
        done = subprocess.run(args, cwd=ROOT, check=True, capture_output=True, text=True)
        for r in json.loads(done.stdout)["results"]:
            ours.setdefault(r["dataset"], {})[r["detector"]] = r
    return ours


def keep_fastest_ref(ref, name, new):
    """Stores `new` (one dataset's references) or, per detector, keeps the faster round (the
    scores are deterministic, so only the time differs)."""
    old = ref.get(name)
    if old is None:
        ref[name] = new
        return
    for det, r in new["detectors"].items():
        if r["secs"] < old["detectors"][det]["secs"]:
            old["detectors"][det] = r


def keep_fastest_ours(ours, new):
    """The same for oddity's results (fit + score time)."""
    for name, dets in new.items():
        for det, r in dets.items():
            o = ours.setdefault(name, {}).get(det)
            if o is None or r["fit_secs"] + r["score_secs"] < o["fit_secs"] + o["score_secs"]:
                ours[name][det] = r


def table(ref, ours):
    head = (f"{'dataset':<12} {'detector':<17} {'AUC ours':>8} {'AUC skl':>8} {'|diff|':>7} "
            f"{'ok':>3} {'AP ours':>8} {'AP skl':>8} {'ms ours':>9} {'ms skl':>9} "
            f"{'speedup':>8} {'ok':>3}")
    lines = [head, "-" * len(head)]
    failures = []
    for name in sorted(ref):
        for det, r in ref[name]["detectors"].items():
            o = ours.get(name, {}).get(det)
            if o is None:
                continue
            max_diff, min_speed = TARGETS[det]
            diff = abs(o["roc_auc"] - r["roc_auc"])
            ours_secs = o["fit_secs"] + o["score_secs"]
            speed = r["secs"] / ours_secs if ours_secs > 0 else float("inf")
            auc_ok = diff <= max_diff
            speed_ok = True if min_speed is None else speed >= min_speed
            if not auc_ok:
                failures.append(f"{name}/{det}: |diff| {diff:.4f} > {max_diff}")
            if not speed_ok:
                failures.append(f"{name}/{det}: speed-up {speed:.1f}x < {min_speed}x")
            lines.append(
                f"{name:<12} {det:<17} {o['roc_auc']:>8.4f} {r['roc_auc']:>8.4f} {diff:>7.4f} "
                f"{'y' if auc_ok else 'N':>3} {o['average_precision']:>8.4f} "
                f"{r['average_precision']:>8.4f} {ours_secs * 1e3:>9.2f} {r['secs'] * 1e3:>9.2f} "
                f"{speed:>7.1f}x {'-' if min_speed is None else ('y' if speed_ok else 'N'):>3}")
    return "\n".join(lines), failures


def seed_triples(ref, ours, seeds):
    """Isolation Forest over disjoint triples of the seeds (0,1,2 / 3,4,5 / ...): the issue's
    protocol (mean ROC-AUC over 3 seeds) repeated, to show how much it moves on its own."""
    triples = len(seeds) // 3
    if triples < 2:
        return None
    lines = [f"Isolation Forest, |diff| of 3-seed means over {triples} disjoint seed triples "
             "(per-seed ROC-AUC standard deviation, sklearn / ours):"]
    for name in sorted(ref):
        runs_ref = ref[name]["detectors"]["isolation_forest"]["runs"]
        runs_ours = ours.get(name, {}).get("isolation_forest", {}).get("runs")
        if not runs_ours:
            continue
        a = [r["roc_auc"] for r in runs_ref]
        b = [r["roc_auc"] for r in runs_ours]
        diffs = [abs(np.mean(b[3 * t:3 * t + 3]) - np.mean(a[3 * t:3 * t + 3]))
                 for t in range(triples)]
        within = sum(d <= TARGETS["isolation_forest"][0] for d in diffs)
        lines.append(f"{name:<12} sd {np.std(a, ddof=1):.4f} / {np.std(b, ddof=1):.4f}   "
                     + " ".join(f"{d:.3f}" for d in diffs)
                     + f"   within 0.02: {within}/{triples}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DEFAULT_DATA, help="directory of labelled CSVs")
    ap.add_argument("--seeds", default="0,1,2", help="Isolation Forest seeds (both sides)")
    ap.add_argument("--repeat", type=int, default=10,
                    help="time every run this many times and keep the fastest (both sides)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="alternate sklearn and oddity this many times per dataset, keeping "
                         "each side's fastest round")
    ap.add_argument("--out", help="also write the combined JSON here")
    ap.add_argument("--skip-ours", action="store_true", help="only run the references")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    files = sorted(glob.glob(os.path.join(args.data, "*.csv")))
    if not files:
        sys.exit(f"no CSV files under {args.data}")

    env = {"python": platform.python_version(), "sklearn": sklearn.__version__,
           "loadavg_start": os.getloadavg(),
           "numpy": np.__version__, "cpus": os.cpu_count(), "seeds": seeds,
           "repeat": args.repeat, "rounds": args.rounds}
    if not args.skip_ours:
        print("oddity: building the tabular example", file=sys.stderr)
        build_ours()
    # Dataset by dataset, sklearn then oddity back to back, so that both sides see the same
    # machine load; with --rounds R the pair runs R times, alternating, and each side keeps its
    # fastest round (a shared VM's speed drifts by tens of percent within minutes).
    ref, ours = {}, {}
    for f in files:
        name = os.path.splitext(os.path.basename(f))[0]
        for round_no in range(args.rounds):
            print(f"{name}: sklearn (round {round_no + 1}/{args.rounds})", file=sys.stderr)
            keep_fastest_ref(ref, name, reference(f, seeds, args.repeat))
            if not args.skip_ours:
                print(f"{name}: oddity (round {round_no + 1}/{args.rounds})", file=sys.stderr)
                keep_fastest_ours(ours, run_ours([f], seeds, args.repeat))
    env["loadavg_end"] = os.getloadavg()
    print(json.dumps({"environment": env, "sklearn": ref}, indent=2))
    if args.skip_ours:
        return
    text, failures = table(ref, ours)
    print()
    print(text)
    print()
    print("targets: IF |diff| <= 0.02 and >= 10x; LOF |diff| <= 0.01 and >= 5x; "
          "z-score |diff| <= 0.01")
    print("all targets met" if not failures else "missed: " + "; ".join(failures))
    triples = seed_triples(ref, ours, seeds)
    if triples:
        print()
        print(triples)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"environment": env, "sklearn": ref, "oddity": ours}, fh, indent=2)


if __name__ == "__main__":
    main()
