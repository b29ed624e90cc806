#include "run/stage_run.hpp"

#include "hf/folder.hpp"
#include "onnx/import.hpp"
#include "plan/facts.hpp"
#include "run/stage_host.hpp"
#include "util/errors.hpp"

#include <cstdio>
#include <sys/resource.h>

namespace shrink {

model load_recipe_model(const std::string& path) {
    return hf::is_model_folder(path) ? hf::import_folder(path) : load_any_model(path);
}

// Linux reports kilobytes.
uint64_t peak_rss_bytes() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return uint64_t(usage.ru_maxrss) * 1024;
}

std::map<std::string, double> run_stage(const planned_stage& st, model_state& state, data_access& data,
                                        const std::filesystem::path& artifact_pool, const stage_host::log_sink& log) {
    artifact_scope artifacts{artifact_pool, {}};
    for (const std::string& f : st.provides_facts)
        if (scope_of(f) != fact_scope::global) artifacts.facts.insert(f);
    stage_host host(
        state, [&](shrink_split s) -> const split_view& { return data.get(s); }, st.spec->id, st.seed,
        st.kind == "evaluator", parse_device(st.device).value_or(device_choice{}), artifacts);
    if (log) host.capture_log(log);
    std::vector<shrink_param_value> storage;
    const shrink_params params = c_params(st.params, storage);
    shrink_error error{};
    const shrink_stage_type& t = *st.type->type;
    if (t.run(t.state, &params, host.table(), &error) != SHRINK_OK)
        throw stage_error("stage '" + st.spec->id + "' (" + st.spec->use + ") failed: " + error.message);
    try {
        state.net.validate();
    } catch (const std::exception& e) {
        throw stage_error("stage '" + st.spec->id + "' (" + st.spec->use + ") left an invalid model: " + e.what());
    }
    // What was measured on the weights this stage changed is gone with them. The plan
    // names the input model's layers: a factorized layer's halves answer for it.
    forget_stale(state.artifacts, st.makes_stale, host.stored_artifacts(), [&](const std::string& name) {
        const layer* l = state.net.find_layer(name);
        return l && !l->factor_of.empty() ? l->factor_of : name;
    });
    return host.results();
}

void print_error(const std::string& message) {
    std::fprintf(stderr, "%s%s\n", message.find(": error: ") == std::string::npos ? "error: " : "", message.c_str());
}

}  // namespace shrink
