#!/usr/bin/python3
"""Export a BERT-style encoder to ONNX the way torch 1.13 emits it.

The model follows the structure of Hugging Face's BertModel (written out here,
no transformers package): word + position + token-type embeddings, LayerNorm,
N post-LN encoder layers (self-attention with an additive attention mask,
GELU feed-forward), no pooler. Weights are random (fixed seed) -- the model
exists to exercise the engine's op coverage, fusions and speed, not accuracy.
LayerNorm and GELU are written out as the primitive ops they are made of, as
in the original BERT code and many exported checkpoints, so the exported
graph contains the decomposed patterns (ReduceMean, Sub, Pow, Sqrt, Div / Erf)
that the engine's passes fuse back into oneDNN layer_normalization and
gelu_erf. torch 1.13 exports nn.LayerNorm in the same decomposed form at
opset < 17 anyway.

Inputs (int64, [batch, seq]): input_ids, token_type_ids, attention_mask
(1 = attend, 0 = padding). Output: last_hidden_state float32
[batch, seq, d_model].

Axes: the batch axis is dynamic; seq is fixed (--seq, default 128) because the
engine compiles one plan per input-shape set and a BERT server pads requests
to a fixed length anyway. The position-id slice and the reshapes into heads
still go through torch's Shape/Gather/Unsqueeze/Concat plumbing, which the
engine evaluates per plan (per batch size) at build time.

Writes into --out (created if missing):
  <name>.onnx                 the model (opset --opset, default 14)
  <name>_input_ids.npy        int64 [--samples, seq] sample inputs
  <name>_token_type_ids.npy   int64
  <name>_attention_mask.npy   int64 (each row: 1s then a random amount of 0 padding)
  <name>_output.npy           float32 torch outputs for those inputs
  <name>_calib_<input>.npy    more random inputs (--calib-samples rows), for
                              calibrating quantized variants apart from the
                              samples they are tested on
  <name>.json                 metadata (config, input/output names, opset, seed)

Usage (Debian's interpreter, which sees python3-torch):
  /usr/bin/python3 tools/zoo/bert_encoder.py --out build/models
  /usr/bin/python3 tools/zoo/bert_encoder.py --out tests/models/data --tiny
--tiny writes the committed unit-test twin (2 layers, d_model 64, 2 heads,
FFN 128, vocab 1000, seq 16) with the same op pattern. ~10 s for the full
model on one thread, most of it writing the ~36 MB file.
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import torch
from torch import nn

SEED = 0

FULL = dict(name="bert_encoder", layers=4, d_model=256, heads=4, ffn=1024,
            vocab=30522, max_positions=512, type_vocab=2, seq=128, samples=4,
            calib_samples=32)
TINY = dict(name="bert_tiny", layers=2, d_model=64, heads=2, ffn=128,
            vocab=1000, max_positions=32, type_vocab=2, seq=16, samples=3,
            calib_samples=16)


class LayerNorm(nn.Module):
    """LayerNorm over the last dim, written as the primitive ops."""

    def __init__(self, d, eps=1e-12):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.bias = nn.Parameter(torch.zeros(d))
        self.eps = eps

    def forward(self, x):
        u = x.mean(-1, keepdim=True)
        s = (x - u).pow(2).mean(-1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight * x + self.bias


def gelu(x):
    """The exact (erf) GELU as the original BERT code writes it."""
    return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


class Embeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg["d_model"]
        self.word = nn.Embedding(cfg["vocab"], d)
        self.position = nn.Embedding(cfg["max_positions"], d)
        self.token_type = nn.Embedding(cfg["type_vocab"], d)
        self.norm = LayerNorm(d)
        self.register_buffer("position_ids",
                             torch.arange(cfg["max_positions"]).expand((1, -1)))

    def forward(self, input_ids, token_type_ids):
        batch, seq_length = input_ids.size()
        position_ids = self.position_ids[:, :seq_length].expand(batch, seq_length)
        x = self.word(input_ids) + self.token_type(token_type_ids)
        x = x + self.position(position_ids)
        return self.norm(x)


class SelfAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg["d_model"]
        self.heads = cfg["heads"]
        self.head_dim = d // self.heads
        self.query = nn.Linear(d, d)
        self.key = nn.Linear(d, d)
        self.value = nn.Linear(d, d)
        self.output = nn.Linear(d, d)
        self.norm = LayerNorm(d)

    def split_heads(self, x):
        new_shape = x.size()[:-1] + (self.heads, self.head_dim)
        return x.view(new_shape).permute(0, 2, 1, 3)

    def forward(self, x, mask):
        q = self.split_heads(self.query(x))
        k = self.split_heads(self.key(x))
        v = self.split_heads(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        probs = torch.softmax(scores + mask, dim=-1)
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        ctx = ctx.view(ctx.size()[:-2] + (self.heads * self.head_dim,))
        return self.norm(self.output(ctx) + x)


class EncoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg["d_model"]
        self.attention = SelfAttention(cfg)
        self.intermediate = nn.Linear(d, cfg["ffn"])
        self.output = nn.Linear(cfg["ffn"], d)
        self.norm = LayerNorm(d)

    def forward(self, x, mask):
        x = self.attention(x, mask)
        h = gelu(self.intermediate(x))
        return self.norm(self.output(h) + x)


class BertEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embeddings = Embeddings(cfg)
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg["layers"]))

    def forward(self, input_ids, token_type_ids, attention_mask):
        # [B, S] -> [B, 1, 1, S]; 0 where attended, a large negative where padded.
        mask = attention_mask[:, None, None, :].to(torch.float32)
        mask = (1.0 - mask) * torch.finfo(torch.float32).min
        x = self.embeddings(input_ids, token_type_ids)
        for layer in self.layers:
            x = layer(x, mask)
        return x


def init_weights(model):
    """BERT's initialisation: N(0, 0.02) weights, zero biases, unit LayerNorm."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear):
            # BERT starts from zero biases; small random ones exercise the
            # bias paths (and keep torch from deduplicating them).
            nn.init.normal_(m.bias, std=0.02)
        if isinstance(m, LayerNorm):
            # Non-trivial affine parameters so gamma/beta are exercised.
            nn.init.normal_(m.weight, mean=1.0, std=0.1)
            nn.init.normal_(m.bias, std=0.1)


