#!/usr/bin/env python3
"""PyTorch eager peer for translation decoding: the workload of bench/translate_decode (tcat) and of
../shared/bench/peers/bench_hf.py (HF transformers MarianMTModel.generate), without transformers.

Model: opus-mt-en-de's shape written in plain torch.nn, random weights (torch.manual_seed(0); normal
std 0.02 and zero biases, HF's Marian init): encoder 6 + decoder 6 layers, d_model 512, 8 heads, FFN
2048 with swish (SiLU), post-norm (LayerNorm after each residual add, as Marian/BART; no final norm),
sinusoidal positions (sin in the first half of the features, cos in the second, as Marian), token
embeddings scaled by sqrt(d_model), one table shared by encoder, decoder and the output projection,
vocabulary 58101 (pad = decoder start = 58100, </s> = 0). fp32.

Search: the encoder runs once per batch; the cross-attention keys and values of every decoder layer
are computed once from its output (and repeated for the beams of a sentence); the decoder then runs
one position per step with a self-attention KV cache (concatenated each step, as HF does). Each step
bans the pad id and </s>, so every sentence produces exactly L tokens (L decoder steps, no early
stop; HF instead forces </s> as the L-th token, which changes nothing in the work done).
Greedy: argmax. Beam search (K beams): log_softmax, add to the beam's accumulated log-probability,
top K over the K * vocab continuations of each sentence (the first step expands only beam 0, as HF),
then reorder the self-attention caches and the token history by beam origin (index_select, as HF's
_reorder_cache). With </s> banned no hypothesis finishes early, so HF's 2K candidates and its
BeamScorer bookkeeping are not needed; this peer does what HF generate does per step minus its
Python-level overhead (logits processors, stopping criteria, scorer objects).

Plan: bench/data/translation_inputs.json (bench/translation_plan.py): batch 32 = all 512 sentences in
length-sorted chunks of 32, L = longest source in the chunk + 2; batch 1 = the first 64 sentences,
L = source length + 2. Inputs are right-padded with the pad id and masked. Timed: the median of RUNS
passes over the whole plan after one warm-up batch; the time includes encoder and search.

usage: /usr/bin/python3 bench/torch_translate.py THREADS BATCH BEAM [RUNS] [--inputs PATH] [--max-batches N]
       (run with LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp so torch's BLAS is OpenBLAS,
       see bench/compare_translate.sh). --max-batches N times only the first N batches of the plan
       (quick checks; the figures are then not comparable with full-plan ones).
Prints one JSON line: engine, threads, batch, beam, sentences, target_tokens, times, median_s,
sent_per_s, tok_per_s (plus torch, blas, batches).
"""
import argparse
import json
import math
import os
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB, PAD, EOS = 58101, 58100, 0
D_MODEL, HEADS, D_FF, LAYERS = 512, 8, 2048, 6
DEFAULT_INPUTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "translation_inputs.json")


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(D_MODEL, D_MODEL) for _ in range(4))
        self.head_dim = D_MODEL // HEADS
        self.scale = self.head_dim ** -0.5

    def heads(self, x):  # [N, T, d] -> [N, H, T, hd]
        return x.view(x.shape[0], x.shape[1], HEADS, self.head_dim).transpose(1, 2)

    def keys_values(self, x):
        return self.heads(self.k(x)), self.heads(self.v(x))

    def attend(self, x, k, v, bias):
        """x [N, T, d] attends to k, v [N, H, S, hd]; bias [N, 1, 1, S] (0 or -inf) or None."""
        scores = torch.matmul(self.heads(self.q(x)) * self.scale, k.transpose(-1, -2))
        if bias is not None:
            scores = scores + bias
        ctx = torch.matmul(scores.softmax(-1), v)
        return self.o(ctx.transpose(1, 2).reshape(x.shape[0], x.shape[1], D_MODEL))


class FeedForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.up, self.down = nn.Linear(D_MODEL, D_FF), nn.Linear(D_FF, D_MODEL)

    def forward(self, x):
        return self.down(F.silu(self.up(x)))


class EncoderLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn, self.ffn = Attention(), FeedForward()
        self.norm1, self.norm2 = nn.LayerNorm(D_MODEL), nn.LayerNorm(D_MODEL)

    def forward(self, x, bias):
        x = self.norm1(x + self.attn.attend(x, *self.attn.keys_values(x), bias))
        return self.norm2(x + self.ffn(x))


class DecoderLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.self_attn, self.cross_attn, self.ffn = Attention(), Attention(), FeedForward()
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(D_MODEL) for _ in range(3))

    def step(self, x, cache, cross_kv, memory_bias):
        """x [N, 1, d]; cache = [k, v] of the positions so far (None at the first step), extended in place."""
        k, v = self.self_attn.keys_values(x)
        if cache[0] is not None:
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        cache[0], cache[1] = k, v
        x = self.norm1(x + self.self_attn.attend(x, k, v, None))
        x = self.norm2(x + self.cross_attn.attend(x, *cross_kv, memory_bias))
        return self.norm3(x + self.ffn(x))


