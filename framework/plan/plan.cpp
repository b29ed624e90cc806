#include "plan/plan.hpp"

#include "util/random.hpp"
#include "util/text.hpp"

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/depth_first_search.hpp>
#include <boost/graph/topological_sort.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

namespace shrink {

std::set<std::string> root_facts(const recipe& r) {
    std::set<std::string> f{"model"};
    if (r.calibration.present) f.insert("calibration_data");
    if (r.evaluation.present) f.insert("evaluation_data");
    return f;
}

shrink_params c_params(const std::vector<resolved_param>& params, std::vector<shrink_param_value>& storage) {
    storage.clear();
    for (const resolved_param& p : params)
        storage.push_back({p.name.c_str(), p.type, p.int_value, p.float_value, p.text.c_str()});
    return {static_cast<uint32_t>(storage.size()), storage.data()};
}

namespace {

const char* type_word(int32_t t) {
    switch (t) {
        case SHRINK_PARAM_INT: return "integer";
        case SHRINK_PARAM_FLOAT: return "number";
        case SHRINK_PARAM_BOOL: return "true/false";
        default: return "choice";
    }
}

/// Types a recipe value against its declaration; nullopt after reporting a problem.
std::optional<resolved_param> resolve_value(const shrink_param_decl& d, const yaml_node& value, const std::string& where,
                                            diagnostics& diag) {
    resolved_param p;
    p.name = d.name;
    p.type = d.type;
    const std::string text = value.text;
    auto bad = [&](const std::string& why) {
        diag.error(value.mark, where + "param '" + d.name + "' " + why);
        return std::nullopt;
    };
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
            return p.int_value != 0;
        }
    return false;
}

void resolve_stage(const stage_spec& s, const registry& plugins, const recipe& r, planned_stage& out, diagnostics& diag) {
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
            v = resolve_value(d, given->value, where, diag);
        } else if (d.default_value) {
            yaml_node def = parse_yaml(d.default_value, "default of " + s.use + "." + d.name);
            v = resolve_value(d, def, where, diag);
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
        auto& set = f.relation == SHRINK_FACT_REQUIRES ? out.requires_facts
                    : f.relation == SHRINK_FACT_PROVIDES ? out.provides_facts
                                                         : out.invalidates_facts;
        set.insert(f.fact);
    }

    if (s.expected_drop) {
        out.expected_drop = *s.expected_drop;
        out.drop_source = "recipe";
    } else if (out.changes_weights()) {
        std::vector<shrink_param_value> storage;
        const shrink_params cp = c_params(out.params, storage);
        shrink_error error{};
        double drop = 0;
        if (t.expected_drop(t.state, &cp, &drop, &error) != SHRINK_OK) {
            diag.error(s.use_mark, where + "the plugin could not estimate its accuracy cost: " + error.message);
        } else if (!std::isfinite(drop) || drop < 0 || drop > 1) {
            diag.error(s.use_mark, where + "the plugin estimated a drop of " + format_double(drop) + ", outside [0, 1]");
        } else {
            out.expected_drop = drop;
            out.drop_source = "plugin";
        }
    }

