"""The implementations fastnn is compared with: the plain array-module loop and PyTorch.

:func:`numpy_train` is the loop a user writes by hand, for NumPy on the CPU and (with
``xp=cupy``) for CuPy on the GPU; :class:`TorchRun` is the same network in PyTorch.
"""

import numpy as np

import fastnn as fn


def _act(xp, name, z):
    """The activation ``name`` of ``z`` with the array module ``xp`` (numpy or cupy)."""
    if name == "sigmoid":
        return 1.0 / (1.0 + xp.exp(-z))
    if name == "relu":
        return xp.maximum(z, 0)
    return z


def numpy_train(cfg, Ws, bs, X, targets, order, state=None, xp=np):
    """One pass of plain vectorised NumPy training over ``order`` (updates Ws, bs in place).

    This is the loop a user writes by hand (the baseline of the benchmark): per batch,
    a forward pass with matmuls, the output delta of the cost, a backward pass and the
    update of each layer. It computes no loss or accuracy (fastnn's ``fit`` does, so the
    comparison favours NumPy slightly).

    Parameters
    ----------
    cfg : Config
    Ws, bs : lists of ndarray
        Weights (in, out) and biases (out,), modified in place.
    X : ndarray (N, in)
    targets : ndarray
        One-hot (N, K) floats for MSE, int labels (N,) for cross-entropy.
    order : int64 ndarray
        Sample order; batch ``j`` is ``order[j*bs:(j+1)*bs]`` (the last may be short).
    state : dict, optional
        Optimizer state (velocities) carried between calls.
    xp : module, optional
        The array module: numpy (default), or cupy for the GPU benchmark's CuPy loop
        (:mod:`fastnn.bench.cuda`), with every array argument on the GPU.
    """
    L = len(Ws)
    bsz, lr, mu = cfg.batch_size, cfg.lr, cfg.momentum
    acts = [cfg.hidden] * (L - 1) + [cfg.output]
    if state is None:
        state = {}
    if cfg.optimizer == "momentum" and "vW" not in state:
        state["vW"] = [xp.zeros_like(W) for W in Ws]
        state["vb"] = [xp.zeros_like(b) for b in bs]
    vW, vb = state.get("vW"), state.get("vb")
    with np.errstate(over="ignore"):   # exp(-z) -> inf for very negative z gives sigmoid 0, fine
        for s in range(0, len(order), bsz):
            idx = order[s:s + bsz]
            m = len(idx)
            hs = [X[idx]]                                    # hs[i]: input of layer i, (m, in_i)
            for W, b, a in zip(Ws, bs, acts):
                hs.append(_act(xp, a, hs[-1] @ W + b))
            y = hs[-1]                                       # (m, K)
            if cfg.cost == "mse":                            # J = 1/(2m) sum ||y - t||^2
                d = (y - targets[idx]) / m
                if cfg.output == "sigmoid":
                    d *= y * (1 - y)
            else:                                            # softmax cross-entropy on scores y
                e = xp.exp(y - y.max(axis=1, keepdims=True))
                d = e / e.sum(axis=1, keepdims=True)
                d[xp.arange(m), targets[idx]] -= 1
                d /= m
            for i in range(L - 1, -1, -1):
                gW = hs[i].T @ d                             # (in_i, out_i)
                gb = d.sum(axis=0)
                if i > 0:                                    # uses W_i before its update
                    d = d @ Ws[i].T
                    if acts[i - 1] == "sigmoid":
                        d *= hs[i] * (1 - hs[i])
                    elif acts[i - 1] == "relu":
                        d *= hs[i] > 0
                if vW is None:
                    Ws[i] -= lr * gW
                    bs[i] -= lr * gb
                else:                                        # seed 003: v = mu v - lr g; p += v
                    vW[i] *= mu
                    vW[i] -= lr * gW
                    Ws[i] += vW[i]
                    vb[i] *= mu
                    vb[i] -= lr * gb
                    bs[i] += vb[i]
    return state


def numpy_targets(cfg, y, dtype):
    if cfg.cost == "mse":
        return fn.datasets.one_hot(y, cfg.sizes[-1], dtype=dtype)
    return y.astype(np.int64)


# -------------------------------------------------------------------------- torch


def import_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


class TorchRun:
    """The configuration as a ``torch.nn.Sequential`` of Linear layers with fastnn's weights."""

    def __init__(self, torch, cfg, Ws, bs, dtype):
        self.torch, self.cfg = torch, cfg
        tdt = torch.float64 if np.dtype(dtype) == np.float64 else torch.float32
        mods = []
        acts = [cfg.hidden] * (len(Ws) - 1) + [cfg.output]
        for W, b, a in zip(Ws, bs, acts):
            lin = torch.nn.Linear(W.shape[0], W.shape[1], dtype=tdt)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))   # torch: (out, in)
                lin.bias.copy_(torch.from_numpy(b))
            mods.append(lin)
            if a == "sigmoid":
                mods.append(torch.nn.Sigmoid())
            elif a == "relu":
                mods.append(torch.nn.ReLU())
        self.model = torch.nn.Sequential(*mods)
        self.linears = [m for m in mods if isinstance(m, torch.nn.Linear)]
        params = self.model.parameters()
        if cfg.optimizer == "adam":
            self.opt = torch.optim.Adam(params, lr=cfg.lr)
        else:
            # torch's v = mu v + g; p -= lr v equals seed 003's v = mu v - lr g; p += v for fixed lr.
            self.opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum)

    def train(self, X_t, T_t, order_t):
        torch, cfg = self.torch, self.cfg
        bsz, model, opt = cfg.batch_size, self.model, self.opt
        mse = cfg.cost == "mse"
        ce = torch.nn.functional.cross_entropy
        for s in range(0, len(order_t), bsz):
            idx = order_t[s:s + bsz]
            out = model(X_t[idx])
            if mse:
                loss = ((out - T_t[idx]) ** 2).sum() / (2 * len(idx))
            else:
                loss = ce(out, T_t[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    def predict(self, X_t):
        with self.torch.no_grad():
            return self.model(X_t).numpy()

    def arrays(self):
        Ws = [lin.weight.detach().numpy().T.copy() for lin in self.linears]
        bs = [lin.bias.detach().numpy().copy() for lin in self.linears]
        return Ws, bs
