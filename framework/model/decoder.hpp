// The graph of a Llama-family decoder (Llama, Mistral, Qwen 2) in shrink's ops, with
// Hugging Face's tensor names, so that weight stages see q/k/v/o/gate/up/down as linear
// layers with familiar names (layers.3.self_attn.q_proj) and a folder's tensors load
// under the names they have there.
//
// Per block i, on the residual stream x:
//   h = x + o_proj(attention(q_proj(n), k_proj(n), v_proj(n), tokens)),  n = rms_norm(x)
//   x' = h + down_proj(silu(gate_proj(m)) * up_proj(m)),                  m = rms_norm(h)
// then logits = lm_head(rms_norm(x)); the head reads the embedding's table when tied.
// The input "tokens" is [id, position] per token (one row per token).
#pragma once

#include "model/model.hpp"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace shrink {

struct decoder_shape {
    int64_t vocab = 0, hidden = 0, intermediate = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0;
    double rope_theta = 10000;
    float rms_eps = 1e-6f;
    bool tied = false;     // lm_head reads model.embed_tokens.weight
    bool qkv_bias = false; // q, k, v projections have biases (Qwen 2)
    bool o_bias = false;   // o projection has a bias (Llama with attention_bias)
};

/// The decoder block a layer belongs to: "layers.3" for "layers.3.self_attn.q_proj" (and
/// "model.layers.3" for "model.layers.3.mlp"), "" for a layer outside blocks. Block-by-block
/// runs (run/block_feed.hpp) and their memory plan keep a block's layers together.
std::string block_of(const std::string& layer_name);

/// Every tensor such a decoder has, with its shape, in Hugging Face's names.
std::vector<std::pair<std::string, std::vector<int64_t>>> decoder_tensors(const decoder_shape& s);

/// Sets m's input, output and layers to the decoder's graph (its tensors are the caller's:
/// decoder_tensors names them).
void set_decoder_graph(model& m, const decoder_shape& s);

}  // namespace shrink
