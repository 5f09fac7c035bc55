#!/usr/bin/env python3
"""scikit-learn's classification metrics for `evaluate`'s test: reads {"true": [...], "pred": [...]} (ids 1..6),
prints accuracy, per-class precision/recall/F1 (zero_division=0), macro F1 and the confusion matrix as JSON.
With {"scores": [...], "positive": [...]} instead (the anomaly map's test): prints {"roc_auc": roc_auc_score}.

  sklearn_metrics.py Y.json
"""
import json, sys
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support, roc_auc_score

y = json.load(open(sys.argv[1]))
if "scores" in y:
    print(json.dumps({"roc_auc": roc_auc_score(y["positive"], y["scores"])}))
    sys.exit(0)
t, p, labels = y["true"], y["pred"], [1, 2, 3, 4, 5, 6]
prec, rec, f1, _ = precision_recall_fscore_support(t, p, labels=labels, zero_division=0)
seen = sorted(set(t) | set(p))
print(json.dumps({"accuracy": accuracy_score(t, p), "precision": prec.tolist(), "recall": rec.tolist(), "f1": f1.tolist(),
                  "macro_f1": f1_score(t, p, labels=seen, average="macro", zero_division=0),
                  "confusion": confusion_matrix(t, p, labels=labels).tolist()}))
