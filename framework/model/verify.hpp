// Checks that a written model holds what it should: the same tensors, encodings, masks and
// values as the in-memory model it was written from, and the encodings the plan promised
// for its layers (quantized, sparse, factorized).
#pragma once

#include "model/model.hpp"

#include <map>
#include <set>
#include <string>
#include <vector>

namespace shrink {

/// Differences between the model a stage produced and the one read back; empty = equal.
std::vector<std::string> compare_models(const model& expected, const model& written);

/// Layers (by their names in the input model) that must carry an encoding:
/// fact ("weights_quantized", "weights_sparse", "weights_factorized") -> layer names.
using encoding_promises = std::map<std::string, std::set<std::string>>;

/// Promises the model does not keep; empty = all kept. Checks weights_quantized, the one
/// encoding a stage guarantees for every layer in its scope. A factorized layer's promise
/// applies to the two layers made from it.
std::vector<std::string> check_promises(const model& m, const encoding_promises& promised);

}  // namespace shrink
