#!/usr/bin/env python3
"""Writes a CTranslate2 model directory with opus-mt-en-de's shape and random fp32 weights, for the
same-machine CTranslate2 peer bench/ct2/translate.cpp (the workload of bench/translate_decode).

The model is built with CTranslate2's own spec classes (python/ctranslate2/specs of a CTranslate2
source tree, e.g. a v4.8.1 checkout), so model.bin has exactly the layout its loader expects. Only
the specs are imported: a stub `ctranslate2` package stands in for the real one, whose __init__
loads the compiled extension and the converters (transformers, torch), none of which are needed.

The spec is set up as CTranslate2's converter does for a Hugging Face opus-mt model
(converters/transformers.py, MarianMTLoader on top of BartLoader), so that this directory matches a
converted opus-mt-en-de, which is what the reference figures in
../shared/bench/peers/RESULTS-translation.md were measured on:
- TransformerSpec.from_config((6, 6), 8, pre_norm=False, activation=SWISH, layernorm_embedding=False):
  post-norm, no final norm, no embedding layer norm;
- fused projections: self-attention q|k|v in one [1536, 512] matrix, cross-attention q alone and k|v
  in one [1024, 512] matrix (utils.fuse_linear);
- sinusoidal position table of 512 positions written out (sin in the first half of the features,
  cos in the second, as Marian), embeddings scaled by sqrt(512);
- one embedding table shared by encoder, decoder and output projection (the saver aliases it);
- the converter drops HF's added <pad> (id 58100) from the vocabulary and the weights, so the model
  has 58100 tokens, the decoder starts from a zero embedding (start_from_zero_embedding) and the
  decoder start token is "</s>". Source ids of bench/data/translation_inputs.json are all < 58100.
- no output-projection bias: the converter keeps final_logits_bias only when it is non-zero, and it
  was zero in the reference model (tcat's benchmark model has none either).
Vocabulary: "</s>" (id 0), "<unk>" (id 1), "w<id>" otherwise; written once as shared_vocabulary.json.
Weights: numpy default_rng(seed), normal std 0.02 for matrices and embeddings, biases zero; LayerNorm
gamma 1, beta 0 (HF's Marian init).

usage: /usr/bin/python3 bench/ct2/make_model.py OUT_DIR --ct2-python DIR [--seed N]
       DIR: the directory of a CTranslate2 source tree holding ctranslate2/specs (SRC/python).
"""
import argparse
import importlib
import math
import os
import sys
import types

import numpy as np

VOCAB = 58100  # opus-mt-en-de's 58101 minus the <pad> the converter drops
D_MODEL, HEADS, D_FF, LAYERS, MAX_POSITIONS = 512, 8, 2048, 6, 512


def import_specs(python_dir):
    package_dir = os.path.join(python_dir, "ctranslate2")
    if not os.path.isfile(os.path.join(package_dir, "specs", "transformer_spec.py")):
        sys.exit(f"make_model: no ctranslate2/specs under {python_dir} (pass --ct2-python)")
    # An empty package whose modules are found in the source tree: importing ctranslate2.specs then
    # skips ctranslate2/__init__.py and with it the compiled extension.
    stub = types.ModuleType("ctranslate2")
    stub.__path__ = [package_dir]
    sys.modules["ctranslate2"] = stub
    return importlib.import_module("ctranslate2.specs")


def sinusoids(positions, d):
    pos = np.arange(positions, dtype=np.float64)[:, None]
    freq = np.exp(np.arange(d // 2, dtype=np.float64) * (-2 * math.log(10000.0) / d))
    return np.concatenate([np.sin(pos * freq), np.cos(pos * freq)], axis=1).astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--ct2-python", required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    specs = import_specs(args.ct2_python)
    rng = np.random.default_rng(args.seed)

    def normal(*shape):
        return (rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)).astype(np.float32)

    def linear(spec, rows, cols):
        spec.weight = normal(rows, cols)
        spec.bias = np.zeros(rows, dtype=np.float32)

    def layer_norm(spec):
        spec.gamma = np.ones(D_MODEL, dtype=np.float32)
        spec.beta = np.zeros(D_MODEL, dtype=np.float32)

    def ffn(spec):
        linear(spec.linear_0, D_FF, D_MODEL)
        linear(spec.linear_1, D_MODEL, D_FF)
        layer_norm(spec.layer_norm)

    spec = specs.TransformerSpec.from_config(
        (LAYERS, LAYERS), HEADS, pre_norm=False, activation=specs.Activation.SWISH, layernorm_embedding=False)

    embeddings = normal(VOCAB, D_MODEL)  # one array: the saver turns the other two uses into aliases
    positions = sinusoids(MAX_POSITIONS, D_MODEL)

    enc = spec.encoder
    enc.scale_embeddings = math.sqrt(D_MODEL)
    enc.position_encodings.encodings = positions
    enc.embeddings[0].weight = embeddings
    for layer in enc.layer:
        linear(layer.self_attention.linear[0], 3 * D_MODEL, D_MODEL)  # q|k|v
        linear(layer.self_attention.linear[1], D_MODEL, D_MODEL)
        layer_norm(layer.self_attention.layer_norm)
        ffn(layer.ffn)

    dec = spec.decoder
    dec.scale_embeddings = math.sqrt(D_MODEL)
    dec.position_encodings.encodings = positions
    dec.embeddings.weight = embeddings
    dec.start_from_zero_embedding = True
    for layer in dec.layer:
        linear(layer.self_attention.linear[0], 3 * D_MODEL, D_MODEL)
        linear(layer.self_attention.linear[1], D_MODEL, D_MODEL)
        layer_norm(layer.self_attention.layer_norm)
        linear(layer.attention.linear[0], D_MODEL, D_MODEL)  # q from the decoder
        linear(layer.attention.linear[1], 2 * D_MODEL, D_MODEL)  # k|v from the encoder output
        linear(layer.attention.linear[2], D_MODEL, D_MODEL)
        layer_norm(layer.attention.layer_norm)
        ffn(layer.ffn)
    dec.projection.weight = embeddings

    tokens = ["</s>", "<unk>"] + [f"w{i}" for i in range(2, VOCAB)]
    spec.register_source_vocabulary(tokens)
    spec.register_target_vocabulary(tokens)
    spec.config.eos_token = "</s>"
    spec.config.unk_token = "<unk>"
    spec.config.decoder_start_token = "</s>"  # any token: the decoder starts from a zero embedding

    spec.validate()
    spec.optimize(quantization=None)  # fp32; CTranslate2 converts to int8 at load time if asked
    os.makedirs(args.out_dir, exist_ok=True)
    spec.save(args.out_dir)
    print(f"make_model: wrote {args.out_dir} (vocabulary {VOCAB})")


if __name__ == "__main__":
    main()
