"""net.summary(): the Keras-style table of layers, output shapes and parameters, with the memory."""

import numpy as np

import fastnn as fn


def test_summary_table():
    net = fn.Sequential(fn.Linear(784, 256), fn.ReLU(), fn.Dropout(0.2), fn.Linear(256, 10, bias=False),
                        fn.Linear(10, 10, name="head"), seed=0)
    text = net.summary()
    lines = text.splitlines()
    assert lines[0] == 'Model: "sequential"'
    assert lines[2].split() == ["Layer", "(type)", "Output", "Shape", "Param", "#"]
    rows = [line.split() for line in lines if line.startswith(" ") and "(None," in line]
    assert [r[:2] for r in rows] == [["linear", "(Linear)"], ["re_lu", "(ReLU)"], ["dropout", "(Dropout)"],
                                     ["linear_1", "(Linear)"], ["head", "(Linear)"]]
    assert [" ".join(r[2:4]) for r in rows] == ["(None, 256)", "(None, 256)", "(None, 256)", "(None, 10)",
                                                "(None, 10)"]
    assert [int(r[4]) for r in rows] == [784 * 256 + 256, 0, 0, 2560, 110]
    total = 784 * 256 + 256 + 2560 + 110
    assert f"Total params: {total:,} ({total * 4 / 1024:.2f} KB)" in text
    assert f"Trainable params: {total:,}" in text and "Non-trainable params: 0" in text
    assert "float32" in text


def test_summary_float64_memory_and_print(capsys):
    net = fn.Sequential(fn.Linear(2, 3), fn.GELU(), fn.Linear(3, 1), seed=0, dtype=np.float64)
    assert "Total params: 13 (104.00 B)" in net.summary()
    net.print_summary()
    assert capsys.readouterr().out.strip() == net.summary().strip()
