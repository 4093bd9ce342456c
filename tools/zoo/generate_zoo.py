#!/usr/bin/python3
"""Generate quantserve's model zoo: ONNX files plus torch reference outputs.

For every model NAME it writes into --out:
    NAME.onnx                  the exported model (opset 13, dynamic batch axis)
    NAME_input.npy             a few sample rows (single-input models), or
    NAME_input_<INPUT>.npy     one file per input (multi-input models)
    NAME_output.npy            what torch computes for those rows (float32)
    NAME.json                  metadata: inputs (name, shape, dtype, file),
                               output, opset, seed, torch version, and for the
                               trained models their Fashion-MNIST test accuracy

Models (see docs/MODELS.md):
    resnet18, mobilenet_v2  torchvision architectures, random weights (seeded),
                            input "input" [N,3,224,224], output "logits" [N,1000]
    dlrm                    DLRM-style recommender: 13 dense features -> bottom
                            MLP; 8 embedding tables (100 to 50,000 rows, dim 64),
                            3 lookups per table summed (EmbeddingBag mode=sum
                            with fixed-size bags); concat interaction; top MLP;
                            sigmoid. Inputs "dense" [N,13] f32, "sparse" [N,8,3] i64
    mlp, logreg             trained briefly on Fashion-MNIST (uint8/255 pixels,
                            input "input" [N,1,28,28], output "logits" [N,10])

EmbeddingBag note: torch 1.13 exports nn.EmbeddingBag as an ONNX Loop over the
bags (Shape/Range/Loop with Slice+Gather+ReduceSum in its body), control flow
the engine does not run. With fixed-size bags the same sum is
Gather + ReduceSum, which is what this script exports; it checks that the
exported forward equals nn.EmbeddingBag(mode="sum") on the sample rows.

Usage (Debian's interpreter: another python3 on PATH may lack torch):
    /usr/bin/python3 tools/zoo/generate_zoo.py --out build/zoo \
        [--models resnet18,mobilenet_v2,dlrm] [--epochs N]
The CNNs and DLRM take a few seconds each; mlp and logreg train for --epochs
(default 2, ~10 s on 2 threads) and are committed under models/.
"""

import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np
import onnx
import torch
import torchvision
from torch import nn
from torch.nn import functional as F

SEED = 0
OPSET = 13
FMNIST_DIR = "/usr/share/datasets/fashion-mnist"

DLRM_TABLE_ROWS = [50000, 20000, 20000, 10000, 5000, 2000, 1000, 100]
DLRM_DIM = 64
DLRM_DENSE = 13
DLRM_BAG = 3


def seed_everything():
    torch.manual_seed(SEED)
    np.random.seed(SEED)


# Fashion-MNIST: the CNN's training script parses the IDX files and applies
# the documented preprocessing (uint8/255, N x 1 x 28 x 28).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from train_fmnist_cnn import load_split  # noqa: E402


def load_fmnist(prefix):
    return load_split(FMNIST_DIR, prefix)


# ---- Models ----

class Dlrm(nn.Module):
    def __init__(self):
        super().__init__()
        self.bottom = nn.Sequential(nn.Linear(DLRM_DENSE, 128), nn.ReLU(),
                                    nn.Linear(128, DLRM_DIM), nn.ReLU())
        self.tables = nn.ModuleList(
            nn.EmbeddingBag(rows, DLRM_DIM, mode="sum") for rows in DLRM_TABLE_ROWS)
        for t in self.tables:  # DLRM's initialisation: U(-1/sqrt(rows), 1/sqrt(rows))
            bound = 1.0 / np.sqrt(t.num_embeddings)
            nn.init.uniform_(t.weight, -bound, bound)
        width = DLRM_DIM * (len(DLRM_TABLE_ROWS) + 1)
        self.top = nn.Sequential(nn.Linear(width, 128), nn.ReLU(), nn.Linear(128, 1))

    def pooled(self, sparse, as_bag):
        # sparse [N, tables, bag]: table t looks up sparse[:, t, :] and sums.
        if as_bag:
            return [t(sparse[:, i, :]) for i, t in enumerate(self.tables)]
        return [F.embedding(sparse[:, i, :], t.weight).sum(1)
                for i, t in enumerate(self.tables)]

    def forward(self, dense, sparse, as_bag=False):
        z = torch.cat([self.bottom(dense)] + self.pooled(sparse, as_bag), dim=1)
        return torch.sigmoid(self.top(z))


def set_batchnorm_statistics(model, rng):
    """Gives a random-weight CNN the BatchNorm statistics of real data flow.

    With torchvision's initialisation and the default running statistics
    (mean 0, var 1) activations shrink layer after layer (MobileNetV2's
    logits end near 1e-9), which would make every comparison vacuous. One
    forward pass in training mode over random images sets each BatchNorm's
    running mean/var to what it actually sees, so every layer's output is
    normalised as in a trained network; weights are not changed.
    """
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the passes below
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(rng.standard_normal((8, 3, 224, 224)).astype(np.float32)))
    model.eval()


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(),
                         nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))


def logreg():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))


def train_fmnist(model, epochs):
    x_train, y_train = load_fmnist("train")
    x_test, y_test = load_fmnist("t10k")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.RandomState(SEED)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    for epoch in range(epochs):
        model.train()
        perm = torch.from_numpy(rng.permutation(len(xt)))
        for i in range(0, len(perm), 128):
            idx = perm[i:i + 128]
            opt.zero_grad()
            F.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(x_test)).numpy()
    accuracy = float((logits.argmax(1) == y_test).mean())
    return x_test[:16].copy(), accuracy


