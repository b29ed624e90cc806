#include "plan/plan.hpp"

#include "devices/cuda_probe.hpp"
#include "devices/device.hpp"
#include "onnx/import.hpp"
#include "plan/budget.hpp"
#include "plan/facts.hpp"
#include "util/files.hpp"
#include "util/random.hpp"
#include "util/text.hpp"

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/depth_first_search.hpp>
#include <boost/graph/topological_sort.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <sstream>
#include <sys/resource.h>
#include <unistd.h>

namespace shrink {

std::set<std::string> root_facts(const recipe& r) {
    std::set<std::string> f{"model"};
    if (r.calibration.present) f.insert("calibration_data");
    if (r.evaluation.present) f.insert("evaluation_data");
    if (r.training.present) f.insert("training_data");
    // The model on a path can teach until it is quantized (see make_plan).
    f.insert("teacher");
    return f;
}

shrink_params c_params(const std::vector<resolved_param>& params, std::vector<shrink_param_value>& storage) {
    storage.clear();
    for (const resolved_param& p : params)
        storage.push_back({p.name.c_str(), p.type, p.int_value, p.float_value, p.text.c_str()});
    return {static_cast<uint32_t>(storage.size()), storage.data()};
}

std::string format_bytes(uint64_t bytes) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = double(bytes);
    int u = 0;
    while (v >= 1024 && u < 4) v /= 1024, ++u;
    char buf[32];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
    return buf;
}

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

