#!/usr/bin/python3
"""Write models/fmnist_noop.onnx: a model that computes nothing, with the
Fashion-MNIST CNN's input and output ("input" [N,1,28,28] float32 -> "logits"
[N,10], the first 10 pixels of each image).

bench/run_all.py serves it exactly like fmnist_cnn to measure the floor of a
gRPC call on this machine (decode, queue, encode, transport, client) with no
model time in it: the ceiling any tiny model's gRPC throughput can reach.

Usage (Debian's interpreter has torch): /usr/bin/python3 tools/zoo/noop_model.py
"""

import os

import torch


class FirstTenPixels(torch.nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :10]


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = os.path.join(root, "models", "fmnist_noop.onnx")
    torch.onnx.export(FirstTenPixels(), torch.zeros(1, 1, 28, 28), out,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, opset_version=13)
    print("wrote", out)


if __name__ == "__main__":
    main()
