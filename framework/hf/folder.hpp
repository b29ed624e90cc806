// A Hugging Face decoder folder in and out: config.json, model.safetensors or its shards,
// and the tokenizer files beside them.
#pragma once

#include "hf/config.hpp"
#include "model/decoder.hpp"
#include "model/model.hpp"

#include <filesystem>
#include <map>
#include <string>

namespace shrink::hf {

/// Whether `path` is a Hugging Face model folder: a directory holding config.json.
bool is_model_folder(const std::filesystem::path& path);

/// The sha256 of a folder as a model input: over the names and contents of config.json,
/// the weight files (and their index) and tokenizer.json, in name order.
std::string folder_sha256(const std::filesystem::path& folder);

/// Where the tokenizer of a model is when nobody names it: the model's own folder, or for a
/// model file made from a folder the folder it came from (info["hf.source"]); empty when
/// neither.
std::filesystem::path tokenizer_location(const std::filesystem::path& model, const std::map<std::string, std::string>& info);

/// The decoder shape config.json describes.
decoder_shape shape_of(const decoder_config& c);

/// A shrink model of the folder's decoder. Every tensor the config implies must be in the
/// weights with its shape, in F32 (read in place from the mapped file), F16 or BF16, and
/// finite; a tensor the config does not imply is refused, except rotary inv_freq buffers
/// and a tied model's saved lm_head. info["hf.config"] keeps config.json as read and
/// info["hf.source"] the folder. Throws input_error naming the folder, file and tensor.
model import_folder(const std::filesystem::path& folder);

/// The floats of decoder tensor `name` (transformers' name) as the compressed model
/// computes them: decoded (quantized weights dequantized, pruned ones zero), or, for a
/// projection a factorizer split in two, the product of its factors (B x A). Throws
/// input_error when the model has neither.
std::vector<float> weight_values(const model& m, const std::string& name);

/// Writes `m` (a decoder imported from a folder, then compressed) as a folder transformers
/// loads: config.json, model.safetensors in F32 (weight_values: quantized weights
/// dequantized, pruned ones zero, factorized ones multiplied back), and the tokenizer files of `tokenizer_from` (a folder; none when empty). Written
/// into a temporary folder beside `folder`, then renamed; refuses a folder that exists.
/// `files` (name -> content) are written into the folder too, e.g. a tokenizer made here.
void export_folder(const model& m, const std::filesystem::path& folder, const std::filesystem::path& tokenizer_from,
                   const std::map<std::string, std::string>& files = {});

}  // namespace shrink::hf
