"""One library's bag-of-words run, in a fresh interpreter (``python -m fastnn.bench.bowrun``).

:mod:`fastnn.bench.bow` starts one such process per library so that each one's peak memory is
its own. The process loads the data the parent saved (``scipy.sparse.save_npz``), sets the
threads, builds the model and warms it up on two batches, then:

* **memory**: runs ``gc.collect()``, reads ``VmRSS`` (``/proc/self/status``), resets the peak
  (``VmHWM``) by writing ``5`` to ``/proc/self/clear_refs``, and after the fit reads ``VmHWM``
  again: ``peak_growth_mb`` = peak RSS during the fit minus the RSS before it. (``ru_maxrss``
  cannot be reset and, in a child, can start at the parent's peak; it is recorded as a fallback
  where ``/proc`` is missing.) An address-space cap (``RLIMIT_AS`` = the size before the fit
  plus ``mem_cap_gb``) keeps a library that densifies the matrix from exhausting the machine:
  it gets a ``MemoryError``, reported as such.
* **time**: wall time of the training call (all epochs), then test accuracy (not timed).

Libraries: ``fastnn`` (``Sequential.fit`` on the CSR matrix), ``fastnn-sklearn`` (``fastnn.sklearn.MLPClassifier``), ``sklearn``
(``sklearn.neural_network.MLPClassifier``) and ``torch`` (first layer ``torch.sparse.mm`` of a
CSR batch, :class:`TorchSparseRun`). fastnn and PyTorch start from the same weights (drawn by
the fastnn network) and use the same sample orders; the estimators draw their own.
"""

import gc
import json
import os
import resource
import sys
import time
import warnings

import numpy as np

MARK = "BOWRESULT"


def _status_kb(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class TorchSparseRun:
    """The bag-of-words MLP in PyTorch: ``relu(torch.sparse.mm(X_batch, W1) + b1)``, then
    ``torch.nn.Linear`` layers; ``torch.optim.Adam``; fastnn's weights (W1 is (in, out))."""

    def __init__(self, torch, cfg, Ws, bs, dtype):
        self.torch, self.cfg = torch, cfg
        tdt = torch.float64 if np.dtype(dtype) == np.float64 else torch.float32
        self.dtype = np.dtype(dtype)
        self.W1 = torch.nn.Parameter(torch.tensor(np.asarray(Ws[0], dtype=dtype)))
        self.b1 = torch.nn.Parameter(torch.tensor(np.asarray(bs[0], dtype=dtype)))
        self.rest = []
        for W, b in zip(Ws[1:], bs[1:]):
            lin = torch.nn.Linear(W.shape[0], W.shape[1], dtype=tdt)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T, dtype=dtype)))
                lin.bias.copy_(torch.from_numpy(np.asarray(b, dtype=dtype)))
            self.rest.append(lin)
        params = [self.W1, self.b1] + [p for lin in self.rest for p in lin.parameters()]
        self.opt = torch.optim.Adam(params, lr=cfg.lr)

    def _csr(self, X):
        t = self.torch
        return t.sparse_csr_tensor(t.from_numpy(X.indptr), t.from_numpy(X.indices),
                                   t.from_numpy(X.data.astype(self.dtype, copy=False)), size=X.shape)

    def _forward(self, xb):
        t = self.torch
        h = t.sparse.mm(xb, self.W1) + self.b1
        for lin in self.rest:
            h = lin(t.relu(h) if self.cfg.hidden == "relu" else t.sigmoid(h))
        return h

    def train(self, X, y_t, order):
        """One pass over ``order``: per batch, the CSR rows (scipy) as a torch CSR tensor."""
        ce = self.torch.nn.functional.cross_entropy
        bsz = self.cfg.batch_size
        for s in range(0, len(order), bsz):
            idx = order[s:s + bsz]
            loss = ce(self._forward(self._csr(X[idx])), y_t[idx])
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()

    def predict(self, X, chunk=4096):
        with self.torch.no_grad():
            return np.concatenate([self._forward(self._csr(X[s:s + chunk])).numpy()
                                   for s in range(0, X.shape[0], chunk)])

    def arrays(self):
        Ws = [self.W1.detach().numpy().copy()] + [lin.weight.detach().numpy().T.copy() for lin in self.rest]
        bs = [self.b1.detach().numpy().copy()] + [lin.bias.detach().numpy().copy() for lin in self.rest]
        return Ws, bs


