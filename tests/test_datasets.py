"""Tests for fastnn.datasets: toy problems, one_hot, and the MNIST loader.

Only test_load_mnist_real_files reads the real MNIST files; every other MNIST
test writes small IDX files of its own into tmp_path and never touches the
network (urlopen is patched for the whole module).
"""

import gzip
import hashlib
import io
import os
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import skip_or_fail
from fastnn import datasets

ROOT = Path(__file__).resolve().parents[1]
NAMES = list(datasets.MNIST_FILES)
TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


# ---------------------------------------------------------------------------
# linear, sine
# ---------------------------------------------------------------------------

def test_linear_shapes_and_values():
    X, Y = datasets.linear()
    assert X.shape == (1000, 1) and Y.shape == (1000, 1)
    assert X.dtype == np.float32 and Y.dtype == np.float32
    assert X[0, 0] == -3.0 and X[-1, 0] == 3.0
    assert np.all(np.diff(X[:, 0]) > 0)
    np.testing.assert_allclose(Y, 2 * X + 3, rtol=0, atol=1e-6)
    np.testing.assert_allclose(X[:, 0], np.linspace(-3, 3, 1000), atol=1e-6)


def test_linear_small_float64():
    X, Y = datasets.linear(n=5, dtype=np.float64)
    assert X.dtype == np.float64 and Y.dtype == np.float64
    np.testing.assert_array_equal(X[:, 0], [-3.0, -1.5, 0.0, 1.5, 3.0])
    np.testing.assert_array_equal(Y[:, 0], [-3.0, 0.0, 3.0, 6.0, 9.0])


def test_sine_shapes_and_values():
    X, Y = datasets.sine(n=101)
    assert X.shape == (101, 1) and Y.shape == (101, 1)
    assert Y.dtype == np.float32
    np.testing.assert_allclose(Y[:, 0], 2 * np.sin(np.linspace(-3, 3, 101)) + 5, atol=1e-5)
    assert Y[50, 0] == pytest.approx(5.0)          # x = 0
    assert 3.0 <= Y.min() and Y.max() <= 7.0
    # the targets are not a line: a least-squares line leaves a large residual
    A = np.hstack([X, np.ones_like(X)]).astype(np.float64)
    _, res, _, _ = np.linalg.lstsq(A, Y.astype(np.float64), rcond=None)
    assert res[0] / len(X) > 0.05


@pytest.mark.parametrize("fn", [datasets.linear, datasets.sine])
@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_grid_bad_n(fn, bad):
    with pytest.raises(ValueError, match="n must"):
        fn(n=bad)


def test_grid_rejects_integer_dtype():
    with pytest.raises(ValueError, match="dtype"):
        datasets.linear(dtype=np.int32)


# ---------------------------------------------------------------------------
# circles
# ---------------------------------------------------------------------------

def test_circles_shapes_dtypes():
    X, y = datasets.circles(n=200, seed=0)
    assert X.shape == (200, 2) and X.dtype == np.float32
    assert y.shape == (200,) and y.dtype == np.int64
    assert set(np.unique(y)) == {0, 1}


def test_circles_reproducible_and_seed_dependent():
    X1, y1 = datasets.circles(n=100, seed=42)
    X2, y2 = datasets.circles(n=100, seed=42)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    X3, y3 = datasets.circles(n=100, seed=43)
    assert not np.array_equal(X1, X3)
    assert not np.array_equal(y1, y3)       # a different shuffle


def test_circles_does_not_touch_global_rng():
    _, key, pos, _, _ = np.random.get_state()
    datasets.circles(n=50, seed=1)
    datasets.circles(n=50)                  # seed=None: fresh entropy, still no global state
    _, key_after, pos_after, _, _ = np.random.get_state()
    np.testing.assert_array_equal(key_after, key)
    assert pos_after == pos


@pytest.mark.parametrize("n", [2, 7, 200])
def test_circles_radii_without_noise(n):
    factor = 0.3
    X, y = datasets.circles(n=n, noise=0.0, factor=factor, seed=3, dtype=np.float64)
    r = np.hypot(X[:, 0], X[:, 1])
    np.testing.assert_allclose(r[y == 0], 1.0, atol=1e-12)        # red: outer ring
    np.testing.assert_allclose(r[y == 1], factor, atol=1e-12)     # blue: inner ring
    assert np.sum(y == 0) == n // 2 and np.sum(y == 1) == n - n // 2


