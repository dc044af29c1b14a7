#!/usr/bin/env python3
"""Writes bench/data/translation_inputs.json: the inputs and batch plans of the translation benchmark.

This is the plan of ../shared/bench/peers (RESULTS-translation.md, make_model.py, common.py), where HF
transformers and CTranslate2 were measured, rebuilt here without transformers:

Inputs. The first 512 lines of data/multi30k/test_2016_flickr.en. No en-de tokenizer exists here, so
each line is segmented with the opus-mt-en-fr source SentencePiece model only to get its length:
n = number of pieces + 1 (the trailing </s>), which is what MarianTokenizer returns for these lines.
Sentence i becomes n-1 random ids in [2, 58099] (numpy default_rng(0), drawn in file order)
followed by </s> = 0. Vocabulary: 58101 ids, pad = decoder start = 58100.

Plans (every sentence of a batch is forced to produce L target tokens, no EOS, no early stop):
  batch 32: all 512 sentences, stably sorted by source length, cut into 16 chunks of 32;
            L = max source length in the chunk + 2.
  batch 1:  the first 64 sentences in file order, one at a time; L = source length + 2.

Output JSON: {"source", "vocab", "pad_id", "eos_id", "src_lens", "ids",
              "plans": {"32": [{"rows": [sentence indices], "target_len": L}, ...], "1": [...]},
              "stats": {"32": {"sentences", "target_tokens"}, "1": {...}}}

usage: /usr/bin/python3 bench/translation_plan.py   (needs python3-sentencepiece and python3-numpy;
       TCAT_OPUS_SPM=<path> replaces the default path of source.spm)
"""
import json
import os

import numpy as np
import sentencepiece as spm

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SOURCE = "data/multi30k/test_2016_flickr.en"
SPM_MODEL = "/work/shared/models/tokenizers/opus-mt-en-fr/source.spm"
OUTPUT = os.path.join(HERE, "data", "translation_inputs.json")
SENTENCES = 512
BATCH1_SENTENCES = 64
VOCAB, PAD_ID, EOS_ID = 58101, 58100, 0


def make_plan(ids, batch_size):
    if batch_size == 1:
        return [{"rows": [i], "target_len": len(ids[i]) + 2} for i in range(BATCH1_SENTENCES)]
    order = sorted(range(len(ids)), key=lambda i: (len(ids[i]), i))
    chunks = [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
    return [{"rows": c, "target_len": max(len(ids[i]) for i in c) + 2} for c in chunks]


def main():
    sp = spm.SentencePieceProcessor(model_file=os.environ.get("TCAT_OPUS_SPM", SPM_MODEL))
    with open(os.path.join(ROOT, SOURCE), encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f][:SENTENCES]
    assert len(lines) == SENTENCES, f"{SOURCE} has only {len(lines)} lines"
    lengths = [len(sp.encode(line, out_type=str)) + 1 for line in lines]
    rng = np.random.default_rng(0)
    ids = [rng.integers(2, PAD_ID, size=n - 1).tolist() + [EOS_ID] for n in lengths]
    plans = {str(b): make_plan(ids, b) for b in (32, 1)}
    stats = {b: {"sentences": sum(len(c["rows"]) for c in p),
                 "target_tokens": sum(len(c["rows"]) * c["target_len"] for c in p)} for b, p in plans.items()}
    out = {"source": SOURCE, "vocab": VOCAB, "pad_id": PAD_ID, "eos_id": EOS_ID, "src_lens": lengths, "ids": ids,
           "plans": plans, "stats": stats}
    os.makedirs(os.path.dirname(OUTPUT), exist_ok=True)
    with open(OUTPUT, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(f"{OUTPUT}: {len(ids)} sentences, source lengths {min(lengths)}..{max(lengths)} "
          f"(mean {sum(lengths) / len(lengths):.1f}, total {sum(lengths)}); plans {json.dumps(stats)}")


if __name__ == "__main__":
    main()
