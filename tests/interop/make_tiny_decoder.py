#!/usr/bin/env python3
# Writes a small Hugging Face decoder folder with seeded random weights (pure Python: no
# numpy or torch needed): config.json and model.safetensors in F32, transformers' names.
#   make_tiny_decoder.py DIR ARCH VOCAB [HIDDEN INTERMEDIATE LAYERS HEADS KV_HEADS HEAD_DIM]
#   (ARCH: LlamaForCausalLM or Qwen2ForCausalLM; the sizes default to 64 96 2 4 2 16)
import json, os, random, struct, sys

out, arch, vocab = sys.argv[1], sys.argv[2], int(sys.argv[3])
random.seed(7)
H, I, L, NH, KV, D = (int(x) for x in sys.argv[4:10]) if len(sys.argv) > 4 else (64, 96, 2, 4, 2, 16)
qwen = arch == "Qwen2ForCausalLM"
config = {"architectures": [arch], "model_type": "qwen2" if qwen else "llama", "vocab_size": vocab, "hidden_size": H,
          "intermediate_size": I, "num_hidden_layers": L, "num_attention_heads": NH, "num_key_value_heads": KV,
          "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu",
          "tie_word_embeddings": qwen, "bos_token_id": vocab - 1, "eos_token_id": vocab - 1}
shapes = {"model.embed_tokens.weight": [vocab, H], "model.norm.weight": [H]}
if not qwen:
    shapes["lm_head.weight"] = [vocab, H]
for i in range(L):
    w = f"model.layers.{i}."
    shapes.update({w + "input_layernorm.weight": [H], w + "self_attn.q_proj.weight": [NH * D, H],
                   w + "self_attn.k_proj.weight": [KV * D, H], w + "self_attn.v_proj.weight": [KV * D, H],
                   w + "self_attn.o_proj.weight": [H, NH * D], w + "post_attention_layernorm.weight": [H],
                   w + "mlp.gate_proj.weight": [I, H], w + "mlp.up_proj.weight": [I, H], w + "mlp.down_proj.weight": [H, I]})
    if qwen:
        shapes.update({w + "self_attn.q_proj.bias": [NH * D], w + "self_attn.k_proj.bias": [KV * D],
                       w + "self_attn.v_proj.bias": [KV * D]})
header, blobs, offset = {}, [], 0
for name in sorted(shapes):
    n = 1
    for d in shapes[name]:
        n *= d
    sd = 0.1 if name.endswith(".bias") else 0.15
    values = [1.0 + random.gauss(0, 0.1) if "norm" in name else random.gauss(0, sd) for _ in range(n)]
    blob = struct.pack("<%df" % n, *values)
    header[name] = {"dtype": "F32", "shape": shapes[name], "data_offsets": [offset, offset + len(blob)]}
    offset += len(blob)
    blobs.append(blob)
text = json.dumps(header).encode()
text += b" " * ((8 - len(text) % 8) % 8)
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
with open(os.path.join(out, "config.json"), "w") as f:
    json.dump(config, f, indent=2)
