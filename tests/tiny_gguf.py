"""A tiny GGUF chat model, written for the tests with the ``gguf`` package (llama.cpp's own writer).

It is a real llama-architecture model that llama.cpp loads and runs: one
layer, 64-wide, random weights (its answers are noise), and a vocabulary of
the 256 bytes plus ``▁`` (a space), so every ASCII character of a prompt is
one token.  Its chat template is its own, unlike SmolLM2's, so the number of
prompt tokens the runtime reports shows which template rendered the prompt.
"""

from __future__ import annotations

from pathlib import Path

TEMPLATE = "{% for message in messages %}<{{ message['role'] }}>{{ message['content'] }}\n{% endfor %}<assistant>"
CONTEXT_LENGTH = 1024
EMBEDDING, FEED_FORWARD, HEADS = 64, 128, 4


def rendered(prompt: str) -> str:
    """What ``TEMPLATE`` makes of a bare prompt (one user turn), written out by hand."""
    return f"<user>{prompt}\n<assistant>"


def write_tiny_gguf(path: Path, *, chat_template: str | None = TEMPLATE) -> Path:
    import gguf
    import numpy as np

    tokens = ["<unk>", "<s>", "</s>", *(f"<0x{byte:02X}>" for byte in range(256)), "\u2581"]
    types = [
        gguf.TokenType.UNKNOWN,
        gguf.TokenType.CONTROL,
        gguf.TokenType.CONTROL,
        *[gguf.TokenType.BYTE] * 256,
        gguf.TokenType.NORMAL,
    ]
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny test model")
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_context_length(CONTEXT_LENGTH)
    writer.add_embedding_length(EMBEDDING)
    writer.add_block_count(1)
    writer.add_feed_forward_length(FEED_FORWARD)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(HEADS)
    writer.add_rope_dimension_count(EMBEDDING // HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * len(tokens))
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(False)
    writer.add_add_space_prefix(False)
    if chat_template is not None:
        writer.add_chat_template(chat_template)
    random = np.random.default_rng(7)

    def weights(*shape: int) -> np.ndarray:
        return (random.standard_normal(shape) * 0.02).astype(np.float32)

    ones = np.ones(EMBEDDING, dtype=np.float32)
    writer.add_tensor("token_embd.weight", weights(len(tokens), EMBEDDING))
    writer.add_tensor("output_norm.weight", ones)
    writer.add_tensor("output.weight", weights(len(tokens), EMBEDDING))
    writer.add_tensor("blk.0.attn_norm.weight", ones)
    for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
        writer.add_tensor(f"blk.0.{name}.weight", weights(EMBEDDING, EMBEDDING))
    writer.add_tensor("blk.0.ffn_norm.weight", ones)
    writer.add_tensor("blk.0.ffn_gate.weight", weights(FEED_FORWARD, EMBEDDING))
    writer.add_tensor("blk.0.ffn_up.weight", weights(FEED_FORWARD, EMBEDDING))
    writer.add_tensor("blk.0.ffn_down.weight", weights(EMBEDDING, FEED_FORWARD))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
