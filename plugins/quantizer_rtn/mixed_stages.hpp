// Mixed precision, in two stages.
//
// analyzer.sensitivity measures, for each layer in its scope and each width RTN stores
// (2, 3, 4, 8), how far the model's output distribution moves when only that layer is
// quantized: the mean KL divergence KL(p_float || p_quantized) over the calibration rows
// (every predicted token of a text window, every sample of a classifier). It never changes
// the model: each trial runs through the host's forward_trial. Per layer it stores the
// artifacts `sensitivity` (f64, one KL per width), `sensitivity_bits` (i32, the widths)
// and `sensitivity_grid` (i64: symmetric, group size), backing the fact layer_sensitivity,
// which any later weight change makes stale.
//
// quantizer.mixed assigns each layer a width so that the layers' stored bytes (codes,
// scales and zero points, as the host counts them) stay within target_bits_per_weight and
// the summed measured KL is least (bit_allocation.hpp), then quantizes each layer by RTN at
// its width. The report lists the width each layer got.
#pragma once

#include <shrink/plugin.hpp>

namespace mixed {

shrink::stage_type sensitivity_stage();
shrink::stage_type mixed_stage();

}  // namespace mixed