def sinusoids(positions, d):
    pos = torch.arange(positions, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(d // 2, dtype=torch.float32) * (-2 * math.log(10000.0) / d))
    return torch.cat([torch.sin(pos * freq), torch.cos(pos * freq)], dim=1)


class Marian(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, D_MODEL)
        self.encoder = nn.ModuleList(EncoderLayer() for _ in range(LAYERS))
        self.decoder = nn.ModuleList(DecoderLayer() for _ in range(LAYERS))
        self.register_buffer("positions", sinusoids(512, D_MODEL))
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def encode(self, src, bias):
        x = self.embed(src) * math.sqrt(D_MODEL) + self.positions[: src.shape[1]]
        for layer in self.encoder:
            x = layer(x, bias)
        return x

    def cross_keys_values(self, memory, repeats):
        """Per decoder layer, the cross-attention keys and values, each row repeated for its beams."""
        kv = [layer.cross_attn.keys_values(memory) for layer in self.decoder]
        if repeats == 1:
            return kv
        return [(k.repeat_interleave(repeats, 0), v.repeat_interleave(repeats, 0)) for k, v in kv]

    def step(self, tokens, position, caches, cross, memory_bias):
        """tokens [N] at `position` -> logits [N, vocab]."""
        x = (self.embed(tokens) * math.sqrt(D_MODEL) + self.positions[position]).unsqueeze(1)
        for layer, cache, kv in zip(self.decoder, caches, cross):
            x = layer.step(x, cache, kv, memory_bias)
        return F.linear(x[:, 0], self.embed.weight)


def ban_special(scores):
    scores[:, PAD] = -math.inf
    scores[:, EOS] = -math.inf


def greedy(model, src, bias, length):
    cross = model.cross_keys_values(model.encode(src, bias), 1)
    caches = [[None, None] for _ in model.decoder]
    tokens = torch.full((src.shape[0],), PAD, dtype=torch.long)
    out = []
    for t in range(length):
        logits = model.step(tokens, t, caches, cross, bias)
        ban_special(logits)
        tokens = logits.argmax(-1)
        out.append(tokens)
    return torch.stack(out, 1)


def beam_search(model, src, bias, length, beam):
    batch = src.shape[0]
    cross = model.cross_keys_values(model.encode(src, bias), beam)
    bias = bias.repeat_interleave(beam, 0)
    caches = [[None, None] for _ in model.decoder]
    tokens = torch.full((batch * beam,), PAD, dtype=torch.long)
    scores = torch.zeros(batch, beam)
    scores[:, 1:] = -1e9  # all beams start equal: expand only the first one
    history = torch.empty(batch * beam, 0, dtype=torch.long)
    row_base = (torch.arange(batch) * beam).unsqueeze(1)
    for t in range(length):
        logp = model.step(tokens, t, caches, cross, bias).log_softmax(-1)
        ban_special(logp)
        candidates = (scores.view(-1, 1) + logp).view(batch, beam * VOCAB)
        scores, best = candidates.topk(beam, dim=1)
        origin = (row_base + torch.div(best, VOCAB, rounding_mode="floor")).view(-1)
        tokens = (best % VOCAB).view(-1)
        history = torch.cat([history.index_select(0, origin), tokens.unsqueeze(1)], 1)
        for cache in caches:
            cache[0], cache[1] = cache[0].index_select(0, origin), cache[1].index_select(0, origin)
    return history.view(batch, beam, length)[:, 0]


def blas_libraries():
    """The BLAS libraries loaded into this process (torch 1.13 from Debian reports BLAS_INFO=generic and
    reaches OpenBLAS only through LD_LIBRARY_PATH)."""
    with open("/proc/self/maps") as f:
        return sorted({line.split()[-1] for line in f if "blas" in line.split()[-1]})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("threads", type=int)
    ap.add_argument("batch", type=int, choices=[1, 32])
    ap.add_argument("beam", type=int)
    ap.add_argument("runs", type=int, nargs="?", default=3)
    ap.add_argument("--inputs", default=DEFAULT_INPUTS)
    ap.add_argument("--max-batches", type=int, default=0, help="time only the first N batches of the plan")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = Marian().eval()

    with open(a.inputs) as f:
        inputs = json.load(f)
    assert (inputs["vocab"], inputs["pad_id"], inputs["eos_id"]) == (VOCAB, PAD, EOS), "plan of another vocabulary"
    ids, plan = inputs["ids"], inputs["plans"][str(a.batch)]
    if a.max_batches:
        plan = plan[: a.max_batches]
    batches = []
    for chunk in plan:
        rows = [ids[i] for i in chunk["rows"]]
        src = torch.full((len(rows), max(map(len, rows))), PAD, dtype=torch.long)
        for r, row in enumerate(rows):
            src[r, : len(row)] = torch.tensor(row)
        bias = torch.zeros(src.shape).masked_fill(src == PAD, -math.inf).view(len(rows), 1, 1, -1)
        batches.append((src, bias, chunk["target_len"]))

    def decode(src, bias, length):
        out = greedy(model, src, bias, length) if a.beam == 1 else beam_search(model, src, bias, length, a.beam)
        assert out.shape == (src.shape[0], length), (out.shape, length)
        assert ((out != PAD) & (out != EOS)).all()

    def timed_pass():
        t0 = time.perf_counter()
        for batch in batches:
            decode(*batch)
        return time.perf_counter() - t0

    with torch.inference_mode():
        decode(*batches[0])  # warm-up
        times = [timed_pass() for _ in range(a.runs)]
    median = statistics.median(times)
    sentences = sum(src.shape[0] for src, _, _ in batches)
    target_tokens = sum(src.shape[0] * length for src, _, length in batches)
    print(json.dumps(dict(engine="torch-eager", threads=a.threads, batch=a.batch, beam=a.beam, sentences=sentences,
                          target_tokens=target_tokens, times=[round(t, 3) for t in times], median_s=round(median, 3),
                          sent_per_s=round(sentences / median, 2), tok_per_s=round(target_tokens / median, 1),
                          torch=torch.__version__, blas=blas_libraries(), batches=len(batches))))


if __name__ == "__main__":
    main()
