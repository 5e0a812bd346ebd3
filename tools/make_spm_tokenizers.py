#!/usr/bin/env python3
"""Regenerates the SentencePiece tokenizer fixtures of the SigLIP family.

    python3 -m pip install transformers==5.17.0 sentencepiece==0.2.1 protobuf==6.33.6
    python3 tools/make_spm_tokenizers.py [--out tests/data]

Nothing is downloaded: both models are trained here, with the `sentencepiece`
package, on English-like text this script makes up (seeded, so a rerun with the
same package versions writes the same files). Outputs:

  siglip-tokenizer/   like google/siglip-*: spiece.model, a 3,000-piece unigram
                      model with T5's special pieces (<pad> 0, </s> 1, <unk> 2,
                      no <s>) and nmt_nfkc normalisation; tokenizer_config.json
                      (and whatever else) as SiglipTokenizer.save_pretrained
                      writes it; a minimal SiglipConfig config.json.
  gemma-tokenizer/    like google/siglip2-*-patch16-*: tokenizer.model, a
                      4,000-piece BPE model with byte fallback, Gemma's special
                      pieces (<pad> 0, <eos> 1, <bos> 2, <unk> 3), identity
                      normalisation and no dummy prefix, plus a few of Gemma's
                      user-defined pieces; tokenizer.json and
                      tokenizer_config.json as GemmaTokenizer.save_pretrained
                      writes them from that model with SigLIP 2's flags
                      (add_bos_token false, add_eos_token true); config.json.
  spm-corpus.json     [{"kind", "text", "ids"}]: transformers' ids, processor
                      style (padding="max_length", truncation=True,
                      max_length=64), for a few strings; test_spm_tokenizer
                      checks them.

tests/spm_tokenizer_diff.py then compares the C++ tokenizer with
AutoTokenizer.from_pretrained(folder) on these folders.
"""
import argparse
import io
import json
import os
import random
import shutil
import tempfile
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_LENGTH = 64

# Words for made-up captions: what people type to find a moment in a video.
NOUNS = """dog cat horse bird car truck bus train plane boat bicycle man woman child children
people crowd street road bridge river lake sea beach mountain forest tree flower field park
city building house kitchen room window door table chair sofa bed book phone camera screen
ambulance police fire light lights night morning evening sunset sky cloud rain snow water
ball game player team goal stage singer guitar piano drum dancer party cake candle gift
station airport harbour lighthouse market shop restaurant coffee tea bottle glass plate
jacket hat shirt dress shoes umbrella bag map sign clock fountain statue tower castle
garden farm cow sheep duck fish shark whale monkey elephant lion tiger bear rabbit""".split()
ADJECTIVES = """red blue green yellow black white grey orange purple pink brown golden silver
small big large tiny huge old young new wet dry dark bright empty crowded quiet noisy
happy sad angry tired busy slow fast tall short long narrow wide wooden broken shiny""".split()
VERBS = """running walking sitting standing sleeping eating drinking playing reading writing
singing dancing jumping flying driving riding swimming falling climbing opening closing
laughing crying waiting talking looking watching holding carrying throwing catching""".split()
PLACES = """on the beach|in the city|at night|in the rain|near the river|on the bridge|
in the kitchen|in the park|at the station|under a tree|in the snow|on the stage|
next to the window|in front of the house|at the airport|in the forest|on the road""".replace("\n", "").split("|")
PREFIXES = ["", "", "", "a photo of ", "an image of ", "a picture of ", "a video of ",
            "a frame showing ", "this is ", "there is "]
# Some text in other scripts, so the vocabularies hold a few such pieces and
# the tests see known and unknown characters alike.
FOREIGN = ["café", "naïve", "über", "straße", "garçon", "señor", "déjà vu", "crème brûlée",
           "Ελλάδα", "θάλασσα", "ΟΔΟΣ", "москва", "улица", "собака", "東京", "猫", "犬", "山",
           "こんにちは", "ねこ", "서울", "고양이", "🐶", "🚑", "🌅", "❤️", "👍"]


