// What a path carries from stage to stage: the model, what stages measured about it (the
// artifacts), and the teacher distillation learns from. Forked per branch; a fork shares
// tensors and artifacts until a stage writes one.
#pragma once

#include "model/model.hpp"
#include "run/artifacts.hpp"

#include <memory>

namespace shrink {

struct model_state {
    model net;
    artifact_map artifacts;
    /// The model distillation losses learn from: the recipe's teacher file or input model,
    /// until a distiller keeps the model it distilled (shared: branches do not copy it).
    std::shared_ptr<const model> teacher;
    bool teacher_from_stage = false;  // a distiller set it: checkpoints store it
};

}  // namespace shrink