def test_circles_shuffled_and_spread_in_angle():
    X, y = datasets.circles(n=200, noise=0.0, seed=0, dtype=np.float64)
    # shuffled: labels are not one block of 0s then 1s
    assert np.any(np.diff(y) != 0) and np.count_nonzero(np.diff(y)) > 10
    # each ring covers the full circle evenly, so its centroid is the origin
    for c in (0, 1):
        np.testing.assert_allclose(X[y == c].mean(axis=0), 0.0, atol=1e-12)


def test_circles_noise_level():
    noise = 0.05
    X, y = datasets.circles(n=2000, noise=noise, factor=0.5, seed=7, dtype=np.float64)
    r = np.hypot(X[:, 0], X[:, 1])
    # radial deviation of 2-D isotropic noise has std ~ noise when noise << radius
    assert abs(np.std(r[y == 0] - 1.0) - noise) < 0.01
    assert abs(np.std(r[y == 1] - 0.5) - noise) < 0.01
    assert abs(np.mean(r[y == 0]) - 1.0) < 0.01
    assert abs(np.mean(r[y == 1]) - 0.5) < 0.01


@pytest.mark.parametrize("kwargs, match", [
    (dict(n=1), "n must be >= 2"),
    (dict(n=0), "n must be >= 2"),
    (dict(n=10.0), "n must be an integer"),
    (dict(factor=0.0), "factor"),
    (dict(factor=1.0), "factor"),
    (dict(factor=-0.5), "factor"),
    (dict(factor=1.5), "factor"),
    (dict(noise=-0.1), "noise"),
    (dict(noise=float("nan")), "noise"),
])
def test_circles_bad_args(kwargs, match):
    with pytest.raises(ValueError, match=match):
        datasets.circles(**kwargs)


# ---------------------------------------------------------------------------
# xor, equal_bits
# ---------------------------------------------------------------------------

def test_xor_truth_table():
    X, y = datasets.xor()
    assert X.shape == (4, 2) and X.dtype == np.float32
    assert y.shape == (4,) and y.dtype == np.int64
    table = {tuple(row): label for row, label in zip(X.astype(int).tolist(), y.tolist())}
    assert table == {(0, 0): 0, (0, 1): 1, (1, 0): 1, (1, 1): 0}


def test_equal_bits_truth_table():
    X, y = datasets.equal_bits()
    assert X.shape == (8, 3) and y.shape == (8, 1)
    assert X.dtype == np.float32 and y.dtype == np.float32
    rows = [tuple(r) for r in X.astype(int).tolist()]
    assert sorted(rows) == [(a, b, c) for a in (0, 1) for b in (0, 1) for c in (0, 1)]
    for (a, b, _), t in zip(rows, y[:, 0].tolist()):
        assert t == (1.0 if a == b else 0.0)
    assert y.sum() == 4.0


def test_equal_bits_dtype():
    X, y = datasets.equal_bits(dtype=np.float64)
    assert X.dtype == np.float64 and y.dtype == np.float64


# ---------------------------------------------------------------------------
# one_hot
# ---------------------------------------------------------------------------

def test_one_hot_basic():
    out = datasets.one_hot([2, 0, 1, 2])
    assert out.shape == (4, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out, [[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]])


def test_one_hot_explicit_classes_and_dtype():
    out = datasets.one_hot(np.array([1, 1], dtype=np.uint8), n_classes=5, dtype=np.float64)
    assert out.shape == (2, 5) and out.dtype == np.float64
    np.testing.assert_array_equal(out[:, 1], [1, 1])
    assert out.sum() == 2


def test_one_hot_accepts_whole_floats():
    np.testing.assert_array_equal(datasets.one_hot(np.array([0.0, 1.0])), [[1, 0], [0, 1]])


@pytest.mark.parametrize("labels, n_classes, match", [
    ([0, 3], 3, r"0\.\.2, found \[3\]"),
    ([-1, 0], None, r"0\.\.0, found \[-1\]"),
    ([-1, 0], 2, r"0\.\.1, found \[-1\]"),
    ([0.5, 1.0], None, "integer"),
    (["a", "b"], None, "integer"),
    ([[0, 1]], None, "1-D"),
    ([], None, "empty"),
    ([0, 1], 0, "n_classes"),
])
def test_one_hot_bad_labels(labels, n_classes, match):
    with pytest.raises(ValueError, match=match):
        datasets.one_hot(labels, n_classes=n_classes)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 9), min_size=1, max_size=30))
