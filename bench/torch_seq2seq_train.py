#!/usr/bin/env python3
"""PyTorch peer of bench/transformer_train_step (tcat): the training-step speed of an encoder-decoder
Transformer of any size, built from PyTorch's own layers so that it matches tcat's model:

- nn.TransformerEncoderLayer / nn.TransformerDecoderLayer, post-norm (norm_first=False), batch_first,
  stacked without a final LayerNorm (nn.Transformer would add one; tcat's post-norm models have none);
- dropout on the embeddings, the residual branches and the FFN hidden layer, none on the attention
  probabilities (tcat has none there, so each MultiheadAttention's dropout is set to 0);
- one embedding table for source, target and the output projection, scaled by sqrt(d_model),
  sinusoidal positions;
- label-smoothed cross-entropy over the target tokens (padding ignored), Adam (0.9, 0.98, 1e-9).
One step = zero_grad + forward + loss + backward + optimizer.step. The batch is random ids without
padding (so no padding masks), the same batch every step.

usage: /usr/bin/python3 bench/torch_seq2seq_train.py [--threads 1] [--d-model 512 --heads 8 --d-ff 2048
       --layers 6 --vocab 32000 --activation relu --dropout 0.1] [--batch 32 --src-len 32 --tgt-len 32]
       [--steps 5 --warmup 2] [--bf16]
       (run with LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp, see bench/compare_train_step.sh)
Prints one JSON line: step_ms_median, step_ms_min, tgt_tok_s (target tokens per second), params, cfg.
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn

PAD = 0


class Seq2Seq(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.d = a.d_model
        self.embed = nn.Embedding(a.vocab, a.d_model)
        nn.init.normal_(self.embed.weight, std=a.d_model ** -0.5)
        positions = torch.arange(a.max_len, dtype=torch.float32).unsqueeze(1)
        freq = torch.exp(torch.arange(0, a.d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / a.d_model))
        table = torch.zeros(a.max_len, a.d_model)
        table[:, 0::2], table[:, 1::2] = torch.sin(positions * freq), torch.cos(positions * freq)
        self.register_buffer("positions", table)
        self.drop = nn.Dropout(a.dropout)
        layer = dict(d_model=a.d_model, nhead=a.heads, dim_feedforward=a.d_ff, dropout=a.dropout,
                     activation=a.activation, batch_first=True, norm_first=False)
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(**layer), a.layers, enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(**layer), a.layers)
        for m in self.modules():
            if isinstance(m, nn.MultiheadAttention):
                m.dropout = 0.0

    def embed_tokens(self, ids):
        return self.drop(self.embed(ids) * math.sqrt(self.d) + self.positions[: ids.shape[1]])

    def forward(self, src, tgt_in):
        t = tgt_in.shape[1]
        causal = torch.triu(torch.full((t, t), float("-inf")), diagonal=1)
        memory = self.encoder(self.embed_tokens(src))
        return self.decoder(self.embed_tokens(tgt_in), memory, tgt_mask=causal) @ self.embed.weight.t()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--d-model", type=int, default=512)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--d-ff", type=int, default=2048)
    ap.add_argument("--layers", type=int, default=6, help="encoder layers = decoder layers")
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--activation", choices=["relu", "gelu"], default="relu")
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--src-len", type=int, default=32)
    ap.add_argument("--tgt-len", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--bf16", action="store_true", help="CPU autocast to bfloat16 (fp32 master weights)")
    a = ap.parse_args()
    a.max_len = max(a.src_len, a.tgt_len)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = Seq2Seq(a).train()
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-9)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=a.label_smoothing, ignore_index=PAD)
    src = torch.randint(3, a.vocab, (a.batch, a.src_len))
    tgt = torch.randint(3, a.vocab, (a.batch, a.tgt_len + 1))
    tgt_in, tgt_out = tgt[:, :-1], tgt[:, 1:]

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            logits = model(src, tgt_in)
            loss = loss_fn(logits.float().reshape(-1, a.vocab), tgt_out.reshape(-1))
        loss.backward()
        opt.step()

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    cfg = {k: v for k, v in vars(a).items() if k != "max_len"}
    print(json.dumps(dict(bench="torch_seq2seq_train", torch=torch.__version__, threads=torch.get_num_threads(),
                          cfg=cfg, params=params, step_ms_median=median * 1e3, step_ms_min=min(times) * 1e3,
                          tgt_tok_s=a.batch * a.tgt_len / median)))


if __name__ == "__main__":
    main()
