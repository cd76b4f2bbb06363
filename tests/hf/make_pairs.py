"""make_pairs.py ROOT CASE... — Base/Instruct pairs made by transformers
itself, for the interop tests (tests/hf/interop.sh).

Each CASE is ARCH-DTYPE[-extra][-fused] with ARCH llama (untied lm_head),
qwen3 (tied embeddings) or qwen3_moe (experts), DTYPE bf16 or f32; "extra"
gives Instruct 8 more vocabulary rows (and tokens), "fused" saves the MoE
experts as the model holds them, stacked 3-D [E, a, b] tensors
(save_original_format=False), instead of one 2-D tensor per expert.
Writes ROOT/CASE/base and ROOT/CASE/instruct with save_pretrained
(max_shard_size small enough for several shards), a tokenizer built here
with the tokenizers library (nothing downloaded) and, for Instruct, a
README.md whose front matter states a license.

Configs are scaled down (2 layers, hidden 64) so the whole suite of pairs
takes seconds.  Random init with a fixed seed; Instruct = Base + a
realistic delta per weight matrix: low rank (rank 6) plus small noise.
"""
import os
import sys

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers, decoders
from transformers import (AutoModelForCausalLM, LlamaConfig,
                          PreTrainedTokenizerFast, Qwen3Config,
                          Qwen3MoeConfig)

VOCAB = 256
EXTRA = ["<|im_start|>", "<|im_end|>", "<|tool|>", "<|think|>",
         "<|/think|>", "<|sys|>", "<|user|>", "<|asst|>"]


def tokenizer(extra):
    words = ("the refined model keeps the effective part of the delta and "
             "attenuates the rest base instruct rank singular value matrix "
             "weight tensor layer attention head expert router token").split()
    corpus = [" ".join(words[(i * 7 + j) % len(words)] for j in range(12))
              for i in range(200)]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB, special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False)
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>",
                                   bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>")
    if extra:
        fast.add_special_tokens({"additional_special_tokens": EXTRA})
    return fast


def config(arch, vocab):
    common = dict(vocab_size=vocab, hidden_size=64, intermediate_size=128,
                  num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=16,
                  max_position_embeddings=128, bos_token_id=1,
                  eos_token_id=2, pad_token_id=3)
    if arch == "llama":
        return LlamaConfig(tie_word_embeddings=False, **common)
    if arch == "qwen3":
        return Qwen3Config(tie_word_embeddings=True, **common)
    if arch == "qwen3_moe":
        return Qwen3MoeConfig(tie_word_embeddings=False, num_experts=8,
                              num_experts_per_tok=2, moe_intermediate_size=32,
                              decoder_sparse_step=1, mlp_only_layers=[],
                              norm_topk_prob=True, **common)
    raise SystemExit("unknown architecture " + arch)


def delta_like(w, gen):
    """Low rank plus noise, about 5 % of the weight's scale, per matrix
    (per expert for stacked experts, whose deltas also share a common
    part, as experts fine-tuned together do: so that the authors' d0 x rest
    view of the stack has a real cut too, k < E)."""
    shape = w.shape
    mats = w.reshape(-1, shape[-2], shape[-1]) if w.ndim == 3 else \
        w.reshape(1, shape[0], -1)
    out = torch.empty_like(mats)
    common = None
    if w.ndim == 3:
        m, n = mats.shape[1], mats.shape[2]
        common = 0.05 * mats.std().item() * (
            torch.randn(m, 6, generator=gen) @ torch.randn(6, n, generator=gen)
            / 6 ** 0.5)
    for e in range(mats.shape[0]):
        m, n = mats.shape[1], mats.shape[2]
        r = min(6, m, n)
        a = torch.randn(m, r, generator=gen)
        b = torch.randn(r, n, generator=gen)
        scale = mats[e].std().item() or 0.02
        out[e] = 0.05 * scale * (a @ b / r ** 0.5) + \
            0.005 * scale * torch.randn(m, n, generator=gen)
        if common is not None:
            out[e] = 0.3 * out[e] + common * (1 + 0.1 * e)
    return out.reshape(shape)


def make(root, case):
    parts = case.split("-")
    arch, dtype = parts[0], parts[1]
    extra, fused = "extra" in parts, "fused" in parts
    tdtype = {"bf16": torch.bfloat16, "f32": torch.float32}[dtype]
    torch.manual_seed(1234)
    base = AutoModelForCausalLM.from_config(config(arch, VOCAB),
                                            dtype=torch.float32)
    inst = AutoModelForCausalLM.from_config(config(arch, VOCAB),
                                            dtype=torch.float32)
    inst.load_state_dict(base.state_dict())
    gen = torch.Generator().manual_seed(99)
    with torch.no_grad():
        for name, p in inst.named_parameters():
            if p.ndim >= 2:
                p.add_(delta_like(p, gen))
    tok_b, tok_i = tokenizer(False), tokenizer(extra)
    if extra:
        inst.resize_token_embeddings(len(tok_i), mean_resizing=False)
        with torch.no_grad():
            emb = inst.get_input_embeddings().weight
            emb[VOCAB:] = 0.02 * torch.randn(emb.shape[0] - VOCAB, emb.shape[1],
                                             generator=gen)
            out = inst.get_output_embeddings().weight
            if out.data_ptr() != emb.data_ptr():
                out[VOCAB:] = 0.02 * torch.randn(
                    out.shape[0] - VOCAB, out.shape[1], generator=gen)
    shard = "40KB" if dtype == "bf16" else "80KB"
    for side, model, tok in (("base", base, tok_b), ("instruct", inst, tok_i)):
        d = os.path.join(root, case, side)
        model.to(tdtype)
        model.generation_config.pad_token_id = 3
        kw = {"save_original_format": False} if fused else {}
        model.save_pretrained(d, max_shard_size=shard, **kw)
        tok.save_pretrained(d)
    with open(os.path.join(root, case, "instruct", "README.md"), "w") as f:
        f.write("---\nlicense: apache-2.0\nlanguage:\n- en\n"
                "pipeline_tag: text-generation\n---\n\n"
                "# The Instruct model's own card\n\nNot the refined model.\n")


if __name__ == "__main__":
    for c in sys.argv[2:]:
        make(sys.argv[1], c)
        print("made", c, file=sys.stderr)
