// Where a Hugging Face folder keeps its weights: model.safetensors, or the shards
// model.safetensors.index.json lists. Every shard must be a regular file inside the folder
// (no absolute paths, no "..", no symbolic link out of it), as ONNX's external data is.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace shrink::hf {

struct weight_files {
    std::vector<std::filesystem::path> files;          // each shard once, in name order
    std::map<std::string, std::filesystem::path> file_of;  // tensor name -> shard (empty for a single file)
};

/// The folder's weight files. Throws input_error naming the index file and the tensor
/// whose shard is missing, outside the folder or not a regular file.
weight_files find_weight_files(const std::filesystem::path& folder);
/// The same from an index's text already read; `index` names it and its folder.
weight_files parse_shard_index(const std::string& json_text, const std::filesystem::path& index);

}  // namespace shrink::hf
