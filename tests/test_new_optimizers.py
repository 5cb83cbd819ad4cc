"""RMSprop, Adagrad, Adadelta and AdamW against torch.optim, step by step, in float64 (to 1e-10).

Each update of the reference and of the numba kernels is compared with torch.optim on a flat
parameter vector after every one of 25 steps (weight decay on the leading "weights" only:
two torch parameter groups), then whole fits (numpy and numba backends) against torch.optim
steps on the same network and batches.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose

import fastnn as fn
from fastnn.kernels import cpu, reference as ref

STEP_RTOL = 1e-10
P, N_DECAY, STEPS = 40, 25, 25

#: name -> (fastnn optimizer, torch optimizer over param groups, {fastnn state: torch state})
CASES = {
    "rmsprop": (lambda: fn.RMSprop(0.01, alpha=0.9, eps=1e-8, weight_decay=0.05),
                lambda t, g: t.optim.RMSprop(g, lr=0.01, alpha=0.9, eps=1e-8), {"square_avg": "square_avg"}),
    "rmsprop-momentum": (lambda: fn.RMSprop(0.01, momentum=0.8),
                         lambda t, g: t.optim.RMSprop(g, lr=0.01, momentum=0.8),
                         {"square_avg": "square_avg", "momentum_buffer": "momentum_buffer"}),
    "rmsprop-centered": (lambda: fn.RMSprop(0.005, alpha=0.95, centered=True, weight_decay=0.1),
                         lambda t, g: t.optim.RMSprop(g, lr=0.005, alpha=0.95, centered=True),
                         {"square_avg": "square_avg", "grad_avg": "grad_avg"}),
    "rmsprop-centered-momentum": (lambda: fn.RMSprop(0.005, centered=True, momentum=0.5),
                                  lambda t, g: t.optim.RMSprop(g, lr=0.005, centered=True, momentum=0.5),
                                  {"square_avg": "square_avg", "grad_avg": "grad_avg",
                                   "momentum_buffer": "momentum_buffer"}),
    "adagrad": (lambda: fn.Adagrad(0.1, eps=1e-10, weight_decay=0.05),
                lambda t, g: t.optim.Adagrad(g, lr=0.1, eps=1e-10), {"state_sum": "sum"}),
    "adagrad-lr_decay-init": (lambda: fn.Adagrad(0.1, lr_decay=0.05, initial_accumulator_value=0.3),
                              lambda t, g: t.optim.Adagrad(g, lr=0.1, lr_decay=0.05, initial_accumulator_value=0.3),
                              {"state_sum": "sum"}),
    "adadelta": (lambda: fn.Adadelta(1.0, rho=0.9, eps=1e-6, weight_decay=0.05),
                 lambda t, g: t.optim.Adadelta(g, lr=1.0, rho=0.9, eps=1e-6),
                 {"square_avg": "square_avg", "acc_delta": "acc_delta"}),
    "adadelta-lr": (lambda: fn.Adadelta(0.5, rho=0.95),
                    lambda t, g: t.optim.Adadelta(g, lr=0.5, rho=0.95),
                    {"square_avg": "square_avg", "acc_delta": "acc_delta"}),
    "adamw": (lambda: fn.AdamW(0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1),
              lambda t, g: t.optim.AdamW(g, lr=0.01, betas=(0.9, 0.99), eps=1e-8),
              {"m": "exp_avg", "v": "exp_avg_sq"}),
    "adamw-default": (lambda: fn.AdamW(),
                      lambda t, g: t.optim.AdamW(g), {"m": "exp_avg", "v": "exp_avg_sq"}),
}


class _FlatNet:
    """The least an optimizer's step needs: flat params/grads and n_decay."""

    def __init__(self, params):
        self.params, self.grads, self.n_decay = params, np.zeros_like(params), N_DECAY


def _torch_groups(torch, p0, wd):
    w = torch.tensor(p0[:N_DECAY].copy(), dtype=torch.float64, requires_grad=True)
    b = torch.tensor(p0[N_DECAY:].copy(), dtype=torch.float64, requires_grad=True)
    return (w, b), [{"params": [w], "weight_decay": wd}, {"params": [b], "weight_decay": 0.0}]


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_each_step_matches_torch_optim(torch, case, backend):
    make, make_torch, states = CASES[case]
    rng = np.random.default_rng(3)
    p0 = rng.normal(size=P)
    opt = make()
    net = _FlatNet(p0.copy())
    (w, b), groups = _torch_groups(torch, p0, opt.weight_decay)
    topt = make_torch(torch, groups)
    for step in range(STEPS):
        g = rng.normal(size=P) * (1 + step % 3)
        net.grads[...] = g
        opt.step(net, backend)
        w.grad, b.grad = torch.tensor(g[:N_DECAY]), torch.tensor(g[N_DECAY:])
        topt.step()
        want = np.concatenate([w.detach().numpy(), b.detach().numpy()])
        assert_allclose(net.params, want, rtol=STEP_RTOL, atol=1e-13, err_msg=f"step {step + 1}")
    for ours, theirs in states.items():
        tv = np.concatenate([topt.state[w][theirs].numpy(), topt.state[b][theirs].numpy()])
        assert_allclose(getattr(opt, ours), tv, rtol=STEP_RTOL, atol=1e-13, err_msg=ours)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("case", list(CASES))
