"""What the embedder tests share: the descriptions of issue 11, and a tiny randomly initialised
sentence-transformers model (BERT, 32-d, word-level vocabulary), built in the test session and saved to a
folder in the sentence-transformers format: what the loading and batching path of
SentenceTransformerEmbedder is tested on, with no download."""

from __future__ import annotations

from pathlib import Path

# The descriptions of issue 11: what real wordllama semantics must rank.
PUPPY = "a small puppy running across the grass"
CAR = "a red car parked by the road"
BACKPACK = "a man with a backpack walking left"
DESCRIPTIONS = (PUPPY, CAR, BACKPACK)

WORDS = ("a the small little big red blue green puppy dog cat car truck vehicle man woman person bag backpack "
         "walking running parked road grass left right carrying with by on across").split()


def save_tiny_sentence_transformer(out: str | Path, seed: int = 0, hidden: int = 32) -> Path:
    """Save the tiny model into `out` (created); returns `out`."""
    from pixelrefer_core.compat_torchvision import ensure_torchvision

    ensure_torchvision()
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece
    from transformers import BertConfig, BertModel, BertTokenizerFast

    out = Path(out)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {token: i for i, token in enumerate([*specials, *WORDS])}
    tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    tokenizer = BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                  sep_token="[SEP]", mask_token="[MASK]")
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=2 * hidden, max_position_embeddings=64)
    torch.manual_seed(seed)
    hf_dir = out.parent / f".{out.name}-hf"
    BertModel(config).eval().save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    transformer = modules.Transformer(str(hf_dir), max_seq_length=48)
    pooling = modules.Pooling(transformer.get_embedding_dimension(), "mean")
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(out))
    return out
