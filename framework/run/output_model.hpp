// The model a leaf's path produced, written to RUN_DIR/models and read back to check it.
#pragma once

#include "plan/plan.hpp"
#include "run/model_state.hpp"

#include <filesystem>
#include <memory>

namespace shrink {

/// Writes leaf `i`'s model as models/NAME.safetensors (NAME: the last stage on the path
/// that changed weights, else "input"; a file already there is kept) and, when the recipe
/// asks, NAME.onnx. `state` is released once written, before the file is read back: the
/// file must hold exactly the bytes written, read back to what serializes to those bytes,
/// in the encodings the plan promised. Throws stage_error naming the file otherwise.
void write_output_model(const plan& p, int i, std::shared_ptr<model_state> state, const std::filesystem::path& models_dir);

}  // namespace shrink
