"""Model files that cannot lie (issue 12, section 3): the checksum covers the metadata,
shapes are checked before anything is allocated, and saving is safe on a shared system."""

import json
import os
import stat
import threading

import numpy as np
import pytest

import fastnn as fn
from fastnn import io

from test_io import header_of, resigned, with_header


def _small():
    net = fn.Sequential(fn.Linear(2, 3), fn.LeakyReLU(0.01), fn.Linear(3, 2), seed=0)
    return net


def test_every_single_bit_flip_is_detected(tmp_path):
    """All single-bit flips of a small model file: each one raises a ModelFileError (or,
    for flips that keep the file meaning the same, loads the same model) -- none loads a
    model that predicts differently, or records another cost."""
    net = _small()
    data = io.to_bytes(net, cost="ce")
    X = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32)
    want = net.predict(X)
    detected = same = 0
    for i in range(len(data)):
        for bit in range(8):
            bad = bytearray(data)
            bad[i] ^= 1 << bit
            try:
                back = io.from_bytes(bytes(bad), "flip")
            except io.ModelFileError:
                detected += 1
                continue
            # a flip that loads must be one that changes nothing
            info = io._info("flip", io._read_header("flip", bytes(bad))[1])
            assert np.array_equal(back.params, net.params) and back.config() == net.config(), (i, bit)
            assert info["cost"] == "CrossEntropy" and np.array_equal(back.predict(X), want), (i, bit)
            same += 1
    tried = 8 * len(data)
    print(f"\n{detected} of {tried} single-bit flips detected, {same} harmless")
    assert detected + same == tried and detected >= tried - 8  # at most a byte's worth of no-op flips


def test_a_declared_huge_layer_is_refused_before_allocating(tmp_path):
    net = _small()
    data = net.save(tmp_path / "m.safetensors") and (tmp_path / "m.safetensors").read_bytes()
    _, header = header_of(data)
    cfg = json.loads(header["__metadata__"]["config"])
    cfg["layers"][0]["insize"] = cfg["layers"][0]["outsize"] = 10**7
    header["__metadata__"]["config"] = json.dumps(cfg)
    hostile = tmp_path / "huge.safetensors"
    hostile.write_bytes(resigned(data, header))  # a consistent checksum: only the shapes can tell
    with pytest.raises(io.ModelFileError, match=r"shape \(2, 3\), the architecture needs \(10000000, 10000000\)"):
        fn.load(hostile)


def test_loading_draws_no_random_weights(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    _small().save(path)

    class NoDraws:
        def __getattr__(self, name):
            raise AssertionError(f"loading drew random numbers ({name})")
    monkeypatch.setattr(np.random, "default_rng", lambda *a, **k: NoDraws())
    assert fn.load(path).n_params == 17


def test_load_of_a_directory_is_a_model_file_error(tmp_path):
    with pytest.raises(io.ModelFileError, match="directory"):
        fn.load(tmp_path)
    with pytest.raises(io.ModelFileError, match="directory"):
        io.info(tmp_path)


def test_format_1_files_still_load(tmp_path):
    from safetensors.numpy import save as st_save

    net = _small()
    tensors = io._tensors(net)
    meta = {"format": "fastnn", "format_version": "1", "fastnn_version": "0.1.0",
            "config": json.dumps(net.config()), "sha256": io._digest(tensors)}
    path = tmp_path / "v1.safetensors"
    path.write_bytes(st_save(tensors, metadata=meta))
    assert np.array_equal(fn.load(path).params, net.params)


def test_save_never_changes_the_umask(tmp_path, monkeypatch):
    def no_umask(*a):
        raise AssertionError("save called os.umask: another thread's files would get its mode")
    monkeypatch.setattr(os, "umask", no_umask)
    path = tmp_path / "m.safetensors"
    _small().save(path)
    assert fn.load(path) is not None


def test_concurrent_file_creation_keeps_its_mode(tmp_path):
    """While threads save models, other threads' new files get the normal umask mode."""
    old = os.umask(0o022)
    try:
        stop, modes = threading.Event(), []

        def creator():
            k = 0
            while not stop.is_set():
                p = tmp_path / f"other{k}"
                with open(p, "w"):
                    pass
                modes.append(stat.S_IMODE(os.stat(p).st_mode))
                k += 1
        t = threading.Thread(target=creator)
        t.start()
        for i in range(30):
            _small().save(tmp_path / f"m{i}.safetensors")
        stop.set()
        t.join()
    finally:
        os.umask(old)
    assert modes and set(modes) == {0o644}


def test_save_keeps_an_existing_files_mode_and_new_files_get_the_umask_mode(tmp_path):
    path = tmp_path / "m.safetensors"
    _small().save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~_current_umask()
    os.chmod(path, 0o640)
    _small().save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def _current_umask():
    old = os.umask(0)
    os.umask(old)
    return old


def test_save_writes_through_a_symlink(tmp_path):
    real_dir = tmp_path / "store"
    real_dir.mkdir()
    target = real_dir / "model.safetensors"
    link = tmp_path / "current.safetensors"
    _small().save(target)
    os.symlink(target, link)
    net = _small()
    net.params[:] = 0.5
    net.save(link)
    assert os.path.islink(link) and os.readlink(link) == str(target)
    assert np.all(fn.load(target).params == 0.5)
    assert sorted(p.name for p in real_dir.iterdir()) == ["model.safetensors"]  # no temp file left


def test_save_fsyncs_the_directory_after_the_rename(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def spy(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        return real(fd)
    monkeypatch.setattr(os, "fsync", spy)
    _small().save(tmp_path / "m.safetensors")
    assert synced == [False, True]  # the file, then its directory
