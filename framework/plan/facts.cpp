#include "plan/facts.hpp"

namespace shrink {

const std::vector<fact_info>& fact_vocabulary() {
    static const std::vector<fact_info> v{
        {"model", fact_scope::global, "the input model (the host, at every root)"},
        {"calibration_data", fact_scope::global, "the recipe has data.calibration (the host)"},
        {"evaluation_data", fact_scope::global, "the recipe has data.evaluation (the host)"},
        {"training_data", fact_scope::global, "the recipe has data.training (the host)"},
        {"text_evaluation_data", fact_scope::global, "the recipe's data.evaluation is text, in windows of tokens (the host)"},
        {"teacher", fact_scope::global, "the model on the path can teach: held at every root, ended by quantization, renewed by a distiller"},
        {"metric", fact_scope::global, "a measured metric value (evaluators)"},
        {"activation_ranges", fact_scope::layer_and_downstream, "each layer's input min/max on calibration data"},
        {"hessians", fact_scope::layer_and_downstream, "each layer's input second moments X^T X"},
        {"channel_magnitudes", fact_scope::layer_and_downstream, "each layer's per-input-channel max |x| and mean |x|"},
        {"layer_sensitivity", fact_scope::layer_in_model,
         "how much the model's output moves when only the layer is quantized, per candidate width (analyzer.sensitivity)"},
        {"weights_sparse", fact_scope::layer, "the layer's weights carry a pruning mask"},
        {"weights_quantized", fact_scope::layer, "the layer's weights are stored quantized"},
        {"weights_factorized", fact_scope::layer, "the layer was replaced by two factors"},
    };
    return v;
}

fact_scope scope_of(const std::string& fact) {
    for (const fact_info& f : fact_vocabulary())
        if (f.name == fact) return f.scope;
    return fact_scope::global;
}

}  // namespace shrink
