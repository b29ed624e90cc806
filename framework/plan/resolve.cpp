// Pass: each stage's type, typed params, contract (facts), scope and device.
#include "plan/passes.hpp"

#include "devices/cuda_probe.hpp"
#include "devices/device.hpp"
#include "util/random.hpp"
#include "util/text.hpp"

#include <algorithm>
#include <optional>

namespace shrink {

namespace {

const char* type_word(int32_t t) {
    switch (t) {
        case SHRINK_PARAM_INT: return "integer";
        case SHRINK_PARAM_FLOAT: return "number";
        case SHRINK_PARAM_BOOL: return "true/false";
        case SHRINK_PARAM_LAYERS: return "list of layer names";
        default: return "choice";
    }
}

/// Types a recipe value against its declaration; nullopt after reporting a problem.
std::optional<resolved_param> resolve_value(const shrink_param_decl& d, const yaml_node& value, const std::string& where,
                                            const model_outline& model, diagnostics& diag) {
    resolved_param p;
    p.name = d.name;
    p.type = d.type;
    const std::string text = value.text;
    auto bad = [&](const std::string& why) {
        diag.error(value.mark, where + "param '" + d.name + "' " + why);
        return std::nullopt;
    };
    if (d.type == SHRINK_PARAM_LAYERS) {
        std::vector<const yaml_node*> names;
        if (value.is_scalar()) names.push_back(&value);
        else if (value.is_sequence())
            for (const yaml_node& item : value.items) names.push_back(&item);
        else return bad("needs a list of layer names");
        for (const yaml_node* n : names) {
            if (!n->is_scalar()) return bad("needs a list of layer names");
            if (model.find(n->text) < 0) {
                diag.error(n->mark, where + "param '" + d.name + "': the model has no layer '" + n->text + "'" +
                                        did_you_mean(n->text, model.names()));
                return std::nullopt;
            }
            p.text += (p.text.empty() ? "" : ",") + n->text;
        }
        return p;
    }
    if (!value.is_scalar()) return bad(std::string("needs a ") + type_word(d.type) + " value");
    switch (d.type) {
        case SHRINK_PARAM_INT: {
            auto v = value.quoted ? std::nullopt : parse_decimal_int(text);
            if (!v) return bad("must be a decimal integer, got '" + text + "'");
            if (double(*v) < d.min_value || double(*v) > d.max_value)
                return bad("must be in [" + format_double(d.min_value) + ", " + format_double(d.max_value) + "], got " + text);
            p.int_value = *v;
            p.float_value = double(*v);
            p.text = std::to_string(*v);
            break;
        }
        case SHRINK_PARAM_FLOAT: {
            auto v = value.quoted ? std::nullopt : parse_finite_double(text);
            if (!v) return bad("must be a finite decimal number, got '" + text + "'");
            if (*v < d.min_value || *v > d.max_value)
                return bad("must be in [" + format_double(d.min_value) + ", " + format_double(d.max_value) + "], got " + text);
            p.float_value = *v;
            p.text = format_double(*v);
            break;
        }
        case SHRINK_PARAM_BOOL:
            if (value.quoted || (text != "true" && text != "false")) return bad("must be true or false, got '" + text + "'");
            p.int_value = text == "true";
            p.text = text;
            break;
        default: {
            const std::vector<std::string> choices = split(d.choices, '|');
            if (std::find(choices.begin(), choices.end(), text) == choices.end())
                return bad("must be one of " + std::string(d.choices) + ", got '" + text + "'" + did_you_mean(text, choices));
            p.text = text;
        }
    }
    return p;
}

/// Whether a contract entry's condition holds: `name` (the param is set) or `name=value`
/// (the param's text is value).
bool param_is_set(const std::vector<resolved_param>& params, const std::string& when) {
    const size_t eq = when.find('=');
    const std::string name = when.substr(0, eq);
    for (const resolved_param& p : params)
        if (p.name == name) {
            if (eq != std::string::npos) return p.text == when.substr(eq + 1);
            if (p.type == SHRINK_PARAM_CHOICE) return p.text != "none";
            if (p.type == SHRINK_PARAM_FLOAT) return p.float_value != 0;
            if (p.type == SHRINK_PARAM_LAYERS) return !p.text.empty();
            return p.int_value != 0;
        }
    return false;
}

/// Type, params, contract, scope and device of one stage (its drop comes later, once the
/// chain of stages before it is known).
void resolve_stage(const stage_spec& s, const registry& plugins, const recipe& r, const model_outline& model,
                   planned_stage& out, std::vector<std::string>& notes, diagnostics& diag) {
    out.spec = &s;
    out.seed = derive_seed(r.seed, "stage:" + s.id);
    out.type = plugins.find(s.use);
    if (!out.type) {
        diag.error(s.use_mark, "unknown stage type '" + s.use + "'" + did_you_mean(s.use, plugins.type_names()) +
                                   " (known types: 'shrink plugins')");
        return;
    }
    out.kind = out.type->kind();
    const shrink_stage_type& t = *out.type->type;
    out.time_class = t.time_class;
    const std::string where = "stage '" + s.id + "' (" + s.use + "): ";

    std::vector<std::string> declared;
    for (uint32_t i = 0; i < t.param_count; ++i) declared.push_back(t.params[i].name);
    for (const stage_param& p : s.params)
        if (std::find(declared.begin(), declared.end(), p.name) == declared.end())
            diag.error(p.value.mark, where + "unknown param '" + p.name + "'" + did_you_mean(p.name, declared) +
                                         " (see 'shrink describe " + s.use + "')");
    bool params_ok = true;
    for (uint32_t i = 0; i < t.param_count; ++i) {
        const shrink_param_decl& d = t.params[i];
        auto given = std::find_if(s.params.begin(), s.params.end(), [&](const stage_param& p) { return p.name == d.name; });
        std::optional<resolved_param> v;
        if (given != s.params.end()) {
            v = resolve_value(d, given->value, where, model, diag);
        } else if (d.default_value) {
            yaml_node def = parse_yaml(d.default_value, "default of " + s.use + "." + d.name);
            v = resolve_value(d, def, where, model, diag);
            if (v) v->from_default = true;
        } else {
            diag.error(s.params_mark.line ? s.params_mark : s.mark, where + "param '" + std::string(d.name) + "' is required");
        }
        if (v) out.params.push_back(*v);
        else params_ok = false;
    }
    if (!params_ok) return;

    for (uint32_t i = 0; i < t.fact_count; ++i) {
        const shrink_fact_decl& f = t.facts[i];
        if (f.when_param && !param_is_set(out.params, f.when_param)) continue;
        auto& set = f.relation == SHRINK_FACT_REQUIRES   ? out.requires_facts
                    : f.relation == SHRINK_FACT_PROVIDES ? out.provides_facts
                    : f.relation == SHRINK_FACT_FORBIDS  ? out.forbids_facts
                                                         : out.invalidates_facts;
        set.insert(f.fact);
    }
    // An evaluator that declares its metrics must report the one the recipe judges (or,
    // without a budget, the one its report shows).
    if (out.kind == "evaluator" && t.metrics) {
        const std::vector<std::string> metrics = split(t.metrics, ',');
        const std::string& metric = r.budget.metric;
        std::string listed;
        for (const std::string& m : metrics) listed.append(listed.empty() ? "" : ", ").append(m);
        if (std::find(metrics.begin(), metrics.end(), metric) == metrics.end())
            diag.error(s.use_mark, where + "reports " + listed + ", not " + metric +
                                       (r.budget.present ? ", the budget's metric (line " + std::to_string(r.budget.mark.line) + ")"
                                                         : ", the metric the report shows without a budget") +
                                       "; use an evaluator of " + metric + " or a budget on " + metrics.front());
    }

    // A distiller learns from a teacher and a fine-tuner from data, whatever their plugins declare.
    if (out.kind == "distiller") out.requires_facts.insert("teacher");
    if (out.kind == "distiller" || out.kind == "finetuner") out.requires_facts.insert("training_data");

    // Scope: the first layers param when set, else every layer with a weight matrix.
    for (const resolved_param& p : out.params)
        if (p.type == SHRINK_PARAM_LAYERS) {
            for (const std::string& name : p.text.empty() ? std::vector<std::string>{} : split(p.text, ','))
                out.scope.push_back(model.find(name));
            break;
        }
    if (out.scope.empty())
        for (size_t l = 0; l < model.layers.size(); ++l)
            if (has_matrix(model.layers[l].op)) out.scope.push_back(int(l));

    const std::string device = s.device.empty() ? r.device : s.device;
    const source_mark& device_mark = s.device.empty() ? r.device_mark : s.device_mark;
    const bool has_cuda_path = t.devices & SHRINK_DEVICE_CUDA;
    const cuda_status& cuda = probe_cuda();
    const std::optional<device_choice> asked = parse_device(device);
    if (asked && asked->cuda) {
        const source_mark& at = device_mark.line ? device_mark : s.mark;
        // Both reasons when both hold: the plan reads the same whatever the build (a build
        // without the CUDA toolkit has no cuda paths and sees no device).
        if (!has_cuda_path)
            diag.error(at, where + "device '" + device + "', but this stage type runs only on cpu; use device: cpu or auto, or a plugin with a cuda path");
        if (cuda.devices == 0)
            diag.error(at, where + "device '" + device + "', but no CUDA device is visible (" + cuda.reason + ")");
        else if (asked->ordinal >= cuda.devices)
            diag.error(at, where + "device '" + device + "', but only " + std::to_string(cuda.devices) + " CUDA device(s) are visible (cuda:0" +
                               (cuda.devices > 1 ? " to cuda:" + std::to_string(cuda.devices - 1) : std::string()) + ")");
        out.device = asked->text();
    } else if (device == "auto") {
        out.device = has_cuda_path && cuda.devices > 0 ? "cuda:0" : "cpu";
        if (out.device == "cpu" && !(t.devices & SHRINK_DEVICE_CPU))
            diag.error(device_mark.line ? device_mark : s.mark,
                       where + "this stage type runs only on cuda, and no CUDA device is visible (" + cuda.reason + ")");
        notes.push_back("stage '" + s.id + "': device auto chose " + out.device +
                        (out.device != "cpu" ? "" : has_cuda_path ? " (" + cuda.reason + ")" : " (" + s.use + " has no cuda path)"));
    } else if (!(t.devices & SHRINK_DEVICE_CPU)) {
        diag.error(s.use_mark, where + "this stage type does not run on cpu");
    }
}

}  // namespace

void resolve_stages(plan& p, plan_inputs& in) {
    p.stages.resize(in.r.stages.size());
    for (size_t i = 0; i < in.r.stages.size(); ++i)
        resolve_stage(in.r.stages[i], in.plugins, in.r, p.model, p.stages[i], p.notes, in.diag);
}

}  // namespace shrink
