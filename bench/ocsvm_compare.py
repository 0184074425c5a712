#!/usr/bin/env python3
"""One-Class SVM: oddity against scikit-learn on the ODDS sets, like for like.

Both sides fit OneClassSVM(nu=0.1, kernel="rbf", gamma="scale", tol=1e-3) on the raw, unscaled
features of each CSV (label column last, excluded) and score the same training rows; the outlier
score is -decision_function (sklearn) and oddity's 0..1 score (a monotone map of its decision
function), so ROC-AUC and average precision are comparable directly.

oddity's side is read from score files: ``--ours DIR`` holds ``<dataset>.txt`` with one score per
line, in row order (higher = more anomalous), as written by any runner of
``OneClassSvm::fit_score`` (e.g. ``oddity eval tabular --detector one_class_svm`` once it writes
scores, or a scratch binary). Alternatively ``--oddity-json FILE`` takes the JSON report of
``oddity eval tabular --detector one_class_svm --json`` (ROC-AUC and AP only, no rank
correlation). Without either, only the sklearn side is printed.

Setup:  python3 -m venv /tmp/ocsvm-venv && /tmp/ocsvm-venv/bin/pip install scikit-learn numpy
Run:    /tmp/ocsvm-venv/bin/python bench/ocsvm_compare.py --data ../shared/data/odds --ours DIR [--json]
"""

import argparse
import json
import pathlib
import time

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.svm import OneClassSVM


def load(path):
    data = np.loadtxt(path, delimiter=",", skiprows=1)
    return data[:, :-1], data[:, -1].astype(int)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/odds", help="folder of ODDS CSVs")
    ap.add_argument("--ours", help="folder of oddity score files <dataset>.txt")
    ap.add_argument("--oddity-json", help="JSON report of `oddity eval tabular --detector one_class_svm --json`")
    ap.add_argument("--nu", type=float, default=0.1)
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    args = ap.parse_args()

    reported = {}
    if args.oddity_json:
        report = json.loads(pathlib.Path(args.oddity_json).read_text())
        for r in report.get("results", report if isinstance(report, list) else []):
            if r.get("detector") == "one_class_svm":
                reported[r["dataset"]] = r

    rows = []
    for path in sorted(pathlib.Path(args.data).glob("*.csv")):
        x, y = load(path)
        model = OneClassSVM(nu=args.nu, kernel="rbf", gamma="scale", tol=1e-3)
        t0 = time.perf_counter()
        model.fit(x)
        sk = -model.decision_function(x)
        sk_time = time.perf_counter() - t0
        row = {
            "dataset": path.stem,
            "rows": int(x.shape[0]),
            "dims": int(x.shape[1]),
            "sklearn_roc_auc": roc_auc_score(y, sk),
            "sklearn_ap": average_precision_score(y, sk),
            "sklearn_seconds": sk_time,
            "sklearn_support": int(model.support_.shape[0]),
        }
        if args.ours:
            f = pathlib.Path(args.ours) / f"{path.stem}.txt"
            if f.exists():
                ours = np.loadtxt(f)
                row["oddity_roc_auc"] = roc_auc_score(y, ours)
                row["oddity_ap"] = average_precision_score(y, ours)
                row["roc_auc_diff"] = row["oddity_roc_auc"] - row["sklearn_roc_auc"]
                # rank agreement of the two outlier scores
                rs = np.argsort(np.argsort(sk))
                ro = np.argsort(np.argsort(ours))
                row["spearman"] = float(np.corrcoef(rs, ro)[0, 1])
        if path.stem in reported:
            r = reported[path.stem]
            row["oddity_roc_auc"] = r["roc_auc"]
            row["oddity_ap"] = r["average_precision"]
            row["oddity_seconds"] = r["fit_secs"] + r["score_secs"]
            row["roc_auc_diff"] = row["oddity_roc_auc"] - row["sklearn_roc_auc"]
        rows.append(row)
        if not args.json:
            line = (f"{row['dataset']:<12} n={row['rows']:>6} d={row['dims']:>3}  "
                    f"sklearn auc {row['sklearn_roc_auc']:.4f} ap {row['sklearn_ap']:.4f} "
                    f"{row['sklearn_seconds']:7.2f}s")
            if "oddity_roc_auc" in row:
                line += (f" | oddity auc {row['oddity_roc_auc']:.4f} ap {row['oddity_ap']:.4f} "
                         f"diff {row['roc_auc_diff']:+.4f}")
                if "spearman" in row:
                    line += f" spearman {row['spearman']:.5f}"
                if "oddity_seconds" in row:
                    line += f" {row['oddity_seconds']:.2f}s"
            print(line, flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
