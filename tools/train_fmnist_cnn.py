#!/usr/bin/python3
"""Train the Fashion-MNIST CNN used by quantserve's tests and export it to ONNX.

What it does
  * Reads Fashion-MNIST from the gzipped IDX files shipped by Debian's
    `dataset-fashion-mnist` package (/usr/share/datasets/fashion-mnist/); the
    IDX format is parsed here with gzip + numpy, nothing is downloaded.
  * Trains the classic Keras MNIST CNN:
        Conv2d(1,32,3) ReLU MaxPool2 Conv2d(32,64,3) ReLU MaxPool2
        Flatten Linear(1600,64) ReLU Linear(64,10)      -> logits, no softmax
    Adam lr 1e-3, batch 128, seed 0, 2 threads, deterministic shuffling.
  * Exports it to ONNX (opset 13, input "input" [N,1,28,28] float32, output
    "logits" [N,10] float32, dynamic batch axis, constant folding) and runs
    onnx.checker on the result.
  * Evaluates the float32 torch model (eval mode) on all 10,000 t10k images
    and prints `test_accuracy 0.XXXX`.
  * Writes, next to the .onnx file:
        fmnist_cnn.json                   metadata (accuracy, epochs, ...)
        fmnist_cnn_first16_input.npy      float32 [16,1,28,28], t10k images 0..15
        fmnist_cnn_first16_logits.npy     float32 [16,10], torch logits for them

PREPROCESSING (the C++ engine reads the same IDX files and MUST match this):
    x = float32(uint8_pixel) / 255.0      -- no mean/std normalisation
    layout NCHW, shape N x 1 x 28 x 28, row-major as stored in the IDX file.

How to regenerate (from the repository root):
    tools/install_deps.sh --train              # Debian python3-torch/onnx/numpy
    /usr/bin/python3 tools/train_fmnist_cnn.py [--epochs 12]
Use Debian's /usr/bin/python3 explicitly: another python3 earlier on PATH may
lack torch. Runtime: about 35 s per epoch on 2 CPU threads, so ~7-8 minutes
for the default 12 epochs (~90.8% test accuracy).
"""

import argparse
import gzip
import json
import os
import struct
import sys
import time

import numpy as np
import onnx
import torch
from torch import nn

SEED = 0
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREPROCESSING = "uint8/255, NCHW 1x28x28"


def read_idx(path):
    """Parses a gzipped IDX file into a numpy uint8 array of its stated shape."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path}: expected {dims}, got {arr.size} bytes")
    return arr.reshape(dims)


def load_split(data_dir, prefix):
    images = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    # The documented preprocessing: uint8 / 255 -> float32, N x 1 x 28 x 28.
    x = (images.astype(np.float32) / np.float32(255.0)).reshape(-1, 1, 28, 28)
    y = labels.astype(np.int64)
    return x, y


def build_model():
    return nn.Sequential(
        nn.Conv2d(1, 32, kernel_size=3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, kernel_size=3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(1600, 64), nn.ReLU(),
        nn.Linear(64, 10),
    )


@torch.no_grad()
def predict(model, x, batch=1000):
    model.eval()
    outs = [model(torch.from_numpy(x[i:i + batch])) for i in range(0, len(x), batch)]
    return torch.cat(outs).numpy()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--out", default=os.path.join(REPO_ROOT, "models", "fmnist_cnn.onnx"),
                    help="ONNX output path; .json/.npy files go next to it")
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    args = ap.parse_args()

    torch.manual_seed(SEED)
    np.random.seed(SEED)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)

    x_train, y_train = load_split(args.data_dir, "train")
    x_test, y_test = load_split(args.data_dir, "t10k")
    print(f"train {x_train.shape} test {x_test.shape}", flush=True)

    model = build_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.RandomState(SEED)  # deterministic per-epoch shuffling
    batch = 128

    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    for epoch in range(1, args.epochs + 1):
        t0 = time.time()
        model.train()
        perm = torch.from_numpy(rng.permutation(len(x_train)))
        total = 0.0
        for i in range(0, len(perm), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        acc = float((predict(model, x_test).argmax(1) == y_test).mean())
        print(f"epoch {epoch}/{args.epochs} loss {total / len(perm):.4f} "
              f"test_acc {acc:.4f} ({time.time() - t0:.1f}s)", flush=True)

    logits = predict(model, x_test)
    correct = int((logits.argmax(1) == y_test).sum())
    accuracy = correct / len(y_test)
    print(f"test_accuracy {accuracy:.4f}")
    print(f"test_correct {correct}/{len(y_test)}")

    out = os.path.abspath(args.out)
    out_dir = os.path.dirname(out)
    stem = os.path.splitext(os.path.basename(out))[0]
    os.makedirs(out_dir, exist_ok=True)

    model.eval()
    torch.onnx.export(
        model, torch.from_numpy(x_test[:1]), out,
        opset_version=13, do_constant_folding=True,
        input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    )
    onnx.checker.check_model(onnx.load(out))

    np.save(os.path.join(out_dir, f"{stem}_first16_input.npy"),
            np.ascontiguousarray(x_test[:16], dtype=np.float32))
    np.save(os.path.join(out_dir, f"{stem}_first16_logits.npy"),
            np.ascontiguousarray(logits[:16], dtype=np.float32))

    meta = {
        "model": os.path.basename(out),
        "dataset": "fashion-mnist",
        "preprocessing": PREPROCESSING,
        "epochs": args.epochs,
        "seed": SEED,
        "test_accuracy": round(accuracy, 4),
        "test_correct": correct,
        "torch_version": torch.__version__,
    }
    with open(os.path.join(out_dir, f"{stem}.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print(f"wrote {out} ({os.path.getsize(out)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
