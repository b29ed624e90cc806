// Pass: the facts that hold along every path, layer by layer: requires, forbids,
// provides and what goes stale when weights change (plan.hpp).
#include "plan/passes.hpp"

#include "plan/facts.hpp"

#include <map>

namespace shrink {

namespace {

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
    // append(), not operator+: GCC 12 warns falsely (-Wrestrict) on '"'" + s + "'"' inlined here.
    const std::string maker = made_by >= 0 ? std::string("'").append(id_of(p, made_by)).append("'") : "an earlier stage";
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

void walk_facts(plan& p, plan_inputs& in) {
    const recipe& r = in.r;
    diagnostics& diag = in.diag;
    const size_t n = p.stages.size();
    // Facts along paths, in execution order so a parent is done before its children.
    std::vector<fact_state> after(n);
    fact_state root;
    for (const std::string& f : root_facts(r)) root.facts[f][-1] = {true, -1, -1};
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
                else if (h->made_by >= 0) p.stages[size_t(h->made_by)].facts_used = true;
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
            } else if (need == "text_evaluation_data") {
                const data_source& e = p.source->evaluation;
                msg += e.present ? "; data.evaluation is " + e.dataset + ", not text: give a text dataset (kjv, or text with a path)"
                                 : "; add data.evaluation with a text dataset (e.g. { dataset: kjv })";
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
                if (info.scope == fact_scope::layer_and_downstream || info.scope == fact_scope::layer_in_model)
                    stale_now.insert(info.name);
        for (const std::string& gone : stale_now) {
            std::set<int> layers;
            for (int l : targets(gone, st)) {
                layers.insert(l);
                if (l >= 0 && scope_of(gone) == fact_scope::layer_and_downstream)
                    for (int d : p.model.layers[size_t(l)].downstream) layers.insert(d);
            }
            // Measured through the whole model: any layer's change moves every layer's figure.
            if (scope_of(gone) == fact_scope::layer_in_model && !layers.empty())
                for (size_t l = 0; l < p.model.layers.size(); ++l) layers.insert(int(l));
            for (int l : layers)
                if (l >= 0) st.makes_stale[gone].insert(p.model.layers[size_t(l)].name);
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
            for (const fact_info& info : fact_vocabulary())
                if (info.scope != fact_scope::global)
                    for (const auto& l : p.model.layers) st.makes_stale[info.name].insert(l.name);
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
}

}  // namespace shrink