def sample_inputs(cfg, gen, n):
    s = cfg["seq"]
    input_ids = torch.randint(0, cfg["vocab"], (n, s), generator=gen)
    token_type_ids = torch.zeros(n, s, dtype=torch.int64)
    attention_mask = torch.ones(n, s, dtype=torch.int64)
    for i in range(n):
        # Sentence B starts somewhere in the middle; padding at the end of
        # every row but the first.
        split = int(torch.randint(1, s, (1,), generator=gen))
        token_type_ids[i, split:] = 1
        if i > 0:
            pad = int(torch.randint(1, s // 2, (1,), generator=gen))
            attention_mask[i, s - pad:] = 0
    return input_ids, token_type_ids, attention_mask


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--tiny", action="store_true", help="write the small twin")
    parser.add_argument("--opset", type=int, default=14, choices=(13, 14))
    parser.add_argument("--seq", type=int, help="sequence length (fixed)")
    parser.add_argument("--if-missing", action="store_true",
                        help="do nothing when the metadata file already exists "
                             "(the build's model fixture)")
    args = parser.parse_args()

    cfg = dict(TINY if args.tiny else FULL)
    if args.seq:
        cfg["seq"] = args.seq
    base = os.path.join(args.out, cfg["name"])
    if args.if_missing and os.path.exists(base + ".json"):
        print(f"{base}.json exists; not regenerating")
        return 0
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    model = BertEncoder(cfg)
    init_weights(model)
    model.eval()
    gen = torch.Generator().manual_seed(SEED + 1)
    inputs = sample_inputs(cfg, gen, cfg["samples"])
    calibration = sample_inputs(cfg, gen, cfg["calib_samples"])
    names = ["input_ids", "token_type_ids", "attention_mask"]

    os.makedirs(args.out, exist_ok=True)
    with torch.no_grad():
        output = model(*inputs)
        torch.onnx.export(
            model, inputs, base + ".onnx", opset_version=args.opset,
            input_names=names, output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch"} for n in names + ["last_hidden_state"]},
            do_constant_folding=True)
    for name, tensor, calib in zip(names, inputs, calibration):
        np.save(f"{base}_{name}.npy", tensor.numpy())
        np.save(f"{base}_calib_{name}.npy", calib.numpy())
    np.save(base + "_output.npy", output.numpy().astype(np.float32))
    meta = dict(cfg, opset=args.opset, seed=SEED, torch=torch.__version__,
                inputs=names, outputs=["last_hidden_state"],
                dynamic_axes={"batch": 0}, layer_norm_eps=1e-12)
    # The metadata file is written last: its presence means a complete set.
    with open(base + ".json", "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write("\n")
    size = os.path.getsize(base + ".onnx")
    print(f"wrote {base}.onnx ({size} bytes) and sample inputs/outputs "
          f"({cfg['samples']} x {cfg['seq']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
