#!/usr/bin/env python3
"""Generate PyTorch reference fixtures for tcat's encoder-decoder Transformer.

Usage (Debian's python with torch 1.13):
  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/bin/python3 \
      tools/make_transformer_fixtures.py --out tests/fixtures/transformer

Writes <variant>.safetensors for the variants "postnorm" and "prenorm": inputs, initial
parameters, logits, loss, encoder output, gradients, and parameters after two Adam steps.
See tests/fixtures/transformer/README.md for the tensor list and conventions.
"""
import argparse
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIG = dict(vocab=40, d_model=64, heads=4, enc_layers=2, dec_layers=2, d_ff=128,
              final_norm=True, eps=1e-5, pad_id=0, label_smoothing=0.1, activation="relu",
              emb_scale=math.sqrt(64), positions="sinusoidal")
VARIANTS = {"postnorm": False, "prenorm": True}  # variant name -> norm_first
PARAM_SEED = 1234  # variant i uses PARAM_SEED + i
INPUT_SEED = 4321  # both variants share the same batch
BATCH, SRC_LEN, TGT_LEN = 3, 7, 6
ADAM = dict(lr=1e-3, betas=(0.9, 0.98), eps=1e-9)
CLIP_NORM = 1.0

# Functions only the inference fast path (nested tensors / fused kernels) calls.
FAST_PATH_FUNCTIONS = ["_transformer_encoder_layer_fwd", "_native_multi_head_attention",
                       "_nested_tensor_from_mask", "_nested_tensor_from_mask_left_aligned"]


class Seq2Seq(nn.Module):
    """Shared, tied embedding + sinusoidal positions + nn.Transformer (dropout 0)."""

    def __init__(self, cfg, norm_first):
        super().__init__()
        d = cfg["d_model"]
        self.d = d
        self.emb = nn.Embedding(cfg["vocab"], d)
        nn.init.normal_(self.emb.weight, std=d ** -0.5)
        pe = torch.zeros(SRC_LEN + TGT_LEN, d)
        pos = torch.arange(pe.shape[0]).unsqueeze(1)
        div = torch.exp(torch.arange(0, d, 2) * (-math.log(10000.0) / d))
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)
        self.register_buffer("pe", pe)
        self.tf = nn.Transformer(d_model=d, nhead=cfg["heads"], num_encoder_layers=cfg["enc_layers"],
                                 num_decoder_layers=cfg["dec_layers"], dim_feedforward=cfg["d_ff"],
                                 dropout=0.0, activation=cfg["activation"], layer_norm_eps=cfg["eps"],
                                 batch_first=True, norm_first=norm_first)

    def embed(self, x):
        return self.emb(x) * math.sqrt(self.d) + self.pe[: x.shape[1]]

    def forward(self, src, tgt_in, pad_id):
        steps = tgt_in.shape[1]
        causal = torch.triu(torch.full((steps, steps), float("-inf")), diagonal=1)
        src_pad = src == pad_id
        # Same calls as nn.Transformer.forward, split so the encoder output can be recorded.
        memory = self.tf.encoder(self.embed(src), src_key_padding_mask=src_pad)
        y = self.tf.decoder(self.embed(tgt_in), memory, tgt_mask=causal,
                            tgt_key_padding_mask=tgt_in == pad_id,
                            memory_key_padding_mask=src_pad)
        return y @ self.emb.weight.t(), memory


