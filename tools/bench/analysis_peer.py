#!/usr/bin/env python3
"""scikit-learn peer of tools/bench/analysis_bench.sh: the features of one slice of a run loaded in memory (zarr-python),
then one method; prints seconds (load included), peak RSS and the achieved objective.

  analysis_peer.py RUN.zarr SLICE pca|nmf|minibatch-nmf|gmm [MAX_ITER]

pca: PCA(15), objective = explained variance ratio (sum). nmf / minibatch-nmf: NMF(15, init="nndsvda", solver="cd") or
MiniBatchNMF(15, init="nndsvda") of the features shifted to their per-column minimum, objective = ½‖X − WH‖² per row.
gmm: GaussianMixture(4, "full", reg 1e-6, tol 1e-3) on the run's `nmf` coefficients, objective = mean log-likelihood.
"""
import resource, sys, time
import numpy as np
import zarr


def main(run, z, method, max_iter=None):
    z = int(z)
    t0 = time.perf_counter()
    labels = zarr.open_array(run + "/labels", mode="r")[z]
    mask = labels > 0
    if method == "gmm":
        X = zarr.open_array(run + "/nmf", mode="r")[:, z][:, mask].T.astype(np.float64)
        X = X[~np.isnan(X).any(axis=1)]
    else:
        X = zarr.open_array(run + "/features", mode="r")[:, z][:, mask].T.astype(np.float64)
    n = len(X)
    if method == "pca":
        from sklearn.decomposition import PCA
        p = PCA(n_components=15).fit(X)
        p.transform(X)
        obj = float(p.explained_variance_ratio_.sum())
    elif method in ("nmf", "minibatch-nmf"):
        from sklearn.decomposition import NMF, MiniBatchNMF
        Xs = np.maximum(X - X.min(axis=0), 0)
        del X
        m = (NMF(n_components=15, init="nndsvda", solver="cd", max_iter=int(max_iter or 200)) if method == "nmf"
             else MiniBatchNMF(n_components=15, init="nndsvda", max_iter=int(max_iter or 200), random_state=0))
        W = m.fit_transform(Xs)
        obj = 0.5 * float(np.sum((Xs - W @ m.components_) ** 2)) / n
    else:
        from sklearn.mixture import GaussianMixture
        g = GaussianMixture(n_components=4, covariance_type="full", reg_covar=1e-6, tol=1e-3, max_iter=100, random_state=0).fit(X)
        g.predict(X)
        obj = float(g.score(X))
    dt = time.perf_counter() - t0
    print(f"seconds {dt:.2f} peak_rss_mib {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} objective {obj:.6g} rows {n}")


if __name__ == "__main__":
    main(*sys.argv[1:5])