def test_one_hot_roundtrip(labels):
    out = datasets.one_hot(labels, n_classes=10)
    np.testing.assert_array_equal(out.argmax(axis=1), labels)
    np.testing.assert_array_equal(out.sum(axis=1), 1)
    assert set(np.unique(out)) <= {0.0, 1.0}


# ---------------------------------------------------------------------------
# MNIST: the real files
# ---------------------------------------------------------------------------

def _real_mnist_dir():
    candidates = []
    if os.environ.get("FASTNN_DATA"):
        candidates += [Path(os.environ["FASTNN_DATA"]), Path(os.environ["FASTNN_DATA"]) / "mnist"]
    candidates.append(Path.home() / ".cache" / "fastnn" / "mnist")
    candidates.append(ROOT.parent / "shared" / "data" / "mnist")
    for d in candidates:
        if all((d / name).is_file() for name in NAMES):
            return d
    return None


def test_load_mnist_real_files():
    d = _real_mnist_dir()
    if d is None:
        skip_or_fail("MNIST not found: set FASTNN_DATA to a directory with the four IDX .gz files "
                     "(or put them in ~/.cache/fastnn/mnist or ../shared/data/mnist)")
    X_train, y_train, X_test, y_test = datasets.load_mnist(d, download=False)
    assert X_train.shape == (60000, 784) and X_test.shape == (10000, 784)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert X_train.dtype == np.float32 and X_test.dtype == np.float32
    assert y_train.dtype == np.int64 and y_test.dtype == np.int64
    for X in (X_train, X_test):
        assert X.min() == 0.0 and X.max() == 1.0
    for y in (y_train, y_test):
        assert set(np.unique(y).tolist()) == set(range(10))
    np.testing.assert_array_equal(y_train[:5], [5, 0, 4, 1, 9])
    np.testing.assert_array_equal(y_test[:5], [7, 2, 1, 0, 4])
    assert np.bincount(y_train)[1] == 6742                 # the most frequent digit
    assert X_train.mean() == pytest.approx(0.1307, abs=5e-4)
    # pixel values are k/255
    k = X_train[:100] * 255
    np.testing.assert_allclose(k, np.round(k), atol=1e-4)


# ---------------------------------------------------------------------------
# MNIST: synthetic IDX files
# ---------------------------------------------------------------------------

def _idx_bytes(magic, dims, payload):
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in dims)
    return header + bytes(payload)


def _images_gz(n, marker=0, rows=28, cols=28):
    # image i is filled with value (marker + i) % 256
    pixels = np.repeat((marker + np.arange(n)) % 256, rows * cols).astype(np.uint8)
    return gzip.compress(_idx_bytes(2051, (n, rows, cols), pixels.tobytes()))


def _labels_gz(labels):
    labels = np.asarray(labels, dtype=np.uint8)
    return gzip.compress(_idx_bytes(2049, (labels.size,), labels.tobytes()))


def _mnist_blobs(label):
    """Bytes of four small, valid files: 3 train and 2 test images, all labelled `label`."""
    return {
        TRAIN_IMAGES: _images_gz(3, marker=label),
        TRAIN_LABELS: _labels_gz([label] * 3),
        TEST_IMAGES: _images_gz(2, marker=label),
        TEST_LABELS: _labels_gz([label] * 2),
    }