def randomise_norms_and_biases(model):
    """Default init leaves biases 0 and LayerNorm at (1, 0); perturb them so every parameter matters."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_(0.0, 0.1)
            elif ".norm" in name and name.endswith("weight"):
                p.normal_(1.0, 0.1)


def make_batch(cfg):
    g = torch.Generator().manual_seed(INPUT_SEED)
    pad = cfg["pad_id"]
    src = torch.randint(3, cfg["vocab"], (BATCH, SRC_LEN), generator=g)
    tgt = torch.randint(3, cfg["vocab"], (BATCH, TGT_LEN + 1), generator=g)
    src[1, -2:] = pad
    src[2, -4:] = pad
    tgt_in, tgt_out = tgt[:, :-1].clone(), tgt[:, 1:].clone()
    tgt_in[2, -2:] = pad
    tgt_out[2, -2:] = pad
    return src, tgt_in, tgt_out


def smoothed_ce_by_hand(logits, target, eps, pad):
    """Independent check of torch's label-smoothed CE: mean over non-pad targets of
    (1-eps)*nll(target) + eps/V * sum over all V classes of nll(class)."""
    logp = F.log_softmax(logits.double(), dim=-1)
    keep = target != pad
    nll = -logp.gather(1, target.unsqueeze(1)).squeeze(1)
    uniform = -logp.mean(dim=1)
    return (((1 - eps) * nll + eps * uniform)[keep]).sum() / keep.sum()


def guard_fast_path():
    def forbidden(name):
        def fail(*args, **kwargs):
            raise RuntimeError(f"torch fast path used: torch.{name}")
        return fail
    for name in FAST_PATH_FUNCTIONS:
        setattr(torch, name, forbidden(name))


def run_variant(cfg, norm_first, seed, batch):
    torch.manual_seed(seed)
    model = Seq2Seq(cfg, norm_first).train()
    randomise_norms_and_biases(model)
    names = [n for n, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]
    initial = {n: p.detach().clone() for n, p in model.named_parameters()}
    src, tgt_in, tgt_out = batch
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg["label_smoothing"], ignore_index=cfg["pad_id"])
    opt = torch.optim.Adam(params, **ADAM)

    def step():
        opt.zero_grad(set_to_none=True)
        logits, memory = model(src, tgt_in, cfg["pad_id"])
        assert not memory.is_nested and not logits.is_nested
        loss = loss_fn(logits.reshape(-1, cfg["vocab"]), tgt_out.reshape(-1))
        loss.backward()
        grads = {n: p.grad.detach().clone() for n, p in zip(names, params)}
        grad_norm = torch.nn.utils.clip_grad_norm_(params, CLIP_NORM)
        opt.step()
        return logits.detach(), memory.detach(), loss.detach(), grads, grad_norm.detach()

    logits, memory, loss, grads, grad_norm = step()
    by_hand = smoothed_ce_by_hand(logits.reshape(-1, cfg["vocab"]), tgt_out.reshape(-1),
                                  cfg["label_smoothing"], cfg["pad_id"])
    assert abs(by_hand.item() - loss.item()) < 1e-5, (by_hand.item(), loss.item())
    _, _, loss2, _, _ = step()

    tensors = {"input.src": src, "input.tgt_in": tgt_in, "input.tgt_out": tgt_out}
    tensors.update({f"param.{n}": t for n, t in initial.items()})
    tensors.update({"output.logits": logits, "output.loss": loss, "output.encoder_out": memory,
                    "output.grad_norm_step1": grad_norm, "output.loss_step2": loss2})
    tensors.update({f"grad.{n}": t for n, t in grads.items()})
    tensors.update({f"adam2.{n}": p.detach().clone() for n, p in model.named_parameters()})
    return tensors, dict(loss=loss.item(), loss_step2=loss2.item(), grad_norm_step1=grad_norm.item())


SAFETENSORS_DTYPES = {torch.float32: ("F32", "<f4"), torch.int64: ("I64", "<i8")}


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        dtype, np_dtype = SAFETENSORS_DTYPES[t.dtype]
        data = np.ascontiguousarray(t.numpy()).astype(np_dtype, copy=False).tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    metadata = header.pop("__metadata__")
    by_code = {code: np_dtype for code, np_dtype in SAFETENSORS_DTYPES.values()}
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + b:8 + n + e], dtype=by_code[info["dtype"]]).reshape(info["shape"])
    return out, metadata


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output directory")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    guard_fast_path()
    batch = make_batch(CONFIG)
    for index, (variant, norm_first) in enumerate(VARIANTS.items()):
        cfg = dict(CONFIG, norm_first=norm_first)
        seed = PARAM_SEED + index
        tensors, summary = run_variant(cfg, norm_first, seed, batch)
        metadata = {"config": json.dumps(cfg), "torch_version": torch.__version__,
                    "generator": "tools/make_transformer_fixtures.py", "param_seed": str(seed),
                    "input_seed": str(INPUT_SEED)}
        path = os.path.join(args.out, f"{variant}.safetensors")
        write_safetensors(path, tensors, metadata)
        back, back_meta = read_safetensors(path)
        assert back_meta == metadata and back.keys() == tensors.keys()
        assert all(np.array_equal(back[k], t.numpy()) for k, t in tensors.items())
        print(f"{variant}: loss {summary['loss']:.6f}  loss_step2 {summary['loss_step2']:.6f}  "
              f"grad_norm_step1 {summary['grad_norm_step1']:.6f}  tensors {len(tensors)}  "
              f"{os.path.getsize(path)} bytes -> {path}")
    print(f"torch {torch.__version__}, fast path not used (guarded: {', '.join(FAST_PATH_FUNCTIONS)})")


if __name__ == "__main__":
    main()
