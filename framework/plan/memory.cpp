// Pass: each stage's peak memory (the model states alive then, what the stage holds,
// data and the process itself) against the memory limit.
#include "plan/passes.hpp"

#include <optional>
#include <set>
#include <sys/resource.h>
#include <unistd.h>

namespace shrink {

void estimate_memory(plan& p, plan_inputs& in) {
    const recipe& r = in.r;
    diagnostics& diag = in.diag;
    const size_t n = p.stages.size();
    const uint64_t state_bytes = std::max<uint64_t>(p.model.memory_bytes, p.model.parameters * 4);
    const uint64_t widths = uint64_t(p.model.activation_floats);
    uint64_t inputs = 0, hessians = 0;
    for (const auto& l : p.model.layers)
        if (has_matrix(l.op)) {
            inputs += uint64_t(l.input_size);
            hessians += uint64_t(l.in) * uint64_t(l.in) * 8;
        }
    uint64_t data_bytes = 0;
    for (const data_source* d : {&r.calibration, &r.evaluation})
        if (d->present) data_bytes += (d->split == "train" ? 60000u : 10000u) * uint64_t(784 + 4 + 8);
    if (r.memory_limit) {
        p.memory_limit = *r.memory_limit;
        p.memory_limit_source = "limits.memory";
    } else {
        p.memory_limit = uint64_t(sysconf(_SC_PHYS_PAGES)) * uint64_t(sysconf(_SC_PAGE_SIZE));
        p.memory_limit_source = "this machine's memory";
    }
    // The process itself (code and data of shrink, oneDNN, the plugins), measured now.
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    const uint64_t process_bytes = uint64_t(usage.ru_maxrss) * 1024;
    // The outline a stage's own memory estimate reads (abi.h, shrink_model_outline).
    shrink_model_outline outline{};
    outline.struct_size = sizeof outline;
    outline.parameters = p.model.parameters;
    outline.activation_floats = widths;
    outline.calibration_samples = r.calibration.present ? (r.calibration.samples ? r.calibration.samples : 60000) : 0;
    for (const auto& l : p.model.layers)
        if (has_matrix(l.op)) {
            ++outline.matrix_layers;
            outline.largest_weight = std::max(outline.largest_weight, uint64_t(l.in) * uint64_t(l.out));
            outline.widest_input = std::max(outline.widest_input, uint64_t(l.in));
        }
    std::vector<int> pending(n);
    for (size_t i = 0; i < n; ++i) pending[i] = int(p.stages[i].children.size());
    std::set<int> retained;
    for (int i : p.order) {
        planned_stage& st = p.stages[size_t(i)];
        if (st.parent >= 0 && --pending[size_t(st.parent)] == 0) retained.erase(st.parent);
        const uint64_t states = 2 + retained.size();  // the input model, the retained branch points, this stage's own
        uint32_t res = st.type ? st.type->type->resources : 0;
        uint64_t extra = 0;
        std::string detail = std::to_string(states) + " model states x " + format_bytes(state_bytes);
        auto add = [&](uint64_t bytes, const char* what) {
            extra += bytes;
            detail += " + " + format_bytes(bytes) + " " + what;
        };
        // A stage that estimates its own memory (abi.h, memory_bytes) replaces what its resource bits imply.
        const shrink_stage_type* type = st.type ? st.type->type : nullptr;
        std::optional<uint64_t> own;
        if (type && type->memory_bytes) {
            std::vector<shrink_param_value> storage;
            const shrink_params cp = c_params(st.params, storage);
            shrink_error error{};
            uint64_t bytes = 0;
            if (type->memory_bytes(type->state, &cp, &outline, &bytes, &error) != SHRINK_OK)
                diag.error(st.spec->use_mark, "stage '" + st.spec->id + "': the plugin could not estimate its memory: " + error.message);
            else
                own = bytes;
        }
        if (own) {
            add(*own, "the stage's own estimate");
            res = 0;  // it replaces what the resource bits would add
        }
        if (res & SHRINK_RESOURCE_WEIGHT_COPY) add(p.model.parameters * 8, "weight copies");
        if (res & SHRINK_RESOURCE_FORWARD) add(p.model.parameters * 4 + 256 * widths * 8, "decoded weights and a batch");
        if (res & SHRINK_RESOURCE_ACTIVATION_CACHE)
            add((r.calibration.samples ? r.calibration.samples : 60000) * inputs * 4, "activation cache");
        if (res & SHRINK_RESOURCE_HESSIANS) add(hessians, "Hessians");
        if (res & SHRINK_RESOURCE_TRAINING_STATE) add(p.model.parameters * 12, "training state");
        if (data_bytes) add(data_bytes, "data");
        add(process_bytes, "the process");
        st.peak_memory = states * state_bytes + extra;
        st.memory_detail = detail;
        if (!st.children.empty()) retained.insert(i);
        if (st.peak_memory > p.memory_limit)
            diag.error(r.memory_limit ? r.limits_mark : st.spec->use_mark,
                       "stage '" + st.spec->id + "' needs about " + format_bytes(st.peak_memory) + " at its peak (" + detail +
                           "), more than the memory limit of " + format_bytes(p.memory_limit) + " (" + p.memory_limit_source +
                           "); branch later, evaluate fewer copies, or raise limits.memory");
    }
}

}  // namespace shrink
