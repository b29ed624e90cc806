// shrink's tensor encodings as safetensors entries (docs/model-format.md). A logical
// tensor W is stored as
//   W         its payload: F32, F16 or BF16 dense; F32 kept values (sparse); I8 codes
//             (int8); U8 codes packed two per byte (int4)
//   W.scales  F32, W.zeros I8 (asymmetric), W.mask U8 (bit i = element i kept, LSB first)
// and described by a record in __metadata__["shrink.tensors"]: shape, sparse, kept, bits
// (32, 16, 8 or 4), dtype for 16-bit floats ("f16" or "bf16"), and the quantization
// (symmetric, group_size).
#pragma once

#include "model/model.hpp"
#include "model/safetensors_file.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <set>
#include <string>

namespace shrink::encodings {

/// Adds the entries that store `t` as `name`; their payloads are produced from `t` (which
/// must outlive the write) only when the file is written.
void add_entries(const std::string& name, const tensor& t, std::map<std::string, safetensors::out_entry>& out);

/// The tensor's record for "shrink.tensors".
nlohmann::json record(const tensor& t);

/// Reads tensor `name` from its record and the file's entries, marking the entries it
/// used in `claimed`. Dense payloads whose bytes are suitably aligned are read in place
/// when `keep` keeps the file's bytes alive (a mapped file); everything else is copied.
/// Checks values are finite and codes in range. Throws input_error naming the file.
tensor read_tensor(const std::string& name, const nlohmann::json& record, const safetensors::reader& file,
                   const std::shared_ptr<const void>& keep, std::set<std::string>& claimed);

}  // namespace shrink::encodings
