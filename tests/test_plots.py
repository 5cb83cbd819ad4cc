"""fastnn.plots: each function returns a Figure that renders headless to PNG."""

import io as _io

import numpy as np
import pytest
from matplotlib.figure import Figure

import fastnn as fn
from fastnn import plots

PNG = b"\x89PNG\r\n\x1a\n"


def png_bytes(fig):
    buf = _io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def lines_of(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def test_plot_fit_before_and_after():
    X, Y = fn.datasets.linear(50)
    net = fn.Sequential(fn.Linear(1, 2), fn.Linear(2, 1), seed=0)
    before = net.copy()
    net.params[:] += 1
    fig = plots.plot_fit(net, X, Y, before=before, title="t")
    assert isinstance(fig, Figure)
    ax0, ax1 = fig.axes
    assert ax0.get_title() == "before training" and ax1.get_title() == "after training"
    after = lines_of(ax1)["network"].get_ydata()
    np.testing.assert_allclose(after, net.predict(X)[:, 0], rtol=1e-6)
    np.testing.assert_allclose(lines_of(ax0)["network"].get_ydata(), before.predict(X)[:, 0], rtol=1e-6)
    np.testing.assert_allclose(lines_of(ax1)["target"].get_ydata(), Y[:, 0])
    assert png_bytes(fig).startswith(PNG)


def test_plot_fit_several_nets_and_arrays():
    X, Y = fn.datasets.sine(30)
    a = fn.Sequential(fn.Linear(1, 2), fn.Linear(2, 1), seed=0)
    fig = plots.plot_fit({"a": a, "zeros": np.zeros(30)}, X[:, 0], Y)
    assert len(fig.axes) == 1
    assert set(lines_of(fig.axes[0])) == {"target", "a", "zeros"}
    with pytest.raises(ValueError, match="one input feature"):
        plots.plot_fit(a, np.zeros((5, 2)), np.zeros(5))
    with pytest.raises(ValueError, match="predictions"):
        plots.plot_fit(np.zeros(3), X, Y)


def test_plot_decision_boundary():
    X, y = fn.datasets.xor()
    net = fn.Sequential(fn.Linear(2, 3), fn.Tanh(), fn.Linear(3, 2), seed=0)
    fig = plots.plot_decision_boundary(net, X, y, resolution=40)
    ax = fig.axes[0]
    acc = np.mean(net.predict(X).argmax(axis=1) == y)
    assert f"{acc:.3f}" in ax.get_title()
    assert len(ax.collections) >= 2  # filled zones + the samples
    assert png_bytes(fig).startswith(PNG)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        plots.plot_decision_boundary(fn.Sequential(fn.Linear(3, 2)), np.zeros((4, 3)), y)


def test_plot_history_train_and_validation():
    X, y = fn.datasets.circles(60, seed=0)
    net = fn.Sequential(fn.Linear(2, 4), fn.Tanh(), fn.Linear(4, 2), seed=0)
    hist = net.fit(X[:40], y[:40], cost="ce", optimizer=fn.SGD(0.1), epochs=4, batch_size=8, seed=0,
                   validation_data=(X[40:], y[40:]))
    fig = plots.plot_history(hist)
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss", "accuracy"]
    loss = lines_of(fig.axes[0])
    np.testing.assert_allclose(loss["train"].get_ydata(), hist["loss"])
    np.testing.assert_allclose(loss["validation"].get_ydata(), hist["val_loss"])
    np.testing.assert_array_equal(loss["train"].get_xdata(), [1, 2, 3, 4])
    regression = plots.plot_history({"loss": [3.0, 2.0, 1.0]})
    assert len(regression.axes) == 1
    with pytest.raises(ValueError, match="History"):
        plots.plot_history({"accuracy": [0.5]})


def test_plot_weights():
    net = fn.Sequential(fn.Linear(16, 5), fn.Sigmoid(), fn.Linear(5, 3), seed=0)
    fig = plots.plot_weights(net)
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 5
    np.testing.assert_allclose(images[2].get_array(), net.layers[0].W[:, 2].reshape(4, 4), rtol=1e-6)
    assert len([ax for ax in plots.plot_weights(net, max_units=2).axes if ax.images]) == 2
    assert plots.plot_weights(net, layer=1, shape=(5, 1)).axes
    with pytest.raises(ValueError, match="square"):
        plots.plot_weights(fn.Sequential(fn.Linear(6, 2)))
    with pytest.raises(ValueError, match="layer"):
        plots.plot_weights(net, layer=2)


def test_confusion_matrix_and_plot():
    C = plots.confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    np.testing.assert_array_equal(C, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    X = np.eye(3, dtype=np.float32)
    net = fn.Sequential(fn.Linear(3, 3, bias=False), seed=0)
    net.layers[0].W[...] = np.eye(3)[[0, 2, 1]]  # predicts 0, 2, 1
    fig = plots.plot_confusion(net, X, np.array([0, 1, 2]), class_names=["a", "b", "c"])
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), [[1, 0, 0], [0, 0, 1], [0, 1, 0]])
    assert "0.3333" in ax.get_title()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert png_bytes(plots.plot_confusion(net, X, np.eye(3), normalize=True)).startswith(PNG)


def test_figures_are_not_kept_by_pyplot():
    """Figures are built without pyplot: nothing to close, nothing leaks in long sessions."""
    plt = pytest.importorskip("matplotlib.pyplot", reason="matplotlib is a core dependency")
    before = plt.get_fignums()
    plots.plot_history({"loss": [1.0, 0.5]})
    assert plt.get_fignums() == before
