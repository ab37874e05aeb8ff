#!/usr/bin/env python3
"""Independent reference for the worker's golden tests.

Computes, in float64 numpy and without any of the worker's code, the values the Rust engine must
reproduce, and writes them to worker/tests/golden/*.json:

- all-MiniLM-L6-v2 sentence embeddings (BERT encoder, mean pooling over the mask, L2 norm);
- SmolLM2-135M-Instruct (Llama) first-step logits and greedy continuations, reading the GGUF with
  the `gguf` package (its own dequantisers) and running the forward pass in numpy;
- the same for the tiny random-weight Qwen2 GGUF (worker/tests/models/qwen2-tiny.gguf, written by
  tiny_qwen2.py): Q/K/V biases, half-split RoPE, untied head, Qwen2's pre-tokenizer.

`--only qwen2` (or minilm, smollm2; comma-separated) regenerates only those files.

Usage (models fetched by scripts/fetch-models):
    python3 -m venv /tmp/refvenv && /tmp/refvenv/bin/pip install -r scripts/reference/requirements.txt
    /tmp/refvenv/bin/python scripts/reference/golden.py [--models DIR] [--out worker/tests/golden]
"""

import argparse
import json
import math
import os
import struct

import gguf
import numpy as np
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

MINILM_SENTENCES = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog",
    "Rust is a systems programming language",
]

# (name, raw prompt text, max new tokens)
SMOLLM_CASES = [
    ("capital_raw", "The capital of France is", 8),
    (
        "capital_chat",
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
        12,
    ),
    ("count", "1, 2, 3, 4,", 10),
    # Long enough (64 tokens) that the engine's prefill takes its many-token kernels
    # (AMX where the CPU has it) rather than the decode ones.
    (
        "long_chat",
        "<|im_start|>system\nYou are a helpful assistant. Answer in one short sentence, without "
        "lists, and do not repeat the question.<|im_end|>\n<|im_start|>user\nParis, Berlin, Madrid, "
        "Rome, Lisbon, Vienna and Warsaw are all European capitals. Which of these cities is the "
        "capital of Italy?<|im_end|>\n<|im_start|>assistant\n",
        6,
    ),
]
EOS_ID = 2

QWEN2_TINY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "worker", "tests",
                          "models", "qwen2-tiny.gguf")
QWEN2_SPLIT = (
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
QWEN2_CASES = [
    ("capital_raw", "The capital of France is", 8),
    (
        "capital_chat",
        f"<|im_start|>system\n{QWEN2_SYSTEM}<|im_end|>\n"
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
        10,
    ),
    ("count", "1, 2, 3, 4,", 10),
    ("unicode", "Caf\u0065\u0301 d\u00e9j\u00e0 vu \u2014 isn't it?\n\n  It's 2024!", 6),
]


# ---------------------------------------------------------------- MiniLM


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":  # only `position_ids` (I64), which the encoder does not need
            continue
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype="<f4").reshape(info["shape"]).astype(np.float64)
    return out


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu(x):
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def minilm_embed(model_dir, sentence):
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    w = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.no_padding()
    ids = tok.encode(sentence).ids
    eps = cfg["layer_norm_eps"]
    heads = cfg["num_attention_heads"]
    n = len(ids)
    p = "embeddings."
    x = w[p + "word_embeddings.weight"][ids] + w[p + "position_embeddings.weight"][:n]
    x = x + w[p + "token_type_embeddings.weight"][0]
    x = layer_norm(x, w[p + "LayerNorm.weight"], w[p + "LayerNorm.bias"], eps)
    d = x.shape[1]
    hd = d // heads
    for layer in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{layer}."

        def lin(name, v):
            return v @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        q = lin("attention.self.query", x).reshape(n, heads, hd).transpose(1, 0, 2)
        k = lin("attention.self.key", x).reshape(n, heads, hd).transpose(1, 0, 2)
        v = lin("attention.self.value", x).reshape(n, heads, hd).transpose(1, 0, 2)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
        s = np.exp(s - s.max(-1, keepdims=True))
        s = s / s.sum(-1, keepdims=True)
        a = (s @ v).transpose(1, 0, 2).reshape(n, d)
        x = layer_norm(lin("attention.output.dense", a) + x,
                       w[p + "attention.output.LayerNorm.weight"],
                       w[p + "attention.output.LayerNorm.bias"], eps)
        h = gelu(lin("intermediate.dense", x))
        x = layer_norm(lin("output.dense", h) + x,
                       w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
    e = x.mean(0)
    return ids, e / np.linalg.norm(e)


# ---------------------------------------------------------------- SmolLM2


def field(reader, key):
    return reader.fields[key].contents()


def smollm_tokenizer(reader):
    tokens = field(reader, "tokenizer.ggml.tokens")
    merges = [tuple(m.split(" ", 1)) for m in field(reader, "tokenizer.ggml.merges")]
    types = field(reader, "tokenizer.ggml.token_type")
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab, merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True) for t, ty in zip(tokens, types) if ty == 3])
    return tok