    const std::string device = s.device.empty() ? r.device : s.device;
    const source_mark& device_mark = s.device.empty() ? r.device_mark : s.device_mark;
    if (device == "cuda") {
        diag.error(device_mark.line ? device_mark : s.mark,
                   where + "device 'cuda' is not available: this build has no CUDA stage support yet; use cpu or auto");
    } else if (device == "auto") {
        out.device = "cpu";
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

}  // namespace

plan make_plan(const recipe& r, const registry& plugins) {
    plan p;
    p.source = &r;
    diagnostics diag;
    const size_t n = r.stages.size();
    p.stages.resize(n);
    std::map<std::string, int> index;
    for (size_t i = 0; i < n; ++i) index.emplace(r.stages[i].id, int(i));
    std::vector<std::string> ids;
    for (const stage_spec& s : r.stages) ids.push_back(s.id);

    for (size_t i = 0; i < n; ++i) resolve_stage(r.stages[i], plugins, r, p.stages[i], diag);
    if (r.device == "auto") p.notes.push_back("device: auto chose cpu (this build has no CUDA stage support)");

    // Parents: `after`, else the previous list entry, else the model.
    for (size_t i = 0; i < n; ++i) {
        const stage_spec& s = r.stages[i];
        planned_stage& st = p.stages[i];
        if (!s.has_after) {
            st.parent = int(i) - 1;
            continue;
        }
        if (s.after.size() > 1) {
            diag.error(s.after[1].second, "stage '" + s.id + "' lists " + std::to_string(s.after.size()) +
                                              " parents; a stage takes its model from exactly one stage");
        }
        if (s.after.empty()) {
            st.parent = -1;
            continue;
        }
        auto it = index.find(s.after[0].first);
        if (it == index.end()) {
            diag.error(s.after[0].second, "stage '" + s.id + "' runs after unknown stage '" + s.after[0].first + "'" +
                                              did_you_mean(s.after[0].first, ids));
        } else if (it->second == int(i)) {
            diag.error(s.after[0].second, "stage '" + s.id + "' cannot run after itself");
        } else {
            st.parent = it->second;
        }
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

    // Facts along paths, in execution order so a parent is done before its children.
    struct fact_state {
        std::set<std::string> held;
        std::map<std::string, std::pair<std::string, std::string>> stale;  // fact -> (made by, invalidated by)
        std::map<std::string, std::string> made_by;
    };
    std::vector<fact_state> after(n);
    const fact_state root{root_facts(r), {}, {}};
    for (int i : p.order) {
        planned_stage& st = p.stages[size_t(i)];
        fact_state f = st.parent < 0 ? root : after[size_t(st.parent)];
        const std::string who = "stage '" + st.spec->id + "' (" + st.spec->use + ")";
        for (const std::string& need : st.requires_facts) {
            if (f.held.count(need)) continue;
            std::string msg = who + " requires '" + need + "'";
            if (auto s = f.stale.find(need); s != f.stale.end()) {
                msg += ", but stage '" + s->second.second + "' changed the weights after '" + s->second.first +
                       "' provided it, so it is stale; move '" + s->second.first + "' after '" + s->second.second + "'";
            } else if (need == "calibration_data" || need == "evaluation_data") {
                msg += "; add data." + need.substr(0, need.find('_')) + " to the recipe";
            } else {
                msg += ", which no stage before it on its path provides";
                if (need == "activation_ranges") msg += "; add a calibrator (e.g. calibrator.minmax) before it";
            }
            diag.error(st.spec->use_mark, msg);
        }
        for (const std::string& gone : st.invalidates_facts) {
            if (f.held.erase(gone)) f.stale[gone] = {f.made_by[gone], st.spec->id};
        }
        for (const std::string& made : st.provides_facts) {
            f.held.insert(made);
            f.made_by[made] = st.spec->id;
            f.stale.erase(made);
        }
        after[size_t(i)] = std::move(f);
    }

    // Compounded budget: retention along a path is the product of (1 - drop).
    if (r.budget.present) p.min_retention = 1.0 - r.budget.max_drop;
    for (size_t i = 0; i < n; ++i) {
        if (!p.stages[i].children.empty()) continue;
        plan_path path;
        for (int at = int(i); at >= 0; at = p.stages[size_t(at)].parent) path.stages.insert(path.stages.begin(), at);
        for (int s : path.stages) path.predicted_retention *= 1.0 - p.stages[size_t(s)].expected_drop;
        if (r.budget.present && path.predicted_retention < p.min_retention) {
            std::string detail;
            for (int s : path.stages) {
                const planned_stage& st = p.stages[size_t(s)];
                if (st.expected_drop > 0) {
                    char buf[128];
                    std::snprintf(buf, sizeof buf, "%s%s %.2f%% (%s)", detail.empty() ? "" : ", ", st.spec->id.c_str(),
                                  100 * st.expected_drop, st.drop_source.c_str());
                    detail += buf;
                }
            }
            char buf[256];
            std::snprintf(buf, sizeof buf, "predicted retention %.4f is below the budget's %.4f (max_drop %s)",
                          path.predicted_retention, p.min_retention, format_double(r.budget.max_drop).c_str());
            diag.error(r.budget.mark, "the path ending at stage '" + p.stages[i].spec->id + "': " + buf +
                                          "; expected drops: " + detail +
                                          ". Relax max_drop, choose gentler params, or set expected_drop from a measurement");
        }
        p.paths.push_back(std::move(path));
    }
    diag.throw_if_any();
    return p;
}

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
                params += (params.empty() ? "" : ", ") + rp.name + "=" + rp.text + (rp.from_default ? "*" : "");
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
        }
    }
    out << "\npredicted accuracy budget per path";
    if (r.budget.present) out << " (budget: " << r.budget.metric << " retention >= " << format_double(p.min_retention) << ")";
    out << ":\n";
    for (const plan_path& path : p.paths) {
        std::string chain = "model";
        for (int s : path.stages) chain += " -> " + p.stages[size_t(s)].spec->id;
        char buf[96];
        std::snprintf(buf, sizeof buf, "  retention %.4f  %s  ", path.predicted_retention,
                      !r.budget.present ? "(no budget)" : path.predicted_retention >= p.min_retention ? "ok" : "OVER BUDGET");
        out << buf << chain << "\n";
    }
    if (detailed) out << "\n(* = default value)\n";
    return out.str();
}

}  // namespace shrink
