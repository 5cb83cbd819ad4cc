"""``fastnn demo``: the seed tutorials' experiments, with their figures."""

import os
import time

import numpy as np

from fastnn.cli._common import _check_backend, _progress, _say, _savefig, fmt_value, plural
from fastnn.cli.data import _load_mnist


def _composed_line(net):
    """Slope and intercept of a purely linear 1-input 1-output network."""
    w, b = np.eye(1), np.zeros(1)
    for lin in net.linears:
        w = w @ lin.W
        b = b @ lin.W + (lin.b if lin.bias else 0)
    return float(w[0, 0]), float(b[0])


def cmd_demo(args):
    import fastnn as fn
    from fastnn import datasets, plots

    backend = _check_backend(args.backend or ("auto" if args.name == "mnist" else "numpy"))
    seed, name = args.seed, args.name
    out = os.path.join(args.out, name)  # each demo its own folder: one never overwrites another's figures
    os.makedirs(out, exist_ok=True)
    cbs = _progress(args.quiet) if args.progress else []
    saved = []

    def save(fig, fname):
        saved.append(_savefig(fig, out, fname))

    t0 = time.perf_counter()
    if name == "linear":
        # Seed 000/001: restore y = 2x + 3 with a 1-2-1 linear network.
        X, Y = datasets.linear(1000)
        net = fn.Sequential(fn.Linear(1, 2), fn.Linear(2, 1), seed=seed)
        before = net.copy()
        hist = net.fit(X, Y, cost=fn.MSE(), optimizer=fn.SGD(0.01), epochs=args.epochs or 20,
                       batch_size=10, seed=seed, backend=backend, callbacks=cbs)
        w, b = _composed_line(net)
        _say(f"linear: the 1-2-1 linear network learned y = {w:.3f} x + {b:.3f}  (target: y = 2x + 3)")
        _say(f"loss: {fmt_value(hist['loss'][-1])}")
        save(plots.plot_fit(net, X, Y, before=before, title="restoring y = 2x + 3 with a 1-2-1 linear net"),
             "fit.png")
    elif name == "sine":
        # Seed 000: a linear network cannot fit 2 sin(x) + 5; one non-linearity can.
        X, Y = datasets.sine(1000)
        lin = fn.Sequential(fn.Linear(1, 2), fn.Linear(2, 1), seed=seed)
        tanh = fn.Sequential(fn.Linear(1, 16), fn.Tanh(), fn.Linear(16, 1), seed=seed)
        before = {"linear 1-2-1": lin.copy(), "tanh 1-16-1": tanh.copy()}
        epochs = args.epochs or 200
        kw = dict(cost=fn.MSE(), epochs=epochs, batch_size=50, seed=seed, backend=backend, callbacks=cbs)
        lin.fit(X, Y, optimizer=fn.Adam(0.01), **kw)
        hist = tanh.fit(X, Y, optimizer=fn.Adam(0.01), **kw)
        l_lin, l_tanh = lin.evaluate(X, Y, fn.MSE())["loss"], tanh.evaluate(X, Y, fn.MSE())["loss"]
        w, b = _composed_line(lin)
        _say(f"sine: the linear 1-2-1 network can only learn a line, y = {w:.3f} x + {b:.3f}: loss {fmt_value(l_lin)}")
        _say(f"sine: the 1-16-1 network with tanh follows y = 2 sin(x) + 5: loss {fmt_value(l_tanh)}")
        save(plots.plot_fit({"linear 1-2-1 (fails)": lin, "tanh 1-16-1": tanh}, X, Y, before=before,
                            title="y = 2 sin(x) + 5: a linear net fails, a tanh net fits"), "fit.png")
    elif name in ("circles", "xor"):
        if name == "circles":
            # Seed 003: a 2-3-2 network (logistic hidden layer, softmax output,
            # cross-entropy) trained by full-batch gradient descent with momentum.
            X, y = datasets.circles(400, noise=0.08, seed=seed)
            hidden, epochs, lr = 3, args.epochs or 300, 0.5
        else:
            X, y = datasets.xor()
            hidden, epochs, lr = 3, args.epochs or 500, 0.5
        net = fn.Sequential(fn.Linear(2, hidden), fn.Sigmoid(), fn.Linear(hidden, 2), seed=seed)
        hist = net.fit(X, y, cost=fn.CrossEntropy(), optimizer=fn.SGD(lr, momentum=0.9), epochs=epochs,
                       batch_size=len(X), seed=seed, backend=backend, callbacks=cbs)
        res = net.evaluate(X, y, fn.CrossEntropy())
        if name == "xor":
            pred = net.predict(X).argmax(axis=1)
            for xi, yi, pi in zip(X, y, pred):
                _say(f"xor {int(xi[0])} {int(xi[1])} -> {pi}  (target {yi})")
        _say(f"{name}: a 2-{hidden}-2 sigmoid network, {plural(epochs, 'epoch')} of gradient descent with momentum")
        _say(f"loss: {fmt_value(res['loss'])}")
        _say(f"accuracy: {fmt_value(res['accuracy'])}")
        save(plots.plot_decision_boundary(net, X, y), "boundary.png")
    else:  # mnist
        # Seed 002: a 784-50-10 sigmoid network, quadratic cost, minibatch SGD.
        Xtr, ytr, Xte, yte = _load_mnist(args.data_dir)
        net = fn.Sequential(fn.Linear(784, 50), fn.Sigmoid(), fn.Linear(50, 10), fn.Sigmoid(), seed=seed)
        epochs = args.epochs or 5
        hist = net.fit(Xtr, ytr, cost=fn.MSE(), optimizer=fn.SGD(3.0), epochs=epochs, batch_size=10,
                       seed=seed, validation_data=(Xte, yte), backend=backend, callbacks=cbs)
        for e, acc in zip(hist.epoch, hist["val_accuracy"]):
            _say(f"epoch {e + 1}: test accuracy {acc:.4f}")
        _say(f"accuracy: {hist['val_accuracy'][-1]:.4f}")
        save(plots.plot_weights(net, title="first-layer weights of the 50 hidden units"), "weights.png")
        save(plots.plot_confusion(net, Xte, yte), "confusion.png")
    save(plots.plot_history(hist, title=f"demo {name}"), "history.png")
    _say(f"done in {time.perf_counter() - t0:.1f} s; figures: {', '.join(saved)}")
    return 0