def qwen2_tokenizer(reader):
    tokens = field(reader, "tokenizer.ggml.tokens")
    merges = [tuple(m.split(" ", 1)) for m in field(reader, "tokenizer.ggml.merges")]
    types = field(reader, "tokenizer.ggml.token_type")
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab, merges))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True) for t, ty in zip(tokens, types) if ty == 3])
    return tok


class Llama:
    """The llama architecture, and qwen2 (Q/K/V biases, half-split RoPE, untied head)."""

    def __init__(self, path):
        r = gguf.GGUFReader(path)
        self.reader = r
        self.arch = field(r, "general.architecture")
        a = self.arch
        self.n_layers = field(r, f"{a}.block_count")
        self.heads = field(r, f"{a}.attention.head_count")
        self.kv_heads = field(r, f"{a}.attention.head_count_kv")
        self.eps = field(r, f"{a}.attention.layer_norm_rms_epsilon")
        self.theta = field(r, f"{a}.rope.freq_base")
        self.eos = {field(r, "tokenizer.ggml.eos_token_id")}
        if a == "qwen2":
            tokens = field(r, "tokenizer.ggml.tokens")
            self.eos |= {tokens.index(t) for t in ("<|im_end|>", "<|endoftext|>") if t in tokens}
        else:
            self.eos = {EOS_ID}
        self.w = {}
        for t in r.tensors:
            a = gguf.quants.dequantize(t.data, t.tensor_type)
            shape = [int(s) for s in reversed(t.shape)]  # GGUF lists the fastest dimension first
            self.w[t.name] = np.asarray(a, dtype=np.float64).reshape(shape)
        self.d = self.w["token_embd.weight"].shape[1]
        self.hd = self.d // self.heads

    def rms(self, x, w):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + self.eps) * w

    def rope(self, x, pos):
        hd = x.shape[-1]
        inv = self.theta ** (-np.arange(0, hd, 2) / hd)
        ang = np.outer(pos, inv)  # [n, hd/2]
        c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        if self.arch == "qwen2":
            # Element i rotates with i + hd/2 (HF's rotate_half; llama.cpp's NEOX mode for qwen2,
            # whose converter keeps Q and K unpermuted).
            x0, x1 = x[..., : hd // 2], x[..., hd // 2 :]
            return np.concatenate([x0 * c - x1 * s, x0 * s + x1 * c], axis=-1)
        # Adjacent pairs (2i, 2i+1) rotate together: llama.cpp's "normal" RoPE for the llama arch.
        x0, x1 = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = x0 * c - x1 * s
        out[..., 1::2] = x0 * s + x1 * c
        return out

    def forward(self, ids, cache, start):
        """Runs tokens `ids` at positions start.. and returns logits of the last one."""
        w = self.w
        n = len(ids)
        pos = np.arange(start, start + n)
        x = w["token_embd.weight"][ids]
        group = self.heads // self.kv_heads
        for i in range(self.n_layers):
            p = f"blk.{i}."
            h = self.rms(x, w[p + "attn_norm.weight"])
            def proj(name):
                y = h @ w[p + name + ".weight"].T
                return y + w[p + name + ".bias"] if p + name + ".bias" in w else y

            q = proj("attn_q").reshape(n, self.heads, self.hd)
            k = proj("attn_k").reshape(n, self.kv_heads, self.hd)
            v = proj("attn_v").reshape(n, self.kv_heads, self.hd)
            q, k = self.rope(q, pos), self.rope(k, pos)
            if i in cache:
                k = np.concatenate([cache[i][0], k])
                v = np.concatenate([cache[i][1], v])
            cache[i] = (k, v)
            t = k.shape[0]
            out = np.empty((n, self.heads, self.hd))
            for hh in range(self.heads):
                kh, vh = k[:, hh // group], v[:, hh // group]
                s = q[:, hh] @ kh.T / math.sqrt(self.hd)  # [n, t]
                mask = np.arange(t)[None, :] > (start + np.arange(n))[:, None]
                s = np.where(mask, -np.inf, s)
                s = np.exp(s - s.max(-1, keepdims=True))
                s = s / s.sum(-1, keepdims=True)
                out[:, hh] = s @ vh
            x = x + out.reshape(n, self.d) @ w[p + "attn_output.weight"].T
            h = self.rms(x, w[p + "ffn_norm.weight"])
            g = h @ w[p + "ffn_gate.weight"].T
            u = h @ w[p + "ffn_up.weight"].T
            x = x + ((g / (1 + np.exp(-g))) * u) @ w[p + "ffn_down.weight"].T
        x = self.rms(x[-1], w["output_norm.weight"])
        return w.get("output.weight", w["token_embd.weight"]) @ x

    def greedy(self, ids, max_new):
        cache = {}
        logits = self.forward(ids, cache, 0)
        first = logits
        out = []
        self.margins = []  # top-1 minus top-2 logit at each step: how robust the greedy pick is
        pos = len(ids)
        for _ in range(max_new):
            nxt = int(np.argmax(logits))
            top2 = np.sort(logits)[-2:]
            self.margins.append(float(top2[1] - top2[0]))
            out.append(nxt)
            if nxt in self.eos:
                break
            logits = self.forward([nxt], cache, pos)
            pos += 1
        return first, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=os.environ.get(
        "COCOON_MODELS_DIR", os.path.expanduser("~/.cache/cocoon/models")))
    ap.add_argument("--out", default=os.path.join(
        os.path.dirname(__file__), "..", "..", "worker", "tests", "golden"))
    ap.add_argument("--only", default="minilm,smollm2,qwen2")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    only = set(args.only.split(","))
    if "minilm" in only:
        write_minilm(args)
    if "smollm2" in only:
        write_smollm2(args)
    if "qwen2" in only:
        write_qwen2(args)


def generation_case(model, tok, name, prompt, max_new):
    """One golden generation case (what worker/tests/common's `cases` reads) and the first-step
    logits."""
    ids = tok.encode(prompt).ids
    first, out = model.greedy(ids, max_new)
    top = np.argsort(-first)[:20]
    return {
        "name": name,
        "prompt": prompt,
        "prompt_tokens": ids,
        "max_new_tokens": max_new,
        "first_logits_top20": [[int(i), float(first[i])] for i in top],
        "first_logits_head64": [float(v) for v in first[:64]],
        "greedy_tokens": out,
        "greedy_text": tok.decode(out, skip_special_tokens=True),
    }, first


def write_qwen2(args):
    model = Llama(QWEN2_TINY)
    tok = qwen2_tokenizer(model.reader)
    cases = []
    for name, prompt, max_new in QWEN2_CASES:
        case, first = generation_case(model, tok, name, prompt, max_new)
        case["min_greedy_margin"] = min(model.margins)
        cases.append(case)
        print(f"qwen2 {name}: {case['prompt_tokens']} -> {case['greedy_tokens']} "
              f"{case['greedy_text']!r} (logit std {first.std():.2f}, "
              f"min margin {min(model.margins):.3f})")
    with open(os.path.join(args.out, "qwen2_tiny.json"), "w") as f:
        json.dump({"model": "qwen2-tiny.gguf", "system": QWEN2_SYSTEM,
                   "eos": sorted(model.eos), "cases": cases}, f, indent=1)


def write_minilm(args):
    mdir = os.path.join(args.models, "all-minilm-l6-v2")
    cases = []
    for s in MINILM_SENTENCES:
        ids, e = minilm_embed(mdir, s)
        cases.append({"text": s, "token_ids": ids, "embedding": [float(v) for v in e]})
    with open(os.path.join(args.out, "minilm.json"), "w") as f:
        json.dump({"model": "all-MiniLM-L6-v2", "cases": cases}, f, indent=1)
    print("minilm: cos(0,1) =", float(np.dot(cases[0]["embedding"], cases[1]["embedding"])))


def write_smollm2(args):
    path = os.path.join(args.models, "smollm2-135m-instruct", "SmolLM2-135M-Instruct.Q4_1.gguf")
    llama = Llama(path)
    tok = smollm_tokenizer(llama.reader)
    cases = []
    for name, prompt, max_new in SMOLLM_CASES:
        case, _ = generation_case(llama, tok, name, prompt, max_new)
        cases.append(case)
        print(f"smollm2 {name}: {case['prompt_tokens']} -> {case['greedy_tokens']} "
              f"{case['greedy_text']!r}")
    with open(os.path.join(args.out, "smollm2.json"), "w") as f:
        json.dump({"model": "SmolLM2-135M-Instruct.Q4_1.gguf", "cases": cases}, f, indent=1)


if __name__ == "__main__":
    main()
