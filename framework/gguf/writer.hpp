// GGUF files for llama.cpp (its model format: a header of typed key/value metadata, tensor
// records, then the tensors, each aligned to 32 bytes), written from a decoder imported
// from a Hugging Face folder, with its byte-level BPE tokenizer.
//
// Llama and Mistral are written as llama.cpp's "llama" architecture, whose rotary
// embedding rotates adjacent pairs: the rows of q_proj and k_proj are permuted so that
// the pairs transformers rotates (i, i + d/2) become (2i, 2i + 1), as llama.cpp's own
// converter does. Qwen 2 is written as "qwen2", which rotates the halves as transformers
// does (no permutation) and has q/k/v biases.
#pragma once

#include "model/model.hpp"
#include "text/tokenizer.hpp"

#include <filesystem>
#include <string>

namespace shrink::gguf {

enum class weight_type { f32, f16 };

/// Writes `m` (imported from a Hugging Face folder: info["hf.config"]) with `tok` as a GGUF
/// file, its weights in `type` (norms stay F32, as llama.cpp keeps them), quantized and
/// pruned weights decoded first. Atomic (a temporary name, then renamed). Throws
/// input_error for a model that is not such a decoder or a tokenizer with more ids than
/// the embedding.
void write_gguf(const model& m, const text::tokenizer& tok, const std::filesystem::path& file, weight_type type);

}  // namespace shrink::gguf
