#!/usr/bin/env python3
"""scikit-learn / scipy references for the analysis tests. Reads a JSON request, prints a JSON answer.

  sklearn_analysis.py REQUEST.json

Request: {"task": "pca"|"nmf"|"gmm"|"metrics", "X": [[...], ...], ...}
- pca: k → components, explained_variance, explained_variance_ratio, mean
- nmf: k, W0, H0 → objective (½‖X − WH‖²) of NMF(init="custom", solver="cd") from (W0, H0), n_iter
- nmf-nndsvda: k → objective of NMF(init="nndsvda", solver="cd") on X shifted to its per-column minimum
- nnls: H, X → W, each row by scipy.optimize.nnls
- gmm: weights, means, covariances (optional covariance_type "diag": covariances are then k × d variances) →
  fitted weights, means, score (mean log-likelihood), lower_bound, n_iter, predict, from
  GaussianMixture(covariance_type="full" or "diag", reg_covar=1e-6, tol=1e-3, max_iter=100) with that init
- metrics: truth, pred, (X, labels for silhouette), p/q pairs (JS), cost (linear_sum_assignment)
- smooth: planes (c × H × W), support (H × W, 0/1), sigma → the normalised Gaussian mean
  gaussian_filter(x·m) / gaussian_filter(m) per channel (scipy.ndimage, mode "constant", truncate 4); sigma may be
  [σy, σx]; -1 where no support is in reach
- smooth-oriented: planes, support, sigma_along, sigma_across, along [uy, ux] → the same normalised mean under
  a 1-D Gaussian (weights as gaussian_filter's) sampled along u at k·u, then one along u's normal, each sample
  interpolated bilinearly (scipy.ndimage.map_coordinates, order 1, zeros beyond the window: "grid-constant")
- cluster-scores: clusters (a run's cluster array), rois (integer ids at the source's or the run's grid), stride,
  slices → ARI and homogeneity/completeness/V-measure over pixels with a cluster and an ROI, read with zarr-python
- cluster-principal: run, on (the clustered array), slices, k (principal components), result (the cluster step's
  JSON), clusters (its array) → scikit-learn's PCA (svd_solver "full") of the input at the clustered pixels (mean,
  components, explained_variance), and the fraction of those pixels whose written cluster is the one
  GaussianMixture.predict gives with the result's weights, means and covariances on scikit-learn's projection
"""
import json, sys
import numpy as np


def main(path):
    r = json.load(open(path))
    t = r["task"]
    out = {}
    if t == "pca":
        from sklearn.decomposition import PCA
        X = np.array(r["X"])
        p = PCA(n_components=r["k"], svd_solver="full").fit(X)
        out = {"components": p.components_.tolist(), "explained_variance": p.explained_variance_.tolist(),
               "explained_variance_ratio": p.explained_variance_ratio_.tolist(), "mean": p.mean_.tolist()}
    elif t == "nmf":
        from sklearn.decomposition import NMF
        X = np.array(r["X"])
        m = NMF(n_components=r["k"], init="custom", solver="cd", max_iter=r.get("max_iter", 200), tol=r.get("tol", 1e-4))
        W = m.fit_transform(X, W=np.array(r["W0"]), H=np.array(r["H0"]))
        out = {"objective": 0.5 * float(np.sum((X - W @ m.components_) ** 2)), "n_iter": int(m.n_iter_)}
    elif t == "nmf-nndsvda":
        from sklearn.decomposition import NMF
        X = np.array(r["X"])
        X = np.maximum(X - X.min(axis=0), 0)
        m = NMF(n_components=r["k"], init="nndsvda", solver="cd", max_iter=200, tol=1e-4)
        W = m.fit_transform(X)
        out = {"objective": 0.5 * float(np.sum((X - W @ m.components_) ** 2))}
    elif t == "nnls":
        from scipy.optimize import nnls
        H = np.array(r["H"])
        out = {"W": [nnls(H.T, np.array(x))[0].tolist() for x in r["X"]]}
    elif t == "gmm":
        from sklearn.mixture import GaussianMixture
        X = np.array(r["X"])
        covs = np.array(r["covariances"])
        cov_type = r.get("covariance_type", "full")
        prec = 1 / covs if cov_type == "diag" else np.array([np.linalg.inv(c) for c in covs])
        g = GaussianMixture(n_components=len(r["weights"]), covariance_type=cov_type, reg_covar=1e-6, tol=1e-3, max_iter=100,
                            weights_init=r["weights"], means_init=r["means"], precisions_init=prec).fit(X)
        out = {"weights": g.weights_.tolist(), "means": g.means_.tolist(), "score": float(g.score(X)),
               "lower_bound": float(g.lower_bound_), "n_iter": int(g.n_iter_), "predict": g.predict(X).tolist()}
    elif t == "metrics":
        from sklearn import metrics
        from scipy.spatial.distance import jensenshannon
        from scipy.optimize import linear_sum_assignment
        h, c, v = metrics.homogeneity_completeness_v_measure(r["truth"], r["pred"])
        out = {"ari": metrics.adjusted_rand_score(r["truth"], r["pred"]), "homogeneity": h, "completeness": c, "v": v,
               "silhouette": float(metrics.silhouette_score(np.array(r["X"]), r["labels"])),
               "js": [float(jensenshannon(p, q)) for p, q in r["pairs"]],
               "assignment": linear_sum_assignment(np.array(r["cost"]))[1].tolist()}
    elif t == "smooth":
        from scipy.ndimage import gaussian_filter
        x, m, s = np.array(r["planes"], dtype=float), np.array(r["support"], dtype=float), r["sigma"]
        den = gaussian_filter(m, s, mode="constant", cval=0.0, truncate=4.0)
        num = np.stack([gaussian_filter(c * m, s, mode="constant", cval=0.0, truncate=4.0) for c in x])
        out = {"smoothed": np.nan_to_num(num / np.where(den > 0, den, np.nan), nan=-1.0).tolist()}   # -1: no support in reach (JSON has no NaN)
    elif t == "smooth-oriented":
        out = {"smoothed": np.nan_to_num(smooth_oriented(np.array(r["planes"], dtype=float), np.array(r["support"], dtype=float),
                                           r["sigma_along"], r["sigma_across"], r["along"]), nan=-1.0).tolist()}
    elif t == "cluster-scores":
        out = cluster_scores(r["clusters"], r["rois"], r["stride"], r["slices"])
    elif t == "cluster-principal":
        out = cluster_principal(r["run"], r["on"], r["slices"], r["k"], r["result"], r["clusters"])
    print(json.dumps(out))


