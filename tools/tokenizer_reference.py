#!/usr/bin/env python3
"""Writes the tokenizer fixtures under tests/data/tokenizer from transformers.

    /work/venv-ref/bin/python tools/tokenizer_reference.py \
        [--bpe ../shared/clip-data/bpe_simple_vocab_16e6.txt.gz] [--out tests/data/tokenizer]

Outputs:
  small/{vocab.json,merges.txt,tokenizer_config.json,tokenizer.json}
      a small CLIP-format byte-level BPE trained here on our own English text
      (tokenizer.json is what transformers' save_pretrained writes for it);
  corpus_small.json, corpus_clip.json
      [{"text": str, "ids": [...], "raw": [...]}]: "ids" is transformers'
      tokenizer(text, truncation=True, max_length=77)["input_ids"] (start/end
      tokens, end kept last); "raw" is the same without special tokens and
      without truncation.

The real CLIP vocabulary is only read from the gz (never copied into the
repository): it is expanded into a temporary folder exactly as openai/CLIP's
SimpleTokenizer and transformers' CLIP conversion do.
"""
import argparse
import collections
import gzip
import json
import os
import random
import shutil
import sys
import tempfile

SPECIALS = ["<|startoftext|>", "<|endoftext|>"]
TOKENIZER_CONFIG = {
    "tokenizer_class": "CLIPTokenizer",
    "bos_token": "<|startoftext|>",
    "eos_token": "<|endoftext|>",
    "unk_token": "<|endoftext|>",
    "pad_token": "<|endoftext|>",
    "model_max_length": 77,
    "do_lower_case": True,
    "errors": "replace",
    "add_prefix_space": False,
}
CONTEXT_LENGTH = 77


def bytes_to_unicode():
    """GPT-2/CLIP's reversible byte -> printable character table."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def clip_vocab_from_merges(merges):
    """CLIP's vocabulary order: bytes, bytes + </w>, one token per merge, specials."""
    base = list(bytes_to_unicode().values())
    vocab = base + [b + "</w>" for b in base] + ["".join(m) for m in merges] + SPECIALS
    assert len(set(vocab)) == len(vocab), "duplicate tokens in the vocabulary"
    return vocab


def clip_merges_from_gz(path):
    lines = gzip.open(path).read().decode("utf-8").split("\n")
    # openai/CLIP: skip the header line, keep 49152 - 256 - 2 merges.
    return [tuple(line.split()) for line in lines[1:49152 - 256 - 2 + 1]]