def test_cpu_named_updates_equal_the_reference(case, dt):
    """The generated cpu.*_update ops against reference.*_update, float32 and float64."""
    rng = np.random.default_rng(5)
    p0 = rng.normal(size=70000 if case == "adamw" else P).astype(dt)
    runs = {}
    for mod in (ref, cpu):
        o = CASES[case][0]()
        net = _FlatNet(p0.copy())
        net.n_decay = len(p0) // 2
        o.ensure_setup(net)
        grads = np.random.default_rng(9)
        for _ in range(4):
            net.grads[...] = grads.normal(size=len(p0))
            o.t += 1
            o._update(mod, net.params, net.grads, net.n_decay)
        runs[mod.__name__] = (net.params, [getattr(o, s) for s in o.state_names()])
    (pr, sr), (pc, sc) = runs.values()
    tol = dict(rtol=1e-10, atol=1e-12) if dt == np.float64 else dict(rtol=2e-5, atol=2e-6)
    assert_allclose(pc, pr, **tol)
    for a, b in zip(sc, sr):
        assert_allclose(a, b, **tol)


@pytest.mark.parametrize("case", ["rmsprop-centered-momentum", "adagrad-lr_decay-init", "adadelta", "adamw"])
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_fit_matches_torch_training(torch, case, backend):
    """Whole fits (no shuffle, short last batch): a network with biases on every layer, so that
    torch's decay on biases is switched off through a second parameter group."""
    make, make_torch, _ = CASES[case]
    rng = np.random.default_rng(11)
    X, y = rng.normal(size=(11, 3)), rng.integers(0, 3, 11)
    net = fn.Sequential(fn.Linear(3, 6), fn.Tanh(), fn.Linear(6, 3), seed=2, dtype=np.float64)
    module = net.to_torch()
    opt = make()
    weights = [m.weight for m in module if isinstance(m, torch.nn.Linear)]
    biases = [m.bias for m in module if isinstance(m, torch.nn.Linear)]
    topt = make_torch(torch, [{"params": weights, "weight_decay": opt.weight_decay},
                              {"params": biases, "weight_decay": 0.0}])
    bs, epochs = 4, 6
    net.fit(X, y, fn.CrossEntropy(), opt, epochs=epochs, batch_size=bs, shuffle=False, backend=backend)
    for _ in range(epochs):
        for s in range(0, len(X), bs):
            topt.zero_grad()
            out = module(torch.tensor(X[s:s + bs]))
            torch.nn.functional.cross_entropy(out, torch.tensor(y[s:s + bs])).backward()
            topt.step()
    assert_allclose(net.params, fn.from_torch(module).params, rtol=1e-9, atol=1e-12)


def test_hyper_parameters_are_checked():
    for bad in (lambda: fn.RMSprop(0.01, alpha=1.0), lambda: fn.RMSprop(0.01, momentum=-0.1),
                lambda: fn.Adagrad(0.01, eps=0), lambda: fn.Adadelta(rho=1.5), lambda: fn.AdamW(betas=(0.9,)),
                lambda: fn.AdamW(betas=(0.9, 1.0)), lambda: fn.Adagrad(-1.0)):
        with pytest.raises(ValueError):
            bad()
    opt = fn.RMSprop(0.01)
    opt.alpha = 2.0
    with pytest.raises(ValueError, match="alpha"):
        opt.check()


def test_names_and_configs():
    for name, cls in [("rmsprop", fn.RMSprop), ("adagrad", fn.Adagrad), ("adadelta", fn.Adadelta),
                      ("adamw", fn.AdamW)]:
        opt = fn.optimizers.get_optimizer(name)
        assert type(opt) is cls
        cfg = opt.config()
        assert cfg.pop("type") == cls.__name__
        assert cls(**cfg).config() == opt.config()  # round trip
    assert fn.AdamW().weight_decay == 0.01 and fn.AdamW().betas == (0.9, 0.999)
    assert fn.RMSprop(centered=True).kind == "centered_rmsprop"
    assert fn.RMSprop(momentum=0.5, centered=True).state_names() == ("square_avg", "grad_avg", "momentum_buffer")


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["momentum", "nesterov", "adam", "adamw"])
def test_subnormal_state_is_flushed_on_every_cpu_backend(dt, kind):
    """Momentum's velocity and Adam's moments that decay below the smallest normal number
    are stored as 0 by the reference and the numba kernels alike (subnormal arithmetic is
    20-100x slower on x86); NaN is kept, so divergence still shows."""
    rng = np.random.default_rng(0)
    tiny = np.finfo(dt).tiny
    n = 300
    p, g = rng.normal(size=n).astype(dt), rng.normal(size=n).astype(dt)
    s1, s2 = (rng.normal(size=n) * 0.1).astype(dt), (rng.random(n) * 0.1).astype(dt)
    g[:40] = 0
    s1[:20], s1[20:40], s2[:20] = dt(tiny * 0.5), dt(tiny * 1e3), dt(tiny * 0.5)
    s1[40] = np.nan
    got, want = [a.copy() for a in (p, s1, s2)], [a.copy() for a in (p, s1, s2)]
    for mod, (pp, a, b) in ((ref, want), (cpu, got)):
        if kind in ("adam", "adamw"):
            wd = 0.01 if kind == "adamw" else 0.0   # AdamW's decay is decoupled: g stays 0
            getattr(mod, kind + "_update")(pp, g, a, b, 3, 1e-3, 0.9, 0.999, 1e-8, wd, 100)
        else:
            getattr(mod, kind + "_update")(pp, g, a, 0.1, 0.9, 0.0, 0)
    for a in (got, want):
        assert np.all(a[1][:20] == 0) and np.all(a[1][20:40] != 0) and np.isnan(a[1][40])
        if kind in ("adam", "adamw"):
            assert np.all(a[2][:20] == 0)
    for x, y in zip(got, want):
        assert_allclose(x, y, rtol=1e-6 if dt == np.float32 else 1e-12, atol=0)