def smooth_oriented(x, m, s_along, s_across, u):
    """Σ w·m·x / Σ w·m for two 1-D Gaussians along u and along its normal, on interpolated lines."""
    from scipy.ndimage import map_coordinates
    H, W = m.shape
    yy, xx = np.mgrid[0:H, 0:W].astype(float)
    def line(f, sigma, d):
        r = int(4 * sigma + 0.5)
        k = np.arange(-r, r + 1)
        w = np.exp(-0.5 * k ** 2 / sigma ** 2); w /= w.sum()
        return sum(wi * map_coordinates(f, [yy + ki * d[0], xx + ki * d[1]], order=1, mode="grid-constant", cval=0.0)
                   for wi, ki in zip(w, k))
    n = (-u[1], u[0])
    den = line(line(m, s_along, u), s_across, n)
    num = [line(line(c * m, s_along, u), s_across, n) for c in x]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.stack([c / np.where(den > 0, den, np.nan) for c in num])


def cluster_scores(clusters, rois, stride, slices):
    """ARI and V-measure of a run's cluster array against integer ROIs, as scikit-learn computes them."""
    import zarr
    from sklearn import metrics
    c = zarr.open(clusters, mode="r")
    c = c if hasattr(c, "shape") else c["0"]   # a run's output is an image group (level 0 at NAME/0); older runs: an array
    g = zarr.open(rois, mode="r")
    a = g if hasattr(g, "shape") else g["0"]
    s = 1 if tuple(a.shape) == tuple(c.shape) else stride
    truth, pred = [], []
    for z in slices:
        cz = np.asarray(c[z])
        rz = np.asarray(a[z])[::s, ::s][: cz.shape[0], : cz.shape[1]]
        keep = (cz != 0) & (rz != 0)
        truth.append(rz[keep].astype(np.int64)); pred.append(cz[keep].astype(np.int64))
    truth, pred = np.concatenate(truth), np.concatenate(pred)
    h, comp, v = metrics.homogeneity_completeness_v_measure(truth, pred)
    return {"ari": metrics.adjusted_rand_score(truth, pred), "homogeneity": h, "completeness": comp, "v": v, "pixels": int(truth.size)}


def cluster_principal(run, on, slices, k, result, clusters):
    """PCA of a run's input at the pixels a cluster step clustered, and that step's assignments redone from it."""
    import zarr
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture
    def level0(p):
        g = zarr.open(p, mode="r")
        return g if hasattr(g, "shape") else g["0"]
    x, c = level0(run + "/" + on), level0(clusters)
    rows, assigned = [], []
    for z in slices:
        cz = np.asarray(c[z])
        keep = cz != 0
        rows.append(np.asarray(x[:, z]).astype(np.float64)[:, keep].T); assigned.append(cz[keep].astype(np.int64) - 1)
    X, assigned = np.concatenate(rows), np.concatenate(assigned)
    p = PCA(n_components=k, svd_solver="full").fit(X)
    doc = json.load(open(result))
    w = np.array(doc["weights"]); kk = len(w)
    g = GaussianMixture(kk, covariance_type="full")
    g.weights_ = w; g.means_ = np.array(doc["means"]).reshape(kk, k)
    g.covariances_ = np.array(doc["covariances"]).reshape(kk, k, k)
    g.precisions_cholesky_ = np.array([np.linalg.inv(np.linalg.cholesky(cv)).T for cv in g.covariances_])
    pred = g.predict(p.transform(X))
    return {"mean": p.mean_.tolist(), "components": p.components_.tolist(), "explained_variance": p.explained_variance_.tolist(),
            "agreement": float(np.mean(pred == assigned)), "pixels": int(len(X))}


if __name__ == "__main__":
    main(sys.argv[1])
