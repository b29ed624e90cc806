#include "run/executor.hpp"

#include "cpu/threading.hpp"
#include "model/safetensors.hpp"
#include "onnx/import.hpp"
#include "run/baseline.hpp"
#include "run/data_access.hpp"
#include "run/manifest.hpp"
#include "run/output_model.hpp"
#include "run/report.hpp"
#include "run/run_dir.hpp"
#include "run/stage_run.hpp"
#include "run/stage_store.hpp"
#include "run/verdict.hpp"
#include "util/console.hpp"
#include "util/errors.hpp"
#include "util/files.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>

#include <malloc.h>

namespace shrink {

namespace fs = std::filesystem;
using json = nlohmann::json;

// The scheduler: the run directory, then the stages in execution order, each forked from
// its parent's state (or taken from the stage store), with what runs around each stage in
// files of its own (stage_run, verdict, output_model, report, manifest, baseline).
int execute_plan(const plan& p, const registry& plugins, ledger& measured, const run_options& options) {
    const recipe& r = *p.source;
    console& out = console::get();
    cpu::set_thread_count(options.threads);

    std::optional<run_dir> owned = run_dir::open(r, options);
    if (!owned) {
        out.info("run " + options.out_dir + " already finished; nothing to resume (see its report.json)");
        return int(exit_code::ok);
    }
    const fs::path dir = owned->path();
    // Before writing anything: a bad model writes nothing.
    const model original = load_recipe_model(r.model);
    // Fine-tuners learn from the kept teacher: the recipe's teacher file, else the model.
    const auto root_teacher = std::make_shared<const model>(r.teacher.empty() ? original : load_any_model(r.teacher));
    data_access data(r, p.tokenizer);
    // Text is read, tokenized and cut into windows here, so text too short for a split is
    // refused as bad input (exit 1) before the run directory holds anything.
    for (const auto& [src, split] : {std::pair{&r.calibration, SHRINK_SPLIT_CALIBRATION}, std::pair{&r.evaluation, SHRINK_SPLIT_EVALUATION},
                                     std::pair{&r.training, SHRINK_SPLIT_TRAINING}})
        if (src->is_text()) data.get(split);
    owned->prepare(options);
    write_file_atomic(dir / "recipe.yaml", to_yaml(r.resolved));

    run_inputs inputs;
    json manifest = start_manifest(p, plugins, data, inputs);
    const std::vector<std::string> keys = stage_keys(p, inputs);
    std::vector<stage_outcome> outcome(p.stages.size());
    // The manifest says, after every stage, which stages finished, failed, were skipped or
    // have not run yet: what --resume reruns.
    auto write_manifest = [&] {
        json stage_records = json::array();
        for (int i : p.order) {
            const stage_outcome& o = outcome[size_t(i)];
            stage_records.push_back({{"id", p.stages[size_t(i)].spec->id}, {"key", keys[size_t(i)]}, {"status", o.status},
                                     {"source", o.source}, {"started", o.started}, {"ended", o.ended}, {"seconds", o.seconds}});
        }
        manifest["stages"] = stage_records;
        write_file_atomic(dir / "manifest.json", manifest.dump(2) + "\n");
    };
    write_manifest();
    const stage_store store(dir / "checkpoints", options.use_cache ? stage_store::default_cache() : fs::path());

    const uint64_t original_size = serialized_size(original);
    baselines base;
    try {
        base = measure_baselines(p, original, root_teacher, data, store, options.use_cache, inputs, measured, original_size);
    } catch (const std::exception& e) {
        out.warning(std::string("baseline evaluation failed: ") + e.what());
        manifest["status"] = "failed";
        write_manifest();
        print_error(e.what());
        return int(exit_code::stage_failed);
    }

    std::map<int, std::shared_ptr<model_state>> states;  // output state per finished stage
    std::vector<int> pending_children(p.stages.size());
    for (size_t i = 0; i < p.stages.size(); ++i) pending_children[i] = int(p.stages[i].children.size());
    auto original_state = std::make_shared<model_state>(model_state{original, {}, root_teacher, false});
    json results = json::array();
    bool any_failed = false, any_within = false, any_evaluator = false;
    json stage_seeds = json::object();

    // One stage: skipped, reused from the store, or run; then judged and, at a leaf, written.
    auto step = [&](int i) {
        const planned_stage& st = p.stages[size_t(i)];
        stage_outcome& o = outcome[size_t(i)];
        stage_seeds[st.spec->id] = st.seed;
        if (st.parent >= 0 && outcome[size_t(st.parent)].status != "ok") {
            o.status = "skipped";
            o.message = "parent '" + p.stages[size_t(st.parent)].spec->id + "' " + outcome[size_t(st.parent)].status;
            if (outcome[size_t(st.parent)].status == "over_budget") o.message = "its branch broke the budget at '" + p.stages[size_t(st.parent)].spec->id + "'";
            if (outcome[size_t(st.parent)].status == "skipped") o.message = outcome[size_t(st.parent)].message;
            out.info("stage " + st.spec->id + ": skipped (" + o.message + ")");
            return;
        }
        // Fork: the last child to run may take the parent's state; the others copy it.
        std::shared_ptr<model_state> input = st.parent < 0 ? original_state : states.at(st.parent);
        std::shared_ptr<model_state> state;
        if (st.parent >= 0 && --pending_children[size_t(st.parent)] == 0) {
            state = input;
            states.erase(st.parent);
        } else {
            state = std::make_shared<model_state>(*input);  // shares every tensor until a stage writes it
        }
        input.reset();  // `state` holds what this stage needs; nothing else should keep the parent's alive
        o.started = utc_now();
        const auto t0 = std::chrono::steady_clock::now();
        std::string source;
        if (auto stored = store.find(keys[size_t(i)], options.use_cache, source)) {
            // The same key means the same bytes: take the stored result instead of recomputing.
            if (stored->state) {
                const auto kept = state->teacher;
                *state = std::move(*stored->state);
                if (!state->teacher) state->teacher = kept;  // not a distiller's: the one it was given
            }
            o.results = stored->results;
            o.status = "ok";
            o.source = source;
            out.info("stage " + st.spec->id + " (" + st.spec->use + "): reused from the " +
                     (source == "cache" ? "stage cache" : "run's checkpoint"));
        } else {
            out.info("stage " + st.spec->id + " (" + st.spec->use + ")");
            o.source = "run";
            try {
                o.results = run_stage(st, *state, data, store.artifact_pool());
                o.status = "ok";
                store.put(keys[size_t(i)], st.kind == "evaluator" ? nullptr : state.get(), o.results, st.spec->id);
            } catch (const std::exception& e) {
                o.status = "failed";
                o.message = e.what();
                any_failed = true;
                print_error(e.what());
            }
        }
        // What the stage freed goes back to the system now, not at some later allocation:
        // without this, a large model's run kept ~50 MiB of freed forward-pass buffers.
        malloc_trim(0);
        o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        o.ended = utc_now();
        o.peak_rss = peak_rss_bytes();
        if (o.status != "ok") return;
        o.size_bytes = serialized_size(state->net);
        if (st.kind == "evaluator") {
            any_evaluator = true;
            const std::optional<json> entry = judge_evaluator(p, i, o, base.value.at(evaluator_key(st)));
            if (!entry) {
                any_failed = true;
                return;
            }
            results.push_back(*entry);
            any_within = any_within || (*entry)["within_budget"].get<bool>();
        }
        if (!st.children.empty()) {
            states[i] = state;
            return;
        }
        try {
            write_output_model(p, i, std::move(state), dir / "models");
        } catch (const std::exception& e) {
            o.status = "failed";  // its model is missing: --resume writes it again
            o.message = e.what();
            print_error(e.what());
            any_failed = true;
        }
    };
    for (int i : p.order) {
        step(i);
        write_manifest();
    }

    teach_ledger(p, results, measured);
    try {
        measured.save();
    } catch (const std::exception& e) {
        out.warning(std::string("the ledger was not saved: ") + e.what());
    }
    write_file_atomic(dir / "report.json", report_json(p, outcome, base.first, results).dump(2) + "\n");
    manifest["stage_seeds"] = stage_seeds;
    manifest["status"] = any_failed ? "failed" : "finished";
    manifest["ended"] = utc_now();
    write_manifest();

    print_summary(p, base.first, results, original_size);
    out.info("\nrun directory: " + dir.string());

    if (any_failed) return int(exit_code::stage_failed);
    if (any_evaluator && !any_within) return int(exit_code::budget_missed);
    return int(exit_code::ok);
}

}  // namespace shrink