def write_clip_folder(folder, merges):
    os.makedirs(folder, exist_ok=True)
    vocab = clip_vocab_from_merges(merges)
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({tok: i for i, tok in enumerate(vocab)}, f, ensure_ascii=False)
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    with open(os.path.join(folder, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(TOKENIZER_CONFIG, f, indent=2)


# ---------------------------------------------------------------- small BPE

TRAINING_TEXT = """
A photo of a dog running on the beach at sunset. A yellow ambulance drives through the
city at night, its lights reflecting on the wet street. Two children play football in a
park while their parents watch from a wooden bench. The camera pans across a mountain
lake; snow covers the peaks and the water is very still. A man in a red jacket is riding
a bicycle down a narrow street. There's a cat sleeping on the sofa next to the window.
We're looking for the moment when the train leaves the station. They've parked the car
outside the old building; it's raining and the road is shining. A woman is reading a
book in the library. The kitchen is full of people cooking dinner together. A close-up
of a flower with a bee on it. Fireworks over the river on New Year's Eve. A crowd of
people walking across the bridge in the morning. The children laughed, the dogs barked,
and the birds were singing in the trees. Someone is playing the piano in a dark room.
A plane is landing at the airport; the sky is grey and cloudy. Boats are floating in the
harbour near the lighthouse. A horse is running in a green field. A red car and a blue
truck are waiting at the traffic lights. The sun is shining on the sea. I'll meet you at
the station at 10:30. She'd like a cup of coffee, and he's ordering tea. Don't forget the
keys! Where is the nearest hospital? Scene 42: the hero opens the door, slowly... 
""" * 3


def train_small_bpe(text, n_merges):
    """Plain BPE training on CLIP's words (byte-level, </w> on the last symbol).

    Ties are broken by the pair itself so the result is reproducible.
    """
    import regex
    pattern = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""")
    b2u = bytes_to_unicode()
    counts = collections.Counter(pattern.findall(" ".join(text.split()).lower()))
    words = {}
    for word, n in counts.items():
        symbols = [b2u[b] for b in word.encode("utf-8")]
        symbols[-1] += "</w>"
        words[tuple(symbols)] = n
    merges = []
    for _ in range(n_merges):
        pairs = collections.Counter()
        for symbols, n in words.items():
            for pair in zip(symbols, symbols[1:]):
                pairs[pair] += n
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        if pairs[best] < 2:
            break
        merges.append(best)
        merged = {}
        for symbols, n in words.items():
            out, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    out.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + n
        words = merged
    return merges


# ---------------------------------------------------------------- corpus

def corpus_strings(seed=1234):
    """Hand-picked edge cases plus seeded mixtures; every category of the brief."""
    s = [
        "", " ", "   ", "\t", "\n", "\t\n \r\n", "\u3000", "\u00a0", "\u2028\u2029",
        "a photo of a dog", "A PHOTO OF A DOG", "a yellow ambulance at night",
        "  leading and trailing spaces  ", "many     spaces\tand\ttabs\nand\nnewlines",
        "Hello, world!", "Hello,world!", "...", "?!?!", "--", "a-b_c.d", "(parens) [brackets] {braces}",
        "e-mail: someone@example.com", "https://example.com/path?q=1&x=y#frag", "C++ and C#",
        "100%", "$5.99", "#hashtag @mention", "\"quoted\" 'single'", "«guillemets» „low“",
        "don't", "DON'T", "Don'T", "it's", "IT'S", "we're", "WE'RE", "they've", "THEY'VE", "i'm",
        "I'M", "you'll", "YOU'LL", "he'd", "HE'D", "can't won't shouldn't", "o'clock",
        "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "''s", "!'s", "'''", "a's'b", "x'sy",
        "rock'n'roll", "’s curly apostrophe’s", "'S 'T 'RE 'VE 'M 'LL 'D", "'ll've'd",
        "0", "7", "42", "1234567890", "3.14159", "1,000,000", "2024-01-31", "10:30pm", "4k60fps",
        "٣٤٥", "१२३", "²³", "½ ¾", "Ⅻ ⅷ", "①②③", "𝟘𝟙𝟚", "０１２", "x²+y²=z²",
        "café", "cafe\u0301", "naïve résumé", "Ångström", "A\u030angstrom", "ÉCOLE", "straße", "STRASSE",
        "İstanbul", "ıi", "ΣΑΣ σας", "Ελληνικά", "Русский текст", "ПРИВЕТ мир", "Ǆemal ǅ ǆ",
        "ﬁ ﬂ ﬃ", "Ｆｕｌｌｗｉｄｔｈ", "e\u0301\u0302\u0303", "\u0301", "a\u0300\u0316b", "o\u0308\u0304",
        "ḱṷ", "z\u0361\u035ba", "Z\u0351\u034b\u0307\u0365\u0366algo", "\u0915\u094d\u0937",
        "한국어", "\u1100\u1161\u11a8", "日本語のテキスト", "中文文本", "漢字とひらがなとカタカナ",
        "ｶﾀｶﾅ", "ภาษาไทย", "עברית", "العربية", "مرحبا بالعالم", "हिन्दी", "தமிழ்", "ქართული", "Հայերեն",
        "አማርኛ", "ᏣᎳᎩ", "ᚠᚢᚦ", "𐌰𐌱𐌲", "𝕄𝕒𝕥𝕙", "mixed 日本 and English", "русский and english",
        "😀", "😀😃😄", "👍🏽", "👨\u200d👩\u200d👧\u200d👦", "🏳️\u200d🌈", "🇫🇷🇩🇪", "❤️", "☺︎", "#️⃣",
        "🧑🏿\u200d🚀", "dog 🐶 cat 🐱", "🐕\u200d🦺", "x\u200by", "x\u200cy\u200dz", "\ufeffbom",
        "<|startoftext|>", "<|endoftext|>", "a<|endoftext|>b", "<|startoftext|>hello<|endoftext|>",
        "<|ENDOFTEXT|>", "a<|ENDOFTEXT|>!!", "<|endoftext|><|endoftext|>", "<|endoftext", "|>",
        "<|startoftext|> <|endoftext|>", " <|endoftext|> ", "!<|Endoftext|>!", "<|startofText|>x",
        "a\x00b", "\x01\x02\x03", "\x7f", "\x1c\x1d\x1e\x1f", "a\x85b", "a\x0bb\x0cc", "\u180e",
        "\u2060", "\ufffd", "\U0010ffff", "\ue000", "\U000e0041", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
        "the quick brown fox jumps over the lazy dog",
        "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG",
        "Pneumonoultramicroscopicsilicovolcanoconiosis", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "abababababababababab", "zzzzzzzzzzzzzzz", "xqzjvk", "ThisIsCamelCase", "snake_case_name",
    ]
    s += ["word " * 100, "a" * 500, "1 " * 80, "!" * 300, "😀" * 40, "日本" * 60,
          " ".join(["the cat sat on the mat"] * 20), "x" * 76, "a " * 75, "a " * 76, "a " * 74]
    rng = random.Random(seed)
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", " \t\n",
        ".,;:!?'\"()[]{}<>|/\\-_+=*&^%$#@~`", "éèêëàâäôöûüçñÉÀÇÑ", "\u0300\u0301\u0308\u0327\u0361",
        "αβγδΣΩπ", "абвгдЖЯ", "日本語中文漢字", "한국어", "ひらがなカタカナ", "ابجد", "אבג",
        "😀🐶🎉👍🏽\u200d❤️", "İıŞşĞğ", "²³½٣१", "'s'T'RE'll'd",
    ]
    for _ in range(190):
        n = rng.randint(1, 30)
        s.append("".join(rng.choice(rng.choice(pools)) for _ in range(n)))
    assert len(s) >= 300, len(s)
    return s


def expected(tokenizer, texts):
    out = []
    for text in texts:
        ids = tokenizer(text, truncation=True, max_length=CONTEXT_LENGTH)["input_ids"]
        raw = tokenizer(text, add_special_tokens=False)["input_ids"]
        out.append({"text": text, "ids": ids, "raw": raw})
    return out


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=True, separators=(",", ":"))
        f.write("\n")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bpe", default=os.path.join(here, "..", "..", "shared", "clip-data",
                                                  "bpe_simple_vocab_16e6.txt.gz"))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "data", "tokenizer"))
    ap.add_argument("--small-merges", type=int, default=400)
    args = ap.parse_args()

    from transformers import AutoTokenizer
    import transformers
    print("transformers", transformers.__version__, file=sys.stderr)

    texts = corpus_strings()
    os.makedirs(args.out, exist_ok=True)

    # Small vocabulary: vocab.json + merges.txt + tokenizer_config.json, and the
    # tokenizer.json that save_pretrained writes for it.
    small = os.path.join(args.out, "small")
    shutil.rmtree(small, ignore_errors=True)
    write_clip_folder(small, train_small_bpe(TRAINING_TEXT, args.small_merges))
    tok = AutoTokenizer.from_pretrained(small)
    with tempfile.TemporaryDirectory() as tmp:
        tok.save_pretrained(tmp)
        shutil.copy(os.path.join(tmp, "tokenizer.json"), os.path.join(small, "tokenizer.json"))
        from_json = AutoTokenizer.from_pretrained(tmp)
    small_expected = expected(tok, texts)
    assert small_expected == expected(from_json, texts), "tokenizer.json and vocab+merges disagree"
    write_json(os.path.join(args.out, "corpus_small.json"), small_expected)
    print(f"small vocabulary: {len(tok)} tokens, {len(texts)} strings", file=sys.stderr)

    if not os.path.exists(args.bpe):
        sys.exit(f"{args.bpe}: not found; corpus_clip.json not written")
    with tempfile.TemporaryDirectory() as tmp:
        write_clip_folder(tmp, clip_merges_from_gz(args.bpe))
        tok = AutoTokenizer.from_pretrained(tmp)
        write_json(os.path.join(args.out, "corpus_clip.json"), expected(tok, texts))
    print(f"CLIP vocabulary: {len(tok)} tokens, {len(texts)} strings", file=sys.stderr)


if __name__ == "__main__":
    main()
