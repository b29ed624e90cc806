// What the plugin's stages share: their scope, RTN of a weight a block of rows at a time,
// and storing the result.
#pragma once

#include "rtn_kernel.hpp"

#include <shrink/plugin.hpp>

#include <vector>

namespace rtn_stage {

/// The layers a stage quantizes: its scope (the "layers" param), refusing quantized ones.
std::vector<shrink::layer> layers_to_quantize(shrink::stage_context& ctx, const char* stage);

/// RTN of a layer's weight on the CPU, never holding the whole weight as floats when its
/// scales are per row or per group (the same codes as all at once).
rtn::result quantize_on_cpu(const shrink::model& m, const shrink::layer& l, const rtn::options& o);

/// Stores an RTN result as the layer's weight.
void write_quantized(shrink::model& m, const shrink::layer& l, const rtn::options& o, rtn::result r);

}  // namespace rtn_stage
