// Choosing the clip range of a layer's input for 8-bit activation quantization from a
// histogram of the values calibration saw: by percentile, by the least expected squared
// error (MSE), or by the least information lost (KL divergence, TensorRT's entropy
// calibration adapted to asymmetric 8-bit). The host's int8 activations are asymmetric:
// 256 levels over [lo, hi] with 0 exactly representable, so every range here holds 0.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace clip {

/// Counts of values in `bins` equal bins over [lo, hi] (lo <= 0 <= hi).
struct histogram {
    double lo = 0, hi = 0;
    std::vector<double> counts;

    histogram(double lo, double hi, size_t bins);
    double width() const { return (hi - lo) / double(counts.size()); }
    void add(const float* values, uint64_t n);
    double total() const;
};

struct range {
    double lo = 0, hi = 0;
};

/// The candidate ranges the searches compare: [lo t, hi t] for t from 1 down to 1/8 in
/// `steps` equal steps (at 1/8 of 2,048 bins the range still spans 256: a bin per level).
std::vector<double> candidate_scales(int steps = 200);

/// [the (100 - p)th percentile, the pth], widened to hold 0; p in (50, 100].
range percentile_range(const histogram& h, double p);

/// Expected squared error of quantizing the histogram's values to 256 levels over r: a
/// value inside r rounds with error step^2 / 12 on average, one outside clips to r's edge.
double quantization_mse(const histogram& h, const range& r);

/// KL divergence between the histogram clipped to r (the mass outside added to the edge
/// bins) and the same after merging the bins of each of the 256 levels, each level's mass
/// spread evenly over its bins that held any (TensorRT's rule).
double quantization_kl(const histogram& h, const range& r);

/// The candidate range of least quantization_mse (the widest among equals).
range mse_range(const histogram& h, int steps = 200);

/// The candidate range of least quantization_kl (the widest among equals).
range entropy_range(const histogram& h, int steps = 200);

}  // namespace clip