def _write_mnist(directory, label, names=NAMES):
    directory.mkdir(parents=True, exist_ok=True)
    blobs = _mnist_blobs(label)
    for name in names:
        (directory / name).write_bytes(blobs[name])
    return directory


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every test here runs offline; tests that exercise downloads patch urlopen again."""
    calls = []

    def refuse(url, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return calls


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh HOME and no FASTNN_DATA; returns the cache directory load_mnist would use."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FASTNN_DATA", raising=False)
    return tmp_path / "home" / ".cache" / "fastnn" / "mnist"


def test_load_mnist_synthetic(tmp_path, home):
    d = _write_mnist(tmp_path / "m", label=7)
    X_train, y_train, X_test, y_test = datasets.load_mnist(d, download=False)
    assert X_train.shape == (3, 784) and X_test.shape == (2, 784)
    assert X_train.dtype == np.float32 and y_train.dtype == np.int64
    np.testing.assert_array_equal(y_train, [7, 7, 7])
    np.testing.assert_array_equal(y_test, [7, 7])
    # image i is filled with (7 + i) / 255, in row order
    np.testing.assert_allclose(X_train[:, 0], np.array([7, 8, 9]) / 255, rtol=1e-6)
    np.testing.assert_allclose(X_train.min(axis=1), X_train.max(axis=1))


def test_load_mnist_pixel_layout(tmp_path, home):
    # one image whose pixel (r, c) = r + c: rows must stay rows after flattening
    img = np.add.outer(np.arange(28), np.arange(28)).astype(np.uint8)
    d = _write_mnist(tmp_path / "m", label=1)
    (d / TRAIN_IMAGES).write_bytes(gzip.compress(_idx_bytes(2051, (1, 28, 28), img.tobytes())))
    (d / TRAIN_LABELS).write_bytes(_labels_gz([4]))
    X_train, y_train, _, _ = datasets.load_mnist(d, download=False)
    np.testing.assert_allclose(X_train.reshape(1, 28, 28)[0] * 255, img, atol=1e-4)
    assert y_train.tolist() == [4]


def _good_images_raw(n=3):
    return _idx_bytes(2051, (n, 28, 28), bytes(n * 28 * 28))


@pytest.mark.parametrize("name, blob, match", [
    (TRAIN_IMAGES, gzip.compress(_idx_bytes(2049, (3, 28, 28), bytes(3 * 784))), "magic"),
    (TRAIN_LABELS, gzip.compress(_idx_bytes(2051, (3,), bytes(3))), "magic"),
    (TRAIN_IMAGES, gzip.compress(_good_images_raw()[:-100]), "data bytes"),
    (TRAIN_IMAGES, gzip.compress(_good_images_raw() + b"\0"), "data bytes"),
    (TRAIN_IMAGES, gzip.compress(_good_images_raw()[:10]), "truncated"),
    (TRAIN_LABELS, gzip.compress(b"\0\0"), "truncated"),
    (TEST_IMAGES, _good_images_raw(), "gzip"),                          # not compressed
    (TEST_LABELS, gzip.compress(_good_images_raw())[:40], "gzip"),       # cut-off stream
    (TEST_IMAGES, gzip.compress(_idx_bytes(2051, (2, 28, 27), bytes(2 * 28 * 27))), "28x28"),
    (TEST_LABELS, _labels_gz([1, 2, 3]), "3 labels"),                  # 2 images, 3 labels
    (TEST_LABELS, _labels_gz([1, 12]), "label 12"),
])
def test_load_mnist_malformed(tmp_path, home, name, blob, match):
    d = _write_mnist(tmp_path / "m", label=1)
    (d / name).write_bytes(blob)
    with pytest.raises(ValueError, match=match) as info:
        datasets.load_mnist(d, download=False)
    assert name in str(info.value)


def test_missing_files_no_download(tmp_path, home, no_network):
    d = _write_mnist(tmp_path / "m", label=1, names=[TRAIN_IMAGES, TEST_LABELS])
    with pytest.raises(FileNotFoundError) as info:
        datasets.load_mnist(d, download=False)
    msg = str(info.value)
    assert TRAIN_LABELS in msg and TEST_IMAGES in msg
    assert TRAIN_IMAGES not in msg and TEST_LABELS not in msg
    assert str(d) in msg and "download=False" in msg
    assert no_network == []                  # download=False means no attempt at all


def test_missing_files_download_fails(tmp_path, home, monkeypatch):
    seen = []

    def offline(url, *args, timeout=None, **kwargs):
        seen.append((url, timeout))
        raise OSError("no route to host")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(FileNotFoundError) as info:
        datasets.load_mnist()                # no path: cache directory under HOME
    msg = str(info.value)
    for name in NAMES:
        assert name in msg
    assert "FASTNN_DATA" in msg and str(home) in msg and "no route to host" in msg
    # the first file was tried on every mirror, each with a timeout; with every mirror
    # unreachable the loader gives up instead of waiting out the timeouts for each file
    assert [u for u, _ in seen] == [m + NAMES[0] for m in datasets.MNIST_MIRRORS]
    assert all(t is not None and t > 0 for _, t in seen)
    # nothing half-written is left behind
    assert list(home.iterdir()) == []


def test_explicit_path_missing_is_error_about_path(tmp_path, home, monkeypatch):
    _write_mnist(home, label=3)
    monkeypatch.setenv("FASTNN_DATA", str(_write_mnist(tmp_path / "env", label=2)))
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as info:
        datasets.load_mnist(missing, download=False)
    msg = str(info.value)
    assert str(missing) in msg and all(name in msg for name in NAMES)
    assert datasets.mnist_path(missing) is None


def test_search_order(tmp_path, home, monkeypatch):
    explicit = _write_mnist(tmp_path / "explicit", label=1)
    env = _write_mnist(tmp_path / "env", label=2)
    _write_mnist(home, label=3)

    def label_of(**kwargs):
        return int(datasets.load_mnist(download=False, **kwargs)[1][0])

    monkeypatch.setenv("FASTNN_DATA", str(env))
    assert label_of(path=explicit) == 1                      # path beats FASTNN_DATA
    assert label_of() == 2                                   # FASTNN_DATA beats the cache
    assert datasets.mnist_path() == env
    assert datasets.mnist_path(explicit) == explicit

    # FASTNN_DATA may also name a data root that holds mnist/
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path))
    (tmp_path / "mnist").symlink_to(env)
    assert label_of() == 2

    # an incomplete FASTNN_DATA directory is skipped, not mixed with the cache
    partial = _write_mnist(tmp_path / "partial", label=4, names=NAMES[:2])
    monkeypatch.setenv("FASTNN_DATA", str(partial))
    assert label_of() == 3
    assert datasets.mnist_path() == home

    monkeypatch.delenv("FASTNN_DATA")
    assert label_of() == 3                                   # the cache under HOME
    assert datasets.mnist_path() == home


def _fake_urlopen(blobs_by_url, seen):
    def urlopen(url, *args, timeout=None, **kwargs):
        seen.append(url)
        if url not in blobs_by_url:
            raise urllib.error.URLError(f"unreachable: {url}")
        return io.BytesIO(blobs_by_url[url])
    return urlopen


def test_download_writes_verified_files(tmp_path, home, monkeypatch):
    blobs = _mnist_blobs(label=6)
    for name, blob in blobs.items():
        monkeypatch.setitem(datasets.MNIST_FILES, name, hashlib.md5(blob).hexdigest())
    first, second = datasets.MNIST_MIRRORS[:2]
    # first mirror is down; the second one serves everything
    seen = []
    monkeypatch.setattr(urllib.request, "urlopen",
                        _fake_urlopen({second + n: b for n, b in blobs.items()}, seen))
    X_train, y_train, X_test, y_test = datasets.load_mnist()
    assert y_train.tolist() == [6, 6, 6] and y_test.tolist() == [6, 6]
    assert sorted(p.name for p in home.iterdir()) == sorted(NAMES)   # no temp files left
    for name, blob in blobs.items():
        assert (home / name).read_bytes() == blob
    assert seen[:2] == [first + NAMES[0], second + NAMES[0]]

    # a second call finds the cache and downloads nothing
    seen.clear()
    datasets.load_mnist()
    assert seen == []


def test_download_only_missing_files_into_path(tmp_path, home, monkeypatch):
    blobs = _mnist_blobs(label=5)
    for name, blob in blobs.items():
        monkeypatch.setitem(datasets.MNIST_FILES, name, hashlib.md5(blob).hexdigest())
    d = _write_mnist(tmp_path / "given", label=5, names=NAMES[:3])
    seen = []
    mirror = datasets.MNIST_MIRRORS[0]
    monkeypatch.setattr(urllib.request, "urlopen",
                        _fake_urlopen({mirror + n: b for n, b in blobs.items()}, seen))
    datasets.load_mnist(d)
    assert seen == [mirror + NAMES[3]]
    assert not home.exists()                 # path given: the cache is not used


def test_download_with_wrong_md5_is_rejected(tmp_path, home, monkeypatch):
    seen = []
    monkeypatch.setattr(urllib.request, "urlopen",
                        lambda url, *a, **k: (seen.append(url), io.BytesIO(b"not mnist"))[1])
    d = tmp_path / "dl"
    with pytest.raises(ValueError, match="MD5") as info:
        datasets.load_mnist(d)
    assert NAMES[0] in str(info.value)
    assert len(seen) == len(datasets.MNIST_MIRRORS)      # every mirror tried for the first file
    assert list(d.iterdir()) == []                       # bad downloads deleted
