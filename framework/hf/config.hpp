// A Hugging Face model folder's config.json, for the decoder families shrink reads:
// LlamaForCausalLM, MistralForCausalLM (without a sliding window) and Qwen2ForCausalLM.
// Every field a forward pass depends on is read or derived here and checked; anything that
// would make shrink compute a different function from transformers' (rope scaling, a
// sliding window, another activation) is refused with the key and its value.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace shrink::hf {

struct decoder_config {
    std::string architecture;  // e.g. "LlamaForCausalLM"
    std::string model_type;    // e.g. "llama"
    int64_t vocab_size = 0;
    int64_t hidden_size = 0;
    int64_t intermediate_size = 0;
    int64_t layers = 0;          // num_hidden_layers
    int64_t heads = 0;           // num_attention_heads
    int64_t kv_heads = 0;        // num_key_value_heads (grouped-query attention when < heads)
    int64_t head_dim = 0;        // given, or hidden_size / heads
    int64_t max_positions = 0;   // max_position_embeddings: the longest context
    double rms_norm_eps = 1e-6;
    double rope_theta = 10000;   // top level, or rope_parameters.rope_theta (transformers 5)
    bool tie_word_embeddings = false;
    bool qkv_bias = false;       // Qwen 2 always; Llama with attention_bias
    bool o_bias = false;         // Llama with attention_bias
    std::optional<int64_t> bos_token_id;
    std::vector<int64_t> eos_token_ids;
    std::string dtype;           // torch_dtype or dtype, as written (informational)
};

/// Reads FOLDER/config.json (or the file itself). Throws input_error naming the file and
/// key: "config.json: rope_scaling.rope_type: 'llama3' is not supported ...".
decoder_config read_decoder_config(const std::filesystem::path& path);
/// The same from text already read; `file` names it in messages.
decoder_config parse_decoder_config(const std::string& json_text, const std::filesystem::path& file);

/// config.json text transformers reads back to the same model.
std::string write_decoder_config(const decoder_config& c);

}  // namespace shrink::hf
