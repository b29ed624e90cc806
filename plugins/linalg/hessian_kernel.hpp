// The sums calibrator.hessian keeps: H = X^T X over every input row a linear layer sees,
// in double. Each batch's product runs in float on oneDNN's sgemm, lower half only (H is
// symmetric), and is added to the double sum, so a long calibration set does not lose the
// small terms to float rounding while the product runs at the GEMM peak.
#pragma once

#include <cstdint>
#include <vector>

namespace hessian {

/// h (cols x cols, row-major; only its lower half is written) += X^T X for `rows` rows of
/// `cols` floats. The result does not depend on the thread count.
void accumulate_lower(std::vector<double>& h, const float* x, uint64_t rows, uint64_t cols);

/// Copies h's lower half onto its upper half.
void mirror(std::vector<double>& h, uint64_t cols);

}  // namespace hessian