bool param_is_set(const std::vector<resolved_param>& params, const char* name) {
    for (const resolved_param& p : params)
        if (p.name == name) {
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

/// Records the cycle a back edge closes, following single parents.
struct cycle_finder : boost::default_dfs_visitor {
    std::vector<int>* cycle_start;
    explicit cycle_finder(std::vector<int>* out) : cycle_start(out) {}
    template <class Edge, class Graph>
    void back_edge(Edge e, const Graph& g) {
        if (cycle_start->empty()) {
            cycle_start->push_back(int(boost::source(e, g)));
            cycle_start->push_back(int(boost::target(e, g)));
        }
    }
};

/// The facts that hold along one path, per layer (index -1 for global facts).
struct fact_state {
    struct holding {
        bool held = false;
        int made_by = -1;  // stage index
        int stale_by = -1;  // stage that invalidated it
    };
    std::map<std::string, std::map<int, holding>> facts;

    holding* find(const std::string& fact, int layer) {
        auto f = facts.find(fact);
        if (f == facts.end()) return nullptr;
        auto h = f->second.find(layer);
        return h == f->second.end() ? nullptr : &h->second;
    }
};

/// The layers a fact concerns for a stage: global facts live at -1.
std::vector<int> targets(const std::string& fact, const planned_stage& st) {
    if (scope_of(fact) == fact_scope::global) return {-1};
    return st.scope;
}

std::string id_of(const plan& p, int stage) { return p.stages[size_t(stage)].spec->id; }

/// Why a forbidden fact matters, and what to do: the order rules of docs/recipes.md.
std::string forbid_message(const plan& p, const planned_stage& st, const std::string& fact, int layer, int made_by) {
    const std::string who = "stage '" + st.spec->id + "' (" + st.spec->use + ")";
    const std::string maker = made_by >= 0 ? "'" + id_of(p, made_by) + "'" : "an earlier stage";
    const std::string where = layer >= 0 ? " layer '" + p.model.layers[size_t(layer)].name + "'" : "";
    if (fact == "weights_quantized" && st.kind == "quantizer") {
        const int parent = made_by >= 0 ? p.stages[size_t(made_by)].parent : -1;
        return who + " would quantize already-quantized weights: stage " + maker + " quantized" + where +
               " earlier on this path. Quantize once, from full precision: branch '" + st.spec->id + "' from " +
               (parent >= 0 ? "'" + id_of(p, parent) + "'" : "the model") + " (after: " +
               (parent >= 0 ? id_of(p, parent) : "[]") + ") instead";
    }
    if (fact == "weights_quantized")
        return who + " cannot work on quantized weights: stage " + maker + " quantized" + where +
               " earlier on this path. Prune and factorize in full precision, then quantize: move '" + st.spec->id +
               "' before " + maker;
    return who + " cannot run where '" + fact + "' holds" + (where.empty() ? "" : " (" + where.substr(1) + ")") +
           ", which stage " + maker + " made";
}

}  // namespace

std::string baseline_key(const plan& p, const planned_stage& evaluator) {
    std::string text = "baseline\nmodel=" + p.model_sha256 + "\nmetric=" + p.source->budget.metric + "\n" + evaluator.spec->use;
    for (const resolved_param& rp : evaluator.params) text += " " + rp.name + "=" + rp.text;
    const data_source& d = p.source->evaluation;
    text += "\nevaluation=" + d.dataset + "/" + d.split + "/" + std::to_string(d.samples) + "/" + d.path;
    return sha256_hex(text);
}

plan make_plan(const recipe& r, const registry& plugins, const ledger& measured) {
    plan p;
    p.source = &r;
    diagnostics diag;
    try {
        if (std::filesystem::path(r.model).extension() == ".onnx") {
            p.model = outline_of(onnx_import::import_onnx(r.model));
            p.model.file_bytes = std::filesystem::file_size(r.model);
        } else {
            p.model = read_model_outline(r.model);
        }
        p.model_sha256 = sha256_file(r.model);
    } catch (const std::exception& e) {
        diag.error(r.model_mark, std::string("cannot read the model's graph: ") + e.what());
        diag.throw_if_any();
    }
    const size_t n = r.stages.size();
    p.stages.resize(n);
    std::map<std::string, int> index;
    for (size_t i = 0; i < n; ++i) index.emplace(r.stages[i].id, int(i));
    std::vector<std::string> ids;
    for (const stage_spec& s : r.stages) ids.push_back(s.id);

    for (size_t i = 0; i < n; ++i) resolve_stage(r.stages[i], plugins, r, p.model, p.stages[i], p.notes, diag);

    // Parents: `after`, else the previous list entry, else the model.
    for (size_t i = 0; i < n; ++i) {
        const stage_spec& s = r.stages[i];
        planned_stage& st = p.stages[i];
        if (!s.has_after) {
            st.parent = int(i) - 1;
            continue;
        }
        if (s.after.size() > 1)
            diag.error(s.after[1].second, "stage '" + s.id + "' lists " + std::to_string(s.after.size()) +
                                              " parents; a stage takes its model from exactly one stage");
        if (s.after.empty()) {
            st.parent = -1;
            continue;
        }
        auto it = index.find(s.after[0].first);
        if (it == index.end())
            diag.error(s.after[0].second, "stage '" + s.id + "' runs after unknown stage '" + s.after[0].first + "'" +
                                              did_you_mean(s.after[0].first, ids));
        else if (it->second == int(i))
            diag.error(s.after[0].second, "stage '" + s.id + "' cannot run after itself");
        else
            st.parent = it->second;
    }
    diag.throw_if_any();

    using graph_t = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS>;
    graph_t g(n);
    for (size_t i = 0; i < n; ++i)
        if (p.stages[i].parent >= 0) {
            boost::add_edge(size_t(p.stages[i].parent), i, g);
            p.stages[size_t(p.stages[i].parent)].children.push_back(int(i));
        }
    std::vector<int> back;
    boost::depth_first_search(g, boost::visitor(cycle_finder(&back)));
    if (!back.empty()) {
        // back = {u, v} with edge u -> v closing the loop; walk parents from u up to v.
        std::vector<std::string> names{r.stages[size_t(back[1])].id};
        std::vector<std::string> chain;
        for (int at = back[0]; at != back[1]; at = p.stages[size_t(at)].parent) chain.push_back(r.stages[size_t(at)].id);
        names.insert(names.end(), chain.rbegin(), chain.rend());
        names.push_back(r.stages[size_t(back[1])].id);
        std::string text;
        for (const std::string& s : names) text += (text.empty() ? "" : " -> ") + s;
        const stage_spec& at = r.stages[size_t(back[1])];
        diag.error(at.after.empty() ? at.mark : at.after[0].second, "the stages form a cycle: " + text);
        diag.throw_if_any();
    }
    std::vector<size_t> reversed;
    boost::topological_sort(g, std::back_inserter(reversed));
    for (auto it = reversed.rbegin(); it != reversed.rend(); ++it) p.order.push_back(int(*it));

    // Expected drops: the recipe's, else a measurement of the same work in the ledger, else the plugin's.
    std::vector<std::string> chain_text(n);
    for (int i : p.order) {
        planned_stage& st = p.stages[size_t(i)];
        std::string text = st.parent < 0 ? "" : chain_text[size_t(st.parent)];
        if (st.kind != "evaluator") {
            text += "\n" + st.spec->use;
            for (const resolved_param& rp : st.params) text += " " + rp.name + "=" + rp.text;
            if (st.kind == "calibrator")
                text += " calibration=" + r.calibration.split + "/" + std::to_string(r.calibration.samples) + "/" +
                        std::to_string(derive_seed(r.seed, "data.calibration")) + "/" + r.calibration.path;
        }
        chain_text[size_t(i)] = text;
        st.chain_key = sha256_hex("model=" + p.model_sha256 + "\nmetric=" + r.budget.metric + text);
        if (!st.changes_weights()) continue;
        if (st.spec->expected_drop) {
            st.expected_drop = *st.spec->expected_drop;
            st.drop_source = "recipe";
        } else if (auto m = measured.find(st.chain_key)) {
            st.expected_drop = std::max(0.0, m->value);
            st.drop_source = "ledger (measured " + m->recorded + ", " + std::to_string(m->runs) + (m->runs == 1 ? " run)" : " runs)");
        } else if (st.type) {
            std::vector<shrink_param_value> storage;
            const shrink_params cp = c_params(st.params, storage);
            shrink_error error{};
            double drop = 0;
            const shrink_stage_type& t = *st.type->type;
            if (t.expected_drop(t.state, &cp, &drop, &error) != SHRINK_OK)
                diag.error(st.spec->use_mark, "stage '" + st.spec->id + "': the plugin could not estimate its accuracy cost: " + error.message);
            else if (!std::isfinite(drop) || drop < 0 || drop > 1)
                diag.error(st.spec->use_mark, "stage '" + st.spec->id + "': the plugin estimated a drop of " + format_double(drop) + ", outside [0, 1]");
            st.expected_drop = drop;
            st.drop_source = "plugin";
        }
    }
    for (const planned_stage& st : p.stages)
        if (st.kind == "evaluator")
            if (auto b = measured.find(baseline_key(p, st))) {
                p.baseline = b->value;
                break;
            }

    // Facts along paths, in execution order so a parent is done before its children.
    std::vector<fact_state> after(n);
    fact_state root;
    for (const std::string& f : root_facts(r)) root.facts[f][-1] = {true, -1, -1};
    std::vector<bool> used(n, false);  // a stage whose facts someone required
    for (int i : p.order) {
        planned_stage& st = p.stages[size_t(i)];
        fact_state f = st.parent < 0 ? root : after[size_t(st.parent)];
        const std::string who = "stage '" + st.spec->id + "' (" + st.spec->use + ")";
        for (const std::string& need : st.requires_facts) {
            const std::vector<int> layers = targets(need, st);
            std::vector<int> missing;
            for (int l : layers) {
                const fact_state::holding* h = f.find(need, l);
                if (!h || !h->held) missing.push_back(l);
                else if (h->made_by >= 0) used[size_t(h->made_by)] = true;
            }
            if (missing.empty()) continue;
            // Name the layer only when it narrows things down.
            const fact_state::holding* h = f.find(need, missing[0]);
            std::string msg = who + " requires '" + need + "'" +
                              (missing.size() < layers.size() ? " for layer '" + p.model.layers[size_t(missing[0])].name + "'" : "");
            if (need == "teacher" && h && h->made_by == -2) {
                msg += ": a distiller's teacher is the model on its path, and stage '" + id_of(p, h->stale_by) +
                       "' quantized it; a quantized model makes a poor teacher. Distil before quantizing: move '" +
                       st.spec->id + "' before '" + id_of(p, h->stale_by) + "'";
            } else if (h && h->stale_by >= 0) {
                const std::string made = h->made_by >= 0 ? id_of(p, h->made_by) : "the model";
                msg += ", but stage '" + id_of(p, h->stale_by) + "' changed the weights after '" + made +
                       "' provided it, so it is stale; move '" + made + "' after '" + id_of(p, h->stale_by) + "'";
            } else if (need == "calibration_data" || need == "evaluation_data" || need == "training_data") {
                msg += "; add data." + need.substr(0, need.find('_')) + " to the recipe" +
                       (need == "training_data" ? " (e.g. { dataset: fashion-mnist, split: train })" : "");
            } else {
                msg += ", which no stage before it on its path provides";
                if (need == "activation_ranges") msg += "; add a calibrator (e.g. calibrator.minmax) before it";
            }
            diag.error(st.spec->use_mark, msg);
        }
        for (const std::string& banned : st.forbids_facts)
            for (int l : targets(banned, st))
                if (const fact_state::holding* h = f.find(banned, l); h && h->held) {
                    diag.error(st.spec->use_mark, forbid_message(p, st, banned, l, h->made_by));
                    break;
                }
        // Whatever was measured on activations goes stale when weights change, whether or
        // not the plugin thought to declare it; declared invalidations add to that.
        std::set<std::string> stale_now = st.invalidates_facts;
        if (st.changes_weights())
            for (const fact_info& info : fact_vocabulary())
                if (info.scope == fact_scope::layer_and_downstream) stale_now.insert(info.name);
        for (const std::string& gone : stale_now) {
            std::set<int> layers;
            for (int l : targets(gone, st)) {
                layers.insert(l);
                if (l >= 0 && scope_of(gone) == fact_scope::layer_and_downstream)
                    for (int d : p.model.layers[size_t(l)].downstream) layers.insert(d);
            }
            for (int l : layers)
                if (fact_state::holding* h = f.find(gone, l); h && h->held) {
                    h->held = false;
                    h->stale_by = i;
                }
        }
        // A quantized model is a poor teacher: quantizing ends the path's teacher (made_by -2
        // marks the reason for the message above). A distiller starts afresh: its student has
        // none of the layer facts of the model it learned from, and is a float model that can teach.
        if (st.provides_facts.count("weights_quantized"))
            if (fact_state::holding* h = f.find("teacher", -1); h && h->held) *h = {false, -2, i};
        if (st.kind == "distiller") {
            for (auto& [fact, layers] : f.facts)
                if (scope_of(fact) != fact_scope::global)
                    for (auto& [l, h] : layers)
                        if (h.held) h = {false, h.made_by, i};
            f.facts["teacher"][-1] = {true, i, -1};
        }
        for (const std::string& made : st.provides_facts)
            for (int l : targets(made, st)) f.facts[made][l] = {true, i, -1};
        for (const auto& [fact, layers] : f.facts)
            if (fact.rfind("weights_", 0) == 0)
                for (const auto& [l, h] : layers)
                    if (h.held && l >= 0) st.promised_encodings[fact].insert(p.model.layers[size_t(l)].name);
        after[size_t(i)] = std::move(f);
    }

    // Budgets per path.
    const budget_spec& b = r.budget;
    for (size_t i = 0; i < n; ++i) {
        if (!p.stages[i].children.empty()) continue;
        plan_path path;
        for (int at = int(i); at >= 0; at = p.stages[size_t(at)].parent) path.stages.insert(path.stages.begin(), at);
        std::vector<stage_drop> drops;
        for (int s : path.stages)
            if (p.stages[size_t(s)].changes_weights()) drops.push_back({p.stages[size_t(s)].expected_drop, p.stages[size_t(s)].kind});
        path.predicted_retention = predict_retention(drops, b.higher_is_better, b.interaction_penalty);
        path.required_retention = required_retention(b, p.baseline);
        path.ok = !b.present || path.predicted_retention >= path.required_retention;
        if (!path.ok) {
            std::string detail;
            for (int s : path.stages) {
                const planned_stage& st = p.stages[size_t(s)];
                if (st.expected_drop > 0) {
                    char buf[160];
                    std::snprintf(buf, sizeof buf, "%s%s %.2f%% (%s)", detail.empty() ? "" : ", ", st.spec->id.c_str(),
                                  100 * st.expected_drop, st.drop_source.c_str());
                    detail += buf;
                }
            }
            char buf[256];
            std::snprintf(buf, sizeof buf, "predicted retention %.4f is below the budget's %.4f", path.predicted_retention,
                          path.required_retention);
            diag.error(b.mark, "the path ending at stage '" + p.stages[i].spec->id + "': " + buf + "; expected drops: " + detail +
                                   (b.interaction_penalty > 0 ? " with interaction penalty " + format_double(b.interaction_penalty) : "") +
                                   ". Relax the budget, choose gentler params, or set expected_drop from a measurement");
        }
        p.paths.push_back(std::move(path));
    }
    if (b.present && b.max_abs_drop && !p.baseline)
        p.notes.push_back("the absolute budget (max_abs_drop) is checked when the baseline is measured: no earlier run recorded it");

    // Peak memory per stage: the model states alive at that point, plus what the stage holds.
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

    // Legal but probably wrong.
    auto warn = [&](const source_mark& at, const std::string& m) {
        std::string text = format_diagnostic(at, m);
        text.replace(text.find(": error: "), 9, ": warning: ");
        p.warnings.push_back(text);
    };
    for (const plan_path& path : p.paths) {
        const planned_stage& leaf = p.stages[size_t(path.stages.back())];
        const bool changed = std::any_of(path.stages.begin(), path.stages.end(),
                                         [&](int s) { return p.stages[size_t(s)].changes_weights(); });
        if (leaf.kind == "evaluator" && !changed)
            warn(leaf.spec->use_mark, "evaluator '" + leaf.spec->id +
                                          "' measures the model before any stage changes it; the baseline already does that");
        if (b.present && changed && leaf.kind != "evaluator")
            warn(leaf.spec->use_mark, "the path ending at '" + leaf.spec->id +
                                          "' has no evaluator after its last change: its budget is predicted but never measured");
    }
    for (size_t i = 0; i < n; ++i)
        if (p.stages[i].kind == "calibrator" && !used[i])
            warn(p.stages[i].spec->use_mark, "calibrator '" + p.stages[i].spec->id +
                                                 "' measures statistics no later stage uses; remove it, or use them (e.g. "
                                                 "quantizer.rtn with activation_bits: 8)");
    diag.throw_if_any();
    return p;
}

namespace {
const char* time_word(int32_t t) {
    switch (t) {
        case SHRINK_TIME_DATA: return "data passes";
        case SHRINK_TIME_SOLVE: return "solves";
        case SHRINK_TIME_TRAINING: return "training";
        default: return "weights";
    }
}
}  // namespace

std::string format_plan(const plan& p, bool detailed) {
    std::ostringstream out;
    const recipe& r = *p.source;
    out << "plan for '" << r.name << "' (" << r.file << "): " << p.stages.size() << " stages, " << p.paths.size()
        << (p.paths.size() == 1 ? " path" : " paths") << ", seed " << r.seed << "\n";
    for (const std::string& note : p.notes) out << "note: " << note << "\n";
    out << "\nexecution order:\n";
    int step = 1;
    for (int i : p.order) {
        const planned_stage& s = p.stages[size_t(i)];
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.2f%%", 100 * s.expected_drop);
        out << "  " << step++ << ". " << s.spec->id << "  " << s.spec->use << "  after "
            << (s.parent < 0 ? std::string("model") : p.stages[size_t(s.parent)].spec->id) << "  on " << s.device;
        if (s.changes_weights()) out << "  expected drop " << buf << " (" << s.drop_source << ")";
        if (s.children.size() > 1) out << "  [branches: " << s.children.size() << "]";
        out << "\n";
        if (detailed) {
            std::string params;
            for (const resolved_param& rp : s.params)
                params += (params.empty() ? "" : ", ") + rp.name + "=" + (rp.type == SHRINK_PARAM_LAYERS && rp.text.empty() ? "all" : rp.text) +
                          (rp.from_default ? "*" : "");
            if (!params.empty()) out << "       params: " << params << "\n";
            auto facts = [&](const char* what, const std::set<std::string>& set) {
                if (set.empty()) return;
                out << "       " << what << ":";
                for (const std::string& f : set) out << " " << f;
                out << "\n";
            };
            facts("requires", s.requires_facts);
            facts("provides", s.provides_facts);
            facts("invalidates", s.invalidates_facts);
            facts("forbids", s.forbids_facts);
            out << "       peak memory ~" << format_bytes(s.peak_memory) << " (" << s.memory_detail << "); time grows with "
                << time_word(s.time_class) << "\n";
        }
    }
    out << "\npredicted " << r.budget.metric << " per path";
    if (r.budget.present) {
        out << " (budget:";
        if (r.budget.max_drop) out << " max_drop " << format_double(*r.budget.max_drop);
        if (r.budget.max_abs_drop) out << " max_abs_drop " << format_double(*r.budget.max_abs_drop);
        if (r.budget.interaction_penalty > 0) out << ", interaction penalty " << format_double(r.budget.interaction_penalty);
        out << (r.budget.higher_is_better ? "" : ", lower is better") << ")";
    }
    out << ":\n";
    for (const plan_path& path : p.paths) {
        out << "  model";
        for (int s : path.stages) {
            const planned_stage& st = p.stages[size_t(s)];
            out << " -> " << st.spec->id;
            if (st.changes_weights()) {
                char buf[64];
                std::snprintf(buf, sizeof buf, " (-%.2f%% %s)", 100 * st.expected_drop,
                              st.drop_source.substr(0, st.drop_source.find(' ')).c_str());
                out << buf;
            }
        }
        char buf[128];
        if (!r.budget.present) std::snprintf(buf, sizeof buf, "\n    retention %.4f  (no budget)\n", path.predicted_retention);
        else std::snprintf(buf, sizeof buf, "\n    retention %.4f  budget %.4f  %s\n", path.predicted_retention,
                           path.required_retention, path.ok ? "OK" : "OVER");
        out << buf;
    }
    if (detailed) out << "\nmemory limit: " << format_bytes(p.memory_limit) << " (" << p.memory_limit_source << ")\n(* = default value)\n";
    return out.str();
}

std::string format_plan_json(const plan& p) {
    using json = nlohmann::json;
    const recipe& r = *p.source;
    json stages = json::array();
    for (int i : p.order) {
        const planned_stage& s = p.stages[size_t(i)];
        json params = json::object();
        for (const resolved_param& rp : s.params) params[rp.name] = {{"value", rp.text}, {"default", rp.from_default}};
        stages.push_back({{"id", s.spec->id}, {"type", s.spec->use}, {"kind", s.kind},
                          {"after", s.parent < 0 ? json(nullptr) : json(p.stages[size_t(s.parent)].spec->id)},
                          {"device", s.device}, {"params", params},
                          {"expected_drop", s.changes_weights() ? json(s.expected_drop) : json(nullptr)},
                          {"expected_drop_source", s.drop_source},
                          {"requires", s.requires_facts}, {"provides", s.provides_facts},
                          {"invalidates", s.invalidates_facts}, {"forbids", s.forbids_facts},
                          {"peak_memory_bytes", s.peak_memory}, {"time_class", time_word(s.time_class)}});
    }
    json paths = json::array();
    for (const plan_path& path : p.paths) {
        json ids = json::array();
        for (int s : path.stages) ids.push_back(p.stages[size_t(s)].spec->id);
        paths.push_back({{"stages", ids}, {"predicted_retention", path.predicted_retention},
                         {"required_retention", path.required_retention}, {"ok", path.ok}});
    }
    json budget = nullptr;
    if (r.budget.present)
        budget = {{"metric", r.budget.metric}, {"higher_is_better", r.budget.higher_is_better},
                  {"max_drop", r.budget.max_drop ? json(*r.budget.max_drop) : json(nullptr)},
                  {"max_abs_drop", r.budget.max_abs_drop ? json(*r.budget.max_abs_drop) : json(nullptr)},
                  {"interaction_penalty", r.budget.interaction_penalty}};
    return json{{"recipe", r.file}, {"name", r.name}, {"seed", r.seed}, {"model", {{"file", r.model}, {"sha256", p.model_sha256}}},
                {"budget", budget}, {"baseline", p.baseline ? json(*p.baseline) : json(nullptr)}, {"stages", stages},
                {"paths", paths}, {"memory_limit_bytes", p.memory_limit}, {"notes", p.notes}, {"warnings", p.warnings}}
               .dump(2) + "\n";
}

std::string format_plan_dot(const plan& p) {
    std::ostringstream out;
    auto quote = [](const std::string& s) {
        std::string q = "\"";
        for (char c : s) q += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
        return q + "\"";
    };
    out << "digraph " << quote(p.source->name) << " {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n";
    out << "  model [shape=ellipse, label=" << quote("model\n" + p.model_sha256.substr(0, 12)) << "];\n";
    for (int i : p.order) {
        const planned_stage& s = p.stages[size_t(i)];
        std::string label = s.spec->id + "\n" + s.spec->use;
        if (s.changes_weights()) {
            char buf[48];
            std::snprintf(buf, sizeof buf, "\n-%.2f%%", 100 * s.expected_drop);
            label += buf;
        }
        out << "  " << quote(s.spec->id) << " [label=" << quote(label) << (s.kind == "evaluator" ? ", shape=note" : "") << "];\n";
        out << "  " << (s.parent < 0 ? std::string("model") : quote(p.stages[size_t(s.parent)].spec->id)) << " -> "
            << quote(s.spec->id) << ";\n";
    }
    for (const plan_path& path : p.paths) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "retention %.4f %s", path.predicted_retention, path.ok ? "OK" : "OVER");
        const std::string leaf = p.stages[size_t(path.stages.back())].spec->id;
        out << "  " << quote(leaf + ".budget") << " [shape=plaintext, label=" << quote(buf) << "];\n  " << quote(leaf)
            << " -> " << quote(leaf + ".budget") << " [style=dotted, arrowhead=none];\n";
    }
    out << "}\n";
    return out.str();
}

}  // namespace shrink
