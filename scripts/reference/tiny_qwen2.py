#!/usr/bin/env python3
"""Writes worker/tests/models/qwen2-tiny.gguf: a small Qwen2-architecture model with random weights,
for the worker's Qwen2 golden tests (worker/tests/golden_qwen2.rs) in CI, where no real Qwen2 GGUF
can be fetched. The weights mean nothing; the file exercises everything the architecture adds over
Llama: `qwen2.*` metadata, Q/K/V biases, half-split ("NEOX") RoPE, an untied output head, the
`qwen2` pre-tokenizer, a ChatML template with Qwen's default system message, and the quantisation
types real Qwen2.5 GGUFs mix (Q8_0, Q5_0, Q5_1, Q4_0; F32 norms and biases).

Deterministic: the same pinned packages (requirements.txt) write the same bytes. The file is
committed; `--check` regenerates it in memory and fails unless it is byte-identical to the
committed one (its sha256 is also pinned in worker/tests/golden_qwen2.rs).

Usage: /tmp/refvenv/bin/python scripts/reference/tiny_qwen2.py [--out PATH] [--check]
"""

import argparse
import collections
import hashlib
import os
import sys
import tempfile

import gguf
import numpy as np
from gguf import GGMLQuantizationType as T
from tokenizers import Regex, pre_tokenizers

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "..", "worker", "tests", "models", "qwen2-tiny.gguf")

# Qwen2's word splitting (llama.cpp's `qwen2` pre-tokenizer).
QWEN2_SPLIT = (
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

CORPUS = """The capital of France is Paris. The capital of Italy is Rome.
What is the capital of France? Paris is the capital of France.
You are a helpful assistant. You are Qwen, created by Alibaba Cloud.
Once upon a time there was a little model that could count: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10.
It's a small world, isn't it? We'll see what they've done, and I'd say it's fine.
user
assistant
system
"""

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MERGES = 160

# A ChatML template in the form of Qwen2.5's (newlines inside literals as `\n` escapes, as in a
# GGUF converted from tokenizer_config.json), with its default system message.
CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    "<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if not (message.role == 'system' and loop.first) %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# Hyper-parameters: grouped-query attention (4 query heads, 2 KV heads), head size 16.
LAYERS, D, HEADS, KV_HEADS, FFN, CONTEXT = 2, 64, 4, 2, 128, 256
THETA, EPS = 1_000_000.0, 1e-6
SEED = 2


def byte_alphabet():
    """GPT-2's byte-to-character map, in byte order."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def train_bpe():
    """Byte-level BPE on CORPUS: the most frequent adjacent pair merges first, ties broken by
    the pair's text, so the result depends on nothing but the corpus."""
    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    words = collections.Counter(w for w, _ in pre.pre_tokenize_str(CORPUS))
    seqs = {w: list(w) for w in words}
    vocab = byte_alphabet()
    known = set(vocab)
    merges = []
    for _ in range(MERGES):
        pairs = collections.Counter()
        for w, n in words.items():
            s = seqs[w]
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += n
        if not pairs:
            break
        (a, b), _ = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        merges.append(f"{a} {b}")
        if a + b not in known:
            vocab.append(a + b)
            known.add(a + b)
        for w in seqs:
            s, out, i = seqs[w], [], 0
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    return vocab, merges


def build(path):
    vocab, merges = train_bpe()
    tokens = vocab + SPECIALS
    types = [1] * len(vocab) + [3] * len(SPECIALS)
    n_vocab = len(tokens)
    rng = np.random.default_rng(SEED)

    w = gguf.GGUFWriter(path, "qwen2")
    w.add_name("qwen2-tiny (random weights, for tests)")
    w.add_context_length(CONTEXT)
    w.add_embedding_length(D)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_freq_base(THETA)
    w.add_layer_norm_rms_eps(EPS)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_eos_token_id(tokens.index("<|im_end|>"))
    w.add_pad_token_id(tokens.index("<|endoftext|>"))
    w.add_bos_token_id(tokens.index("<|endoftext|>"))
    w.add_add_bos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)

    def f32(name, a):
        w.add_tensor(name, np.asarray(a, dtype=np.float32))

    def quant(name, a, qtype):
        a = np.asarray(a, dtype=np.float32)
        w.add_tensor(name, gguf.quants.quantize(a, qtype), raw_dtype=qtype)

    def normal(rows, cols, scale):
        return rng.standard_normal((rows, cols)) * scale

    kvd = KV_HEADS * (D // HEADS)
    quant("token_embd.weight", normal(n_vocab, D, 1.0), T.Q8_0)
    for i in range(LAYERS):
        p = f"blk.{i}."
        f32(p + "attn_norm.weight", 1.0 + 0.1 * rng.standard_normal(D))
        # Q and K share a type (stacked on the CPU); V differs (kept as a separate part).
        quant(p + "attn_q.weight", normal(D, D, 1.5 / np.sqrt(D)), T.Q5_0)
        quant(p + "attn_k.weight", normal(kvd, D, 1.5 / np.sqrt(D)), T.Q5_0)
        quant(p + "attn_v.weight", normal(kvd, D, 1.0 / np.sqrt(D)), T.Q8_0)
        f32(p + "attn_q.bias", 0.5 * rng.standard_normal(D))
        f32(p + "attn_k.bias", 0.5 * rng.standard_normal(kvd))
        f32(p + "attn_v.bias", 0.2 * rng.standard_normal(kvd))
        quant(p + "attn_output.weight", normal(D, D, 1.0 / np.sqrt(D)), T.Q4_0)
        f32(p + "ffn_norm.weight", 1.0 + 0.1 * rng.standard_normal(D))
        quant(p + "ffn_gate.weight", normal(FFN, D, 1.0 / np.sqrt(D)), T.Q5_1)
        quant(p + "ffn_up.weight", normal(FFN, D, 1.0 / np.sqrt(D)), T.Q5_1)
        quant(p + "ffn_down.weight", normal(D, FFN, 1.0 / np.sqrt(FFN)), T.Q8_0 if i else T.Q4_0)
    f32("output_norm.weight", 1.0 + 0.1 * rng.standard_normal(D))
    # An untied head, scaled so the logits spread over several units (a peaked softmax).
    quant("output.weight", normal(n_vocab, D, 3.0 / np.sqrt(D)), T.Q8_0)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true",
                    help="regenerate into a temporary file and compare with --out")
    args = ap.parse_args()
    if args.check:
        with tempfile.TemporaryDirectory() as d:
            fresh = os.path.join(d, "qwen2-tiny.gguf")
            build(fresh)
            want, got = sha256(fresh), sha256(args.out)
        if want != got:
            sys.exit(f"{args.out} is stale: regenerated sha256 {want}, committed {got}")
        print(f"{args.out} matches its generator (sha256 {got})")
        return
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    build(args.out)
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes, sha256 {sha256(args.out)})")


if __name__ == "__main__":
    main()
