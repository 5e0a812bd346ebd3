#!/usr/bin/env python3
"""Differential test of the SigLIP-family SentencePiece tokenizers: ours
(through tokenizer_dump) against transformers' AutoTokenizer.from_pretrained
on the same folder, on seeded random strings.

    spm_tokenizer_diff.py --dump build/tests/tokenizer_dump [--count 10000]
                          [--seed 20261206] [--no-sweep]

Needs transformers, sentencepiece and protobuf (no torch): scripts/test.sh
installs the versions pinned in scripts/install-deps.sh.

Folders: tests/data/siglip-tokenizer (SiglipTokenizer, spiece.model) and
tests/data/gemma-tokenizer (GemmaTokenizer, tokenizer.model + tokenizer.json)
with --count strings each, and variants made from them in a temporary folder
with --count / 4 strings each: Gemma without tokenizer.json (start/end tokens
from add_bos_token/add_eos_token, padding on the right), Siglip2Tokenizer
(lower-cases; an added token taking the whitespace around it, one matched
after normalisation), SigLIP with do_lower_case false and left
padding/truncation, SigLIP without added_tokens_decoder (the special tokens
from eos_token/unk_token/pad_token alone).

Compared, for each string: the processor's ids for the text tower,
tokenizer(text, padding="max_length", truncation=True, max_length=64) (ours:
the engine's ModelTokenizer for a siglip config with 64 positions), and
tokenizer(text, add_special_tokens=False) (ours: encode()). Any difference
fails and the first ones are listed.

Then (unless --no-sweep) every code point in context, for the text rules we
implement ourselves: SiglipTokenizer.canonicalize_text (Python's str.lower
with its final-sigma rule, str.isspace, punctuation removal) and
`tokenizers`' Lowercase (Siglip2Tokenizer).

Documented exceptions (random strings and the sweep leave these code points
out): code points unassigned in this Python's unicodedata (Python 3.11 has
Unicode 14.0, utf8proc 2.8 has 15.0), and those assigned after Unicode 15.0
(NEWER_THAN_UTF8PROC of tokenizer_diff.py), where Python or Rust know
properties that utf8proc does not. Invalid UTF-8 cannot occur (Python
strings); ours rejects it with an error naming the byte offset.
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import unicodedata
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
MAX_LENGTH = 64

sys.path.insert(0, HERE)
from tokenizer_diff import NEWER_THAN_UTF8PROC, pools  # noqa: E402

EXCLUDED = {c for a, b in NEWER_THAN_UTF8PROC for c in range(a, b + 1)}


def excluded(c):
    return 0xD800 <= c <= 0xDFFF or c in EXCLUDED or unicodedata.category(chr(c)) == "Cn"


# ---------------------------------------------------------------- strings

# What SigLIP-family tokenizers treat specially: their added and special
# tokens (with and without whitespace around), SentencePiece's "▁", ASCII
# punctuation (SiglipTokenizer removes it), Greek sigma next to letters,
# marks and apostrophes (Python's final-sigma rule), case-changing letters.
SPM_FRAGMENTS = ["</s>", "<unk>", "<pad>", "<s>", "<eos>", "<bos>", "<mask>", "[@BOS@]", "<unused0>",
                 "<start_of_turn>", "<end_of_turn>", "<table>", "</table>", "<TABLE>", "<Table>", " </s> ",
                 " <eos> ", " \t<start_of_turn>\u3000 ", "\x1c<unk>\x1f", "\n\n",
                 "\n\n\n", "\t\t", "▁", "▁▁", " ▁", "...", "!?", "'s", "“", "”", "Σ", "ΑΣ", "ΟΔΟΣ", "Σ.",
                 "Σ'", "ς", "σ", "Σ\u0301", "ΑΣ\u00b7Β", "İ", "ẞ", "ǅ", "Ⅻ", "Ⓐ", "🄰", "ª", "\u0345",
                 "\x1c", "\x1f", "\x85", "\u3000", "\u2028", "  ", " ", "12345", "3.14", "a-b", "e-mail"]


def make_table():
    return pools() + [(8, SPM_FRAGMENTS), (6, [(0x61, 0x7A)]), (3, [(0x20, 0x7E)])]


def random_text(rng, table, long):
    weights = [w for w, _ in table]
    out = []
    for _ in range(rng.randint(40, 150) if long else rng.randint(0, 12)):
        source = rng.choices(table, weights)[0][1]
        for _ in range(rng.randint(1, 8)):
            item = rng.choice(source)
            if isinstance(item, str):
                out.append(item)
                continue
            while True:
                c = rng.randint(*item)
                if not excluded(c):
                    break
            out.append(chr(c))
    return "".join(out)


def random_texts(seed, count):
    rng = random.Random(seed)
    table = make_table()
    texts = [random_text(rng, table, long=(i % 20 == 0)) for i in range(count)]
    # Truncation at the boundary: n words for n around the context length.
    texts[:MAX_LENGTH + 8] = [" ".join(["dog"] * n) for n in range(MAX_LENGTH + 8)]
    return texts


# ---------------------------------------------------------------- running

def ours(dump, args, texts):
    cmd = [dump] + args
    out = subprocess.run(cmd, input=json.dumps(texts).encode(), capture_output=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {out.stderr.decode(errors='replace')}")
    return json.loads(out.stdout)


def compare(name, texts, want, got, limit=12):
    bad = [(t, w, g) for t, w, g in zip(texts, want, got) if w != g]
    for t, w, g in bad[:limit]:
        print(f"  DIFF {name}: {json.dumps(t, ensure_ascii=False)[:300]}\n"
              f"    code points: " + " ".join(f"U+{ord(ch):04X}" for ch in t[:40]) +
              f"\n    transformers {json.dumps(w)[:400]}\n    ours         {json.dumps(g)[:400]}")
    return len(bad)


def reference(folder, texts):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SiglipTokenizer warns about texts ending in </s>
        model = tok(texts, padding="max_length", truncation=True, max_length=MAX_LENGTH)["input_ids"]
        raw = tok(texts, add_special_tokens=False)["input_ids"]
    return type(tok).__name__, model, raw


def run_folder(args, name, folder, texts):
    cls, model, raw = reference(folder, texts)
    failures = 0
    for mode, want, dump_args in (
            ("model", model, ["--siglip-model", folder, "--context", str(MAX_LENGTH)]),
            ("raw", raw, ["--spm", folder, "--raw"])):
        got = ours(args.dump, dump_args, texts)
        n = compare(f"{name}/{mode}", texts, want, got)
        print(f"[{name}: {cls}] {mode}: {len(texts)} strings, {n} differences")
        failures += n
    return failures


def variants(tmp):
    """(name, folder) for the variants of the fixtures."""
    def copy(src, name, files, edit, edit_tokenizer_json=None):
        dst = os.path.join(tmp, name)
        os.makedirs(dst)
        for f in files:
            shutil.copy(os.path.join(DATA, src, f), dst)
        for file, fn in (("tokenizer_config.json", edit), ("tokenizer.json", edit_tokenizer_json)):
            if fn is None:
                continue
            path = os.path.join(dst, file)
            with open(path, encoding="utf-8") as f:
                obj = json.load(f)
            fn(obj)
            with open(path, "w", encoding="utf-8") as f:
                json.dump(obj, f, ensure_ascii=False)
        return name, dst

    def added_token_flags(tj):
        """<start_of_turn> takes the whitespace around it; <table> is matched
        in the normalised (lower-cased) text."""
        for t in tj["added_tokens"]:
            if t["content"] == "<start_of_turn>":
                t.update(lstrip=True, rstrip=True)
            if t["content"] == "<table>":
                t.update(normalized=True)

    gemma_files = ["config.json", "tokenizer_config.json", "tokenizer.model"]
    return [
        copy("gemma-tokenizer", "gemma-model-only", gemma_files,
             lambda c: c.update(add_bos_token=True, add_eos_token=True, padding_side="right")),
        copy("gemma-tokenizer", "siglip2-lower", gemma_files + ["tokenizer.json"],
             lambda c: c.update(tokenizer_class="Siglip2Tokenizer"), added_token_flags),
        copy("siglip-tokenizer", "siglip-cased-left", ["config.json", "tokenizer_config.json", "spiece.model"],
             lambda c: c.update(do_lower_case=False, padding_side="left", truncation_side="left")),
        # Without added_tokens_decoder: the special tokens come from
        # eos_token/unk_token/pad_token alone.
        copy("siglip-tokenizer", "siglip-no-decoder", ["config.json", "tokenizer_config.json", "spiece.model"],
             lambda c: c.pop("added_tokens_decoder")),
    ]


def sweep(args):
    """Every code point in the contexts that decide our own text rules."""
    from tokenizers import normalizers
    from transformers import AutoTokenizer
    canon = AutoTokenizer.from_pretrained(os.path.join(DATA, "siglip-tokenizer")).canonicalize_text
    lower = normalizers.Lowercase().normalize_str
    cps = [c for c in range(0x110000) if not excluded(c)]
    texts = []
    for c in cps:
        ch = chr(c)
        texts += ["AΣ" + ch + "B", ch + "Σ", "ΑΣ" + ch, "x" + ch + "Y", ch]
    failures = 0
    for name, fn, flag in (("canonicalize", lambda t: canon(t), "--canonicalize"),
                           ("rust-lower", lower, "--rust-lower")):
        chosen = texts if name == "canonicalize" else [chr(c) for c in cps]
        want = [fn(t) for t in chosen]
        got = ours(args.dump, [flag], chosen)
        n = compare(f"sweep/{name}", chosen, want, got)
        print(f"[sweep] {name}: {len(chosen)} strings, {n} differences")
        failures += n
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dump", required=True, help="path of the tokenizer_dump binary")
    ap.add_argument("--count", type=int, default=10000, help="random strings per fixture folder")
    ap.add_argument("--seed", type=int, default=20261206)
    ap.add_argument("--no-sweep", action="store_true", help="leave out the every-code-point sweep")
    args = ap.parse_args()

    import transformers
    print(f"transformers {transformers.__version__}, Python {sys.version.split()[0]} "
          f"(Unicode {unicodedata.unidata_version})")
    texts = random_texts(args.seed, args.count)
    failures = 0
    for name in ("siglip-tokenizer", "gemma-tokenizer"):
        failures += run_folder(args, name, os.path.join(DATA, name), texts)
    with tempfile.TemporaryDirectory() as tmp:
        for name, folder in variants(tmp):
            failures += run_folder(args, name, folder, texts[:max(1, args.count // 4)])
    if not args.no_sweep:
        failures += sweep(args)
    if failures:
        sys.exit(f"FAILED: {failures} differences (every difference is a bug or a documented exception)")
    print("OK")


if __name__ == "__main__":
    main()
