"""Model files (fastnn.io): bit-exact round trips, atomic writes, clear errors."""

import json
import os
import struct

import numpy as np
import pytest

import fastnn as fn
from fastnn import io

safetensors_numpy = pytest.importorskip("safetensors.numpy", reason="safetensors is a core dependency")


def make_net(dtype, seed=0):
    return fn.Sequential(fn.Linear(3, 5), fn.Tanh(), fn.Linear(5, 4, bias=False), fn.LeakyReLU(0.2),
                         fn.Linear(4, 2, init="he", name="out"), fn.Sigmoid(), seed=seed, dtype=dtype)


def header_of(data):
    (n,) = struct.unpack("<Q", data[:8])
    return n, json.loads(data[8:8 + n])


def with_header(data, header):
    """``data`` with its safetensors header replaced (offsets stay valid: they are relative)."""
    n, _ = header_of(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    return struct.pack("<Q", len(raw)) + raw + data[8 + n:]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_is_bit_exact(tmp_path, dtype):
    net = make_net(dtype)
    # Values that a text or float-converting format would not keep exactly.
    net.params[:3] = [np.nextafter(dtype(1), dtype(2)), dtype(-0.0), np.finfo(dtype).tiny]
    path = tmp_path / "m.safetensors"
    assert net.save(path) == os.fspath(path)
    back = io.load(path)
    assert back.dtype == net.dtype
    assert back.params.dtype == np.dtype(dtype)
    assert back.params.tobytes() == net.params.tobytes()
    assert back.n_decay == net.n_decay
    assert back.config() == net.config()
    assert repr(back) == repr(net)
    X = np.random.default_rng(1).normal(size=(7, 3)).astype(dtype)
    np.testing.assert_array_equal(back.predict(X, backend="numpy"), net.predict(X, backend="numpy"))


def test_plain_safetensors_reads_the_file(tmp_path):
    net = make_net(np.float32)
    path = tmp_path / "m.safetensors"
    io.save(net, path, cost=fn.CrossEntropy(), extra={"note": "hi"})
    tensors = safetensors_numpy.load_file(str(path))
    assert sorted(tensors) == ["layers.0.W", "layers.0.b", "layers.2.W", "layers.4.W", "layers.4.b"]
    np.testing.assert_array_equal(tensors["layers.0.W"], net.layers[0].W)  # (in, out)
    assert tensors["layers.0.W"].shape == (3, 5)
    meta = header_of(path.read_bytes())[1]["__metadata__"]
    assert meta["format"] == "fastnn" and meta["fastnn_version"] == fn.__version__
    assert json.loads(meta["config"]) == net.config()
    info = io.info(path)
    assert info["cost"] == "CrossEntropy" and info["extra"] == {"note": "hi"}
    assert info["config"]["dtype"] == "float32"


def test_torch_linear_from_file(tmp_path, torch):
    """The README recipe: nn.Linear keeps (out, in), so weight = W.T."""
    net = fn.Sequential(fn.Linear(4, 6), fn.ReLU(), fn.Linear(6, 3), seed=2)
    path = tmp_path / "m.safetensors"
    net.save(path)
    t = safetensors_numpy.load_file(str(path))
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    with torch.no_grad():
        for i in (0, 2):
            model[i].weight.copy_(torch.from_numpy(t[f"layers.{i}.W"].T.copy()))
            model[i].bias.copy_(torch.from_numpy(t[f"layers.{i}.b"]))
    X = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    with torch.no_grad():
        got = model(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(got, net.predict(X, backend="numpy"), rtol=1e-5, atol=1e-6)


def test_save_replaces_existing_file(tmp_path):
    path = tmp_path / "m.safetensors"
    make_net(np.float32, seed=0).save(path)
    new = make_net(np.float32, seed=1)
    new.save(path)
    assert io.load(path).params.tobytes() == new.params.tobytes()
    assert sorted(os.listdir(tmp_path)) == ["m.safetensors"]


@pytest.mark.parametrize("exc", [OSError("disk full"), KeyboardInterrupt()])
def test_failed_save_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch, exc):
    path = tmp_path / "m.safetensors"
    old = make_net(np.float32, seed=0)
    old.save(path)
    before = path.read_bytes()
    seen = []

    def failing_replace(src, dst):
        seen.append(src)
        assert os.path.getsize(src) > 0  # the temporary file was fully written, next to the target
        assert os.path.dirname(os.path.abspath(src)) == str(tmp_path)
        raise exc

    monkeypatch.setattr(io.os, "replace", failing_replace)
    with pytest.raises(type(exc)):
        make_net(np.float32, seed=1).save(path)
    monkeypatch.undo()
    assert seen, "save did not go through a temporary file"
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.safetensors"]
    assert io.load(path).params.tobytes() == old.params.tobytes()


def test_save_into_missing_folder_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        make_net(np.float32).save(tmp_path / "nope" / "m.safetensors")


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "m.safetensors"
    make_net(np.float64).save(path)
    return path, path.read_bytes()


@pytest.mark.parametrize("cut", [0, 5, 8, 40, -200, -1])
def test_truncated_file(saved, cut):
    path, data = saved
    path.write_bytes(data[:cut] if cut >= 0 else data[:len(data) + cut])
    with pytest.raises(io.ModelFileError, match=str(path.name)) as err:
        io.load(path)
    assert isinstance(err.value, ValueError)


def test_corrupted_weights_fail_the_checksum(saved):
    path, data = saved
    bad = bytearray(data)
    bad[-3] ^= 0x10  # one bit in the last tensor's data
    path.write_bytes(bytes(bad))
    with pytest.raises(io.ModelFileError, match="checksum"):
        io.load(path)


def test_corrupted_header(saved):
    path, data = saved
    bad = bytearray(data)
    bad[12] = ord("}")  # breaks the JSON header
    path.write_bytes(bytes(bad))
    with pytest.raises(io.ModelFileError, match="m.safetensors"):
        io.load(path)


def resigned(data, header):
    """``data`` with ``header``, its checksum recomputed: a consistent file (a hostile one)."""
    from safetensors.numpy import load as st_load

    meta = header["__metadata__"]
    meta["sha256"] = io._digest(st_load(data), meta)
    return with_header(data, header)


def test_architecture_not_matching_tensors(saved):
    path, data = saved
    _, header = header_of(data)
    cfg = json.loads(header["__metadata__"]["config"])
    cfg["layers"][0]["outsize"] = 6
    header["__metadata__"]["config"] = json.dumps(cfg)
    path.write_bytes(with_header(data, header))
    with pytest.raises(io.ModelFileError, match="checksum"):  # the checksum covers the architecture
        io.load(path)
    path.write_bytes(resigned(data, header))
    with pytest.raises(io.ModelFileError, match="architecture|shape"):
        io.load(path)


@pytest.mark.parametrize("content", [b"hello, world\n" * 10, b"\x93NUMPY\x01\x00" + b"\x00" * 100, b""])
def test_foreign_files(tmp_path, content):
    path = tmp_path / "foreign.bin"
    path.write_bytes(content)
    with pytest.raises(io.ModelFileError, match="foreign.bin"):
        io.load(path)


def test_safetensors_file_from_another_tool(tmp_path):
    path = tmp_path / "other.safetensors"
    safetensors_numpy.save_file({"weight": np.ones((2, 2), np.float32)}, str(path))
    with pytest.raises(io.ModelFileError, match="not a fastnn model"):
        io.load(path)


def test_newer_file_format_is_refused(saved):
    path, data = saved
    _, header = header_of(data)
    header["__metadata__"]["format_version"] = str(io.FORMAT_VERSION + 1)
    header["__metadata__"]["fastnn_version"] = "9.0.0"
    path.write_bytes(with_header(data, header))
    with pytest.raises(io.ModelFileError, match="upgrade fastnn"):
        io.load(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        io.load(tmp_path / "absent.safetensors")


def test_save_rejects_non_networks(tmp_path):
    with pytest.raises(TypeError, match="Sequential"):
        io.save({"W": np.ones(3)}, tmp_path / "x.safetensors")
