// The fact vocabulary stage contracts are written in, and how far each fact reaches.
#pragma once

#include <string>
#include <vector>

namespace shrink {

enum class fact_scope {
    global,                // about the whole run: data present, a teacher, a metric
    layer,                 // about a layer's own weights: quantized, sparse, factorized
    layer_and_downstream,  // measured on activations: a change upstream makes it stale
    layer_in_model,        // measured at the model's output: a change anywhere makes it stale
};

struct fact_info {
    std::string name;
    fact_scope scope;
    std::string doc;
};

/// Every fact shrink knows (docs/plugins.md lists them). Plugins may use others: those
/// are treated as global.
const std::vector<fact_info>& fact_vocabulary();
fact_scope scope_of(const std::string& fact);

}  // namespace shrink