def epoch_orders(seed, n, epochs):
    """The orders of ``Sequential.fit(..., seed=seed, epochs=epochs)``: successive permutations."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(n).astype(np.int64) for _ in range(epochs)]


def _estimator(lib, spec, seed, backend, epochs):
    kw = dict(hidden_layer_sizes=(spec["hidden"],), activation="relu", solver="adam", alpha=0.0,
              batch_size=spec["batch_size"], learning_rate_init=spec["lr"], max_iter=epochs,
              shuffle=True, random_state=seed, tol=0.0, n_iter_no_change=epochs + 1,
              early_stopping=False)
    if lib == "sklearn":
        from sklearn.neural_network import MLPClassifier
    else:
        from fastnn.sklearn import MLPClassifier

        kw["backend"] = backend
    return MLPClassifier(**kw)


def _trainer(lib, spec, cfg, data, seed, backend, torch):
    """(train(epochs, n_rows) -> model, predict(model, X))` for ``lib``."""
    from fastnn.bench.configs import make_cost, make_net, make_optimizer, net_arrays

    X, y = data
    if lib == "fastnn":
        def train(epochs, m):
            net = make_net(cfg, seed)
            Xs, ys = (X, y) if m == X.shape[0] else (X[:m], y[:m])
            net.fit(Xs, ys, make_cost(cfg), make_optimizer(cfg), epochs=epochs,
                    batch_size=cfg.batch_size, seed=seed, backend=backend)
            return net
        return train, lambda net, Xt: net.predict(Xt, backend=backend).argmax(axis=1)
    if lib == "torch":
        base = make_net(cfg, seed)
        y_t = torch.from_numpy(y)

        def train(epochs, m):
            tr = TorchSparseRun(torch, cfg, *net_arrays(base), np.float32)
            for order in epoch_orders(seed, m, epochs):
                tr.train(X, y_t, order)
            return tr
        return train, lambda tr, Xt: tr.predict(Xt).argmax(axis=1)

    def train(epochs, m):
        est = _estimator(lib, spec, seed, backend, epochs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")      # ConvergenceWarning after max_iter epochs
            est.fit(X if m == X.shape[0] else X[:m], y if m == X.shape[0] else y[:m])
        return est
    return train, lambda est, Xt: est.predict(Xt)


def run_one(lib, datadir, settings):
    """Train ``lib`` on the saved data; returns the record (status, seconds, accuracy, memory)."""
    import scipy.sparse as sp

    from fastnn.bench.bow import bow_config
    from fastnn.bench.cli import thread_settings

    spec, seed, backend = settings["spec"], settings["seed"], settings["backend"]
    X = sp.load_npz(os.path.join(datadir, "X_train.npz")).tocsr()
    X_test = sp.load_npz(os.path.join(datadir, "X_test.npz")).tocsr()
    y = np.load(os.path.join(datadir, "y_train.npy"))
    y_test = np.load(os.path.join(datadir, "y_test.npy"))
    cfg = bow_config(spec)
    torch = None
    if lib == "torch":
        import torch
    warnings.filterwarnings("ignore", message=".*[Ss]parse.*")   # torch's beta/invariant notes
    rec = {"library": lib, "status": "ok"}
    with thread_settings(settings["threads"], torch) as got:
        rec["threads"] = got
        train, predict = _trainer(lib, spec, cfg, (X, y), seed, backend, torch)
        train(1, min(X.shape[0], 2 * cfg.batch_size))                      # warm-up (JIT, caches)
        gc.collect()
        rss0 = _status_kb("VmRSS")
        maxrss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rec["hwm_reset"] = _reset_peak()
        cap = settings.get("mem_cap_gb")
        vm = _status_kb("VmSize")
        if cap and vm is not None:
            limit = vm * 1024 + int(cap * 2 ** 30)
            resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
            rec["address_space_cap_gb"] = cap
        try:
            t0 = time.perf_counter()
            model = train(spec["epochs"], X.shape[0])
            rec["train_s"] = time.perf_counter() - t0
        except MemoryError:
            rec.update(status="memory cap", reason=f"MemoryError: the fit needed more than the "
                       f"{cap:g} GB address-space cap (does it densify the CSR matrix?)")
            return rec
        hwm = _status_kb("VmHWM")
        maxrss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rec["rss_before_mb"] = rss0 / 1024 if rss0 is not None else None
        if rec["hwm_reset"] and hwm is not None and rss0 is not None:
            rec["peak_growth_mb"] = (hwm - rss0) / 1024
            rec["memory_method"] = "VmHWM after the fit (reset before it) minus VmRSS before it"
        else:
            rec["peak_growth_mb"] = max(0, maxrss1 - maxrss0) / 1024
            rec["memory_method"] = ("ru_maxrss after minus before the fit (a lower bound: 0 when the "
                                    "fit stayed under an earlier peak)")
        try:
            rec["test_accuracy"] = float(np.mean(predict(model, X_test) == y_test))
        except ValueError as exc:
            rec["test_accuracy"] = None
            rec["predict_error"] = str(exc)
    return rec


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    lib, datadir, settings = argv[0], argv[1], json.loads(argv[2])
    try:
        rec = run_one(lib, datadir, settings)
    except Exception as exc:   # reported in the table, not a crash of the whole benchmark
        rec = {"library": lib, "status": "error", "reason": f"{type(exc).__name__}: {exc}"}
    print(MARK + json.dumps(rec), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
