// The model graph as JSON: what shrink's model files keep in __metadata__["shrink.graph"]
// (docs/model-format.md). Layers in order, with the fields their op uses.
#pragma once

#include "model/model.hpp"

#include <nlohmann/json.hpp>

namespace shrink {

nlohmann::json graph_to_json(const model& m);
/// Fills m's input, output, info and layers. Throws nlohmann::json::exception on a missing
/// or mistyped field; the graph's meaning is checked later (model::validate).
void graph_from_json(const nlohmann::json& graph, model& m);

}  // namespace shrink