ONSETS = "b bl br c ch cl cr d dr f fl fr g gl gr h j k l m n p pl pr qu r s sc sh sl sm sn sp st str t th tr v w wh y z".split()
VOWELS = "a e i o u ai ea ee oo ou ie oa au".split()
CODAS = ["", "", "n", "r", "l", "s", "t", "nd", "ng", "st", "ck", "ll", "rt", "mp", "sh", "tch"]
ENDINGS = ["", "", "", "s", "ed", "ing", "er", "ly", "ness", "ville", "ton", "ford", "ia"]


def made_up_word(rng):
    """An English-looking word that is not one (names of places, people, things)."""
    syllables = [rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(rng.randint(1, 3))]
    return "".join(syllables) + rng.choice(ENDINGS)


def caption(rng):
    if rng.random() < 0.35:
        words = [made_up_word(rng) for _ in range(rng.randint(2, 8))]
        words[0] = words[0].capitalize()
        return " ".join(words) + rng.choice([".", "", "!", "?", ","])
    article = lambda w: ("an " if w[0] in "aeiou" else "a ") + w
    kind = rng.random()
    if kind < 0.4:
        adj = rng.choice(ADJECTIVES)
        text = f"{rng.choice(PREFIXES)}{article(adj)} {rng.choice(NOUNS)} {rng.choice(VERBS)} {rng.choice(PLACES)}"
    elif kind < 0.6:
        n = rng.choice(["two", "three", "four", "many", "some", "2", "3", "10", "100"])
        text = f"{n} {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}s {rng.choice(PLACES)}"
    elif kind < 0.75:
        text = (f"The {rng.choice(NOUNS)} is {rng.choice(VERBS)} while the {rng.choice(NOUNS)} "
                f"is {rng.choice(VERBS)}.")
    elif kind < 0.85:
        text = f"{rng.choice(NOUNS).capitalize()} {rng.choice(PLACES)}, {rng.randint(0, 23)}:{rng.randint(0, 59):02d}!"
    else:
        text = f"{rng.choice(FOREIGN)} {rng.choice(NOUNS)} {rng.choice(FOREIGN)}"
    if rng.random() < 0.2:
        text = text.upper() if rng.random() < 0.3 else text.title()
    return text


def corpus(seed=20261206, count=30000):
    rng = random.Random(seed)
    return [caption(rng) for _ in range(count)]


def train(sentences, **options):
    import sentencepiece as spm
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(sentences), model_writer=model,
                                   num_threads=1, minloglevel=2, **options)
    return model.getvalue()


def train_siglip(sentences):
    """T5 / SigLIP style unigram model."""
    return train(sentences, model_type="unigram", vocab_size=3000, character_coverage=0.9995,
                 pad_id=0, eos_id=1, unk_id=2, bos_id=-1, pad_piece="<pad>", eos_piece="</s>",
                 unk_piece="<unk>", normalization_rule_name="nmt_nfkc")


# A few of Gemma's user-defined pieces (the real model has 99 <unusedN>,
# <start_of_turn>/<end_of_turn>, newline and space runs, HTML tags, ...).
GEMMA_USER_DEFINED = ["<mask>", "[@BOS@]", "<unused0>", "<unused1>", "<start_of_turn>",
                      "<end_of_turn>", "\n", "\n\n", "\t", "<table>", "</table>"]