# ---- Export ----

def export(name, model, inputs, output_name, out_dir, extra_meta):
    """inputs: list of (name, numpy array); the first dim of each is dynamic."""
    model.eval()
    path = os.path.join(out_dir, f"{name}.onnx")
    args = tuple(torch.from_numpy(a) for _, a in inputs)
    names = [n for n, _ in inputs]
    dynamic = {n: {0: "batch"} for n in names}
    dynamic[output_name] = {0: "batch"}
    with torch.no_grad():
        expected = model(*args).numpy().astype(np.float32)
        torch.onnx.export(model, args, path, opset_version=OPSET, do_constant_folding=True,
                          input_names=names, output_names=[output_name],
                          dynamic_axes=dynamic)
    onnx.checker.check_model(onnx.load(path))
    meta_inputs = []
    for n, a in inputs:
        file = f"{name}_input.npy" if len(inputs) == 1 else f"{name}_input_{n}.npy"
        np.save(os.path.join(out_dir, file), np.ascontiguousarray(a))
        meta_inputs.append({"name": n, "shape": ["batch"] + list(a.shape[1:]),
                            "dtype": str(a.dtype), "file": file, "rows": int(a.shape[0])})
    np.save(os.path.join(out_dir, f"{name}_output.npy"), np.ascontiguousarray(expected))
    meta = {"model": f"{name}.onnx", "inputs": meta_inputs,
            "output": {"name": output_name, "shape": ["batch"] + list(expected.shape[1:]),
                       "file": f"{name}_output.npy"},
            "opset": OPSET, "seed": SEED, "generator_sha256": script_hash(),
            "torch_version": torch.__version__,
            "torchvision_version": torchvision.__version__}
    meta.update(extra_meta)
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print(f"{name}: wrote {path} ({os.path.getsize(path)} bytes)", flush=True)


def script_hash():
    with open(os.path.abspath(__file__), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def up_to_date(name, out_dir):
    """True if NAME's files exist and were written by this very script."""
    try:
        with open(os.path.join(out_dir, f"{name}.json")) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return False
    files = [meta["model"], meta["output"]["file"]] + [i["file"] for i in meta["inputs"]]
    return (meta.get("generator_sha256") == script_hash() and
            all(os.path.exists(os.path.join(out_dir, f)) for f in files))


def make(name, out_dir, epochs):
    seed_everything()
    rng = np.random.RandomState(SEED)
    if name in ("resnet18", "mobilenet_v2"):
        model = getattr(torchvision.models, name)(weights=None)
        set_batchnorm_statistics(model, rng)
        x = rng.standard_normal((4, 3, 224, 224)).astype(np.float32)
        export(name, model, [("input", x)], "logits", out_dir, {"weights": "random, BatchNorm statistics from one pass over 8 random images"})
    elif name == "dlrm":
        model = Dlrm().eval()
        dense = rng.standard_normal((8, DLRM_DENSE)).astype(np.float32)
        sparse = np.stack([rng.randint(0, rows, size=(8, DLRM_BAG))
                           for rows in DLRM_TABLE_ROWS], axis=1).astype(np.int64)
        with torch.no_grad():
            a = model(torch.from_numpy(dense), torch.from_numpy(sparse))
            b = model(torch.from_numpy(dense), torch.from_numpy(sparse), as_bag=True)
        if not torch.allclose(a, b, atol=1e-6):
            raise RuntimeError("Gather+ReduceSum differs from EmbeddingBag(mode=sum)")
        export(name, model, [("dense", dense), ("sparse", sparse)], "prob", out_dir,
               {"weights": "random", "table_rows": DLRM_TABLE_ROWS,
                "embedding_dim": DLRM_DIM, "bag_size": DLRM_BAG})
    elif name in ("mlp", "logreg"):
        torch.set_num_threads(2)
        model = mlp() if name == "mlp" else logreg()
        x, accuracy = train_fmnist(model, epochs)
        export(name, model, [("input", x)], "logits", out_dir,
               {"dataset": "fashion-mnist", "preprocessing": "uint8/255, NCHW 1x28x28",
                "epochs": epochs, "test_accuracy": round(accuracy, 4),
                "sample_rows": "t10k images 0..15"})
        print(f"{name}: test_accuracy {accuracy:.4f}", flush=True)
    else:
        raise ValueError(f"unknown model {name!r}")


ALL = ["resnet18", "mobilenet_v2", "dlrm", "mlp", "logreg"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--models", default="resnet18,mobilenet_v2,dlrm",
                    help=f"comma-separated subset of {','.join(ALL)}")
    ap.add_argument("--epochs", type=int, default=2, help="training epochs for mlp/logreg")
    ap.add_argument("--skip-existing", action="store_true",
                    help="keep a model whose files this same script version already wrote")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    # Each model's files are written to a temporary directory and renamed
    # into place (the .json last), so an interrupted run is redone next time.
    for name in [m for m in args.models.split(",") if m]:
        if args.skip_existing and up_to_date(name, args.out):
            print(f"{name}: up to date", flush=True)
            continue
        t0 = time.time()
        tmp = os.path.join(args.out, f".{name}.tmp")
        os.makedirs(tmp, exist_ok=True)
        make(name, tmp, args.epochs)
        for f in sorted(os.listdir(tmp), key=lambda f: f.endswith(".json")):
            os.replace(os.path.join(tmp, f), os.path.join(args.out, f))  # .json last
        os.rmdir(tmp)
        print(f"{name}: {time.time() - t0:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
