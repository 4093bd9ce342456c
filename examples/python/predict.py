#!/usr/bin/python3
"""Sends one Fashion-MNIST test image to a running quantserve and prints the
top-3 classes with their names.

    apt-get install python3-grpcio python3-grpc-tools python3-numpy
    examples/python/generate_stubs.sh
    /usr/bin/python3 examples/python/predict.py --address localhost:8500 --index 0
"""
import argparse
import gzip
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def read_idx(path, magic):
    """Returns (dims, payload bytes) of a gzipped IDX file of uint8 data."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    got, = struct.unpack(">I", data[:4])
    if got != magic:
        sys.exit(f"{path}: IDX magic {got:#x}, expected {magic:#x}")
    rank = magic & 0xFF
    dims = struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank])
    return dims, data[4 + 4 * rank:]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--address", default="localhost:8500", help="server HOST:PORT")
    p.add_argument("--model", default="fmnist_cnn")
    p.add_argument("--variant", default="", help="default: the model's default variant")
    p.add_argument("--index", type=int, default=0, help="which test image (0..9999)")
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--stubs", default=os.path.join(HERE, "gen"),
                   help="directory written by generate_stubs.sh")
    args = p.parse_args()

    try:
        import grpc
        import numpy as np
    except ImportError as e:
        sys.exit(f"{e}: apt-get install python3-grpcio python3-numpy")
    sys.path.insert(0, args.stubs)
    try:
        from quantserve.v1 import inference_pb2 as pb, inference_pb2_grpc as pb_grpc
    except ImportError as e:
        sys.exit(f"{e}: run {os.path.join(HERE, 'generate_stubs.sh')} first")

    dims, pixels = read_idx(os.path.join(args.data_dir, "t10k-images-idx3-ubyte.gz"), 0x803)
    _, labels = read_idx(os.path.join(args.data_dir, "t10k-labels-idx1-ubyte.gz"), 0x801)
    if not 0 <= args.index < dims[0]:
        sys.exit(f"--index must be in 0..{dims[0] - 1}")
    images = np.frombuffer(pixels, dtype=np.uint8).reshape(dims)
    image = images[args.index].astype(np.float32) / 255.0  # the model's preprocessing
    label = labels[args.index]

    stub = pb_grpc.InferenceServiceStub(grpc.insecure_channel(args.address))
    try:
        # The input's name and shape come from the server: [-1, 1, 28, 28].
        meta = stub.GetModelMetadata(pb.GetModelMetadataRequest(model=args.model), timeout=10)
        spec = meta.inputs[0]
        shape = [1] + list(spec.shape[1:])
        request = pb.PredictRequest(model=args.model, variant=args.variant, top_k=3)
        request.inputs.add(name=spec.name, datatype=pb.FP32, shape=shape,
                           raw_data=image.reshape(shape).astype("<f4").tobytes())
        response = stub.Predict(request, timeout=10)
    except grpc.RpcError as e:
        sys.exit(f"{e.code().name}: {e.details()}")

    logits = np.array(response.outputs[0].float_data, dtype=np.float64)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    print(f"image #{args.index} (label {label} {CLASSES[label]}), "
          f"model {response.model}, variant {response.variant}:")
    top = response.top_k[0]
    for rank, (cls, score) in enumerate(zip(top.indices, top.scores), 1):
        name = CLASSES[cls] if 0 <= cls < len(CLASSES) else "?"
        print(f"  {rank}. {cls} {name:<12} score {score:8.3f}  p={probs[cls]:.3f}")


if __name__ == "__main__":
    main()