def train_gemma(sentences):
    """Gemma style BPE model: byte fallback, no normalisation, no dummy prefix."""
    return train(sentences, model_type="bpe", vocab_size=4000, character_coverage=0.9995,
                 byte_fallback=True, split_digits=True, allow_whitespace_only_pieces=True,
                 pad_id=0, eos_id=1, bos_id=2, unk_id=3, pad_piece="<pad>", eos_piece="<eos>",
                 bos_piece="<bos>", unk_piece="<unk>", user_defined_symbols=GEMMA_USER_DEFINED,
                 normalization_rule_name="identity", add_dummy_prefix=False,
                 remove_extra_whitespaces=False)


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def siglip_config(vocab_size, pad, eos, bos=None):
    """A minimal SiglipConfig: the text tower's numbers that the tokenizer needs
    (context length 64, vocabulary, special ids) and a tiny vision tower."""
    text = {"model_type": "siglip_text_model", "vocab_size": vocab_size,
            "max_position_embeddings": MAX_LENGTH, "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 1, "num_attention_heads": 2, "pad_token_id": pad, "eos_token_id": eos}
    if bos is not None:
        text["bos_token_id"] = bos
    vision = {"model_type": "siglip_vision_model", "hidden_size": 32, "intermediate_size": 64,
              "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 32, "patch_size": 16}
    return {"model_type": "siglip", "text_config": text, "vision_config": vision}


def make_siglip(out, model):
    from transformers import SiglipTokenizer
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "spiece.model")
        with open(path, "wb") as f:
            f.write(model)
        tok = SiglipTokenizer(vocab_file=path, model_max_length=MAX_LENGTH)
        shutil.rmtree(out, ignore_errors=True)
        tok.save_pretrained(out)
    write_json(os.path.join(out, "config.json"), siglip_config(len(tok), tok.pad_token_id, tok.eos_token_id))


def make_gemma(out, model):
    from transformers import GemmaTokenizer
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "tokenizer.model"), "wb") as f:
            f.write(model)
        write_json(os.path.join(tmp, "tokenizer_config.json"),
                   {"tokenizer_class": "GemmaTokenizer", "add_bos_token": False, "add_eos_token": True,
                    "model_max_length": MAX_LENGTH})
        tok = GemmaTokenizer.from_pretrained(tmp)
        shutil.rmtree(out, ignore_errors=True)
        tok.save_pretrained(out)
        # The real folders carry the SentencePiece model beside tokenizer.json.
        shutil.copy(os.path.join(tmp, "tokenizer.model"), os.path.join(out, "tokenizer.model"))
    # save_pretrained records the temporary model's path, which transformers
    # ignores on loading (it takes the folder's own files): leave it out.
    config_file = os.path.join(out, "tokenizer_config.json")
    with open(config_file, encoding="utf-8") as f:
        config = json.load(f)
    config.pop("vocab_file", None)
    write_json(config_file, config)
    write_json(os.path.join(out, "config.json"),
               siglip_config(len(tok), tok.pad_token_id, tok.eos_token_id, tok.bos_token_id))


# Strings whose ids test_spm_tokenizer checks (C++ against transformers here).
KNOWN = ["a photo of a dog", "", "   ", "A Yellow AMBULANCE at night!", "Hello, World... <3",
         "straße café ΟΔΟΣ 東京 🚑", "</s> eos in the text </s>", "two  spaces\tand\nnewlines",
         "<start_of_turn>user\nhi<end_of_turn>", "x" * 200, " ".join(["dog"] * 70), "ǅ İ ﬃ Ⅻ ①"]


def known_ids(folder, kind):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SiglipTokenizer warns about texts ending in </s>
        return [{"kind": kind, "text": t,
                 "ids": tok(t, padding="max_length", truncation=True, max_length=MAX_LENGTH)["input_ids"]}
                for t in KNOWN]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(HERE, "..", "tests", "data"))
    args = ap.parse_args()
    sentences = corpus()
    siglip_dir = os.path.join(args.out, "siglip-tokenizer")
    gemma_dir = os.path.join(args.out, "gemma-tokenizer")
    make_siglip(siglip_dir, train_siglip(sentences))
    make_gemma(gemma_dir, train_gemma(sentences))
    write_json(os.path.join(args.out, "spm-corpus.json"),
               known_ids(siglip_dir, "siglip") + known_ids(gemma_dir, "gemma"))
    for d in (siglip_dir, gemma_dir):
        print(d, sorted((f, os.path.getsize(os.path.join(d, f))) for f in os.listdir(d)))


if __name__ == "__main__":
    main()
