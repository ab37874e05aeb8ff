#!/usr/bin/env python3
"""Independent reference for the worker's dequantisers: random blocks of every quantised ggml type
the engine reads, dequantised by the `gguf` package's own numpy code, written to
worker/tests/golden/quant_blocks.json (raw block bytes in hex, expected f32 values).

Usage: python3 -m venv /tmp/refvenv && /tmp/refvenv/bin/pip install gguf==0.19.0 numpy
       /tmp/refvenv/bin/python scripts/reference/quant_blocks.py [--out worker/tests/golden]
"""

import argparse
import json
import os

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize

# type -> byte offsets of the f16 scale fields, kept finite and small so values are comparable.
TYPES = {
    "Q4_0": (T.Q4_0, 18, [0]),
    "Q4_1": (T.Q4_1, 20, [0, 2]),
    "Q8_0": (T.Q8_0, 34, [0]),
    "Q4_K": (T.Q4_K, 144, [0, 2]),
    "Q6_K": (T.Q6_K, 210, [208]),
    # Appended after the others so their blocks (drawn first from the seeded generator) stay put.
    "Q5_0": (T.Q5_0, 22, [0]),
    "Q5_1": (T.Q5_1, 24, [0, 2]),
}
BLOCKS = 3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="worker/tests/golden")
    args = ap.parse_args()
    rng = np.random.default_rng(15)
    out = {}
    for name, (qtype, size, scale_offsets) in TYPES.items():
        raw = rng.integers(0, 256, size=(BLOCKS, size), dtype=np.uint8)
        for b in range(BLOCKS):
            for off in scale_offsets:
                raw[b, off : off + 2] = np.frombuffer(
                    np.float16(rng.uniform(-0.05, 0.05)).tobytes(), dtype=np.uint8
                )
        values = dequantize(raw.reshape(-1), qtype).astype(np.float32).reshape(-1)
        out[name] = {"hex": raw.tobytes().hex(), "values": [float(v) for v in values]}
    path = os.path.join(args.out, "quant_blocks.json")
    with open(path, "w") as f:
        json.dump(out, f)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
