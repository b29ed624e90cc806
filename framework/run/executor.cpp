#include "run/executor.hpp"

#include "cpu/matmul.hpp"
#include "cpu/threading.hpp"
#include "model/safetensors.hpp"
#include "model/verify.hpp"
#include "onnx/export.hpp"
#include "onnx/import.hpp"
#include "plan/budget.hpp"
#include "run/stage_host.hpp"
#include "run/stage_store.hpp"
#include "util/console.hpp"
#include "util/files.hpp"
#include "util/random.hpp"
#include "version.hpp"

#include <boost/version.hpp>
#include <nlohmann/json.hpp>
#include <oneapi/tbb/version.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <numeric>

#include <malloc.h>
#include <sys/resource.h>

namespace shrink {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string utc_now(const char* format = "%Y-%m-%dT%H:%M:%SZ") {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, format, &tm);
    return buf;
}

std::string cpu_model() {
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
    return "unknown";
}

/// Datasets, loaded on first use and shared by all stages of the run.
class data_access {
  public:
    explicit data_access(const recipe& r) : recipe_(r) {}

    const split_view& get(shrink_split split) {
        const bool calib = split == SHRINK_SPLIT_CALIBRATION, training = split == SHRINK_SPLIT_TRAINING;
        const data_source& src = calib ? recipe_.calibration : training ? recipe_.training : recipe_.evaluation;
        const char* name = calib ? "calibration" : training ? "training" : "evaluation";
        if (!src.present) throw std::runtime_error(std::string("the recipe has no data.") + name + " section");
        split_view& view = calib ? calibration_ : training ? training_ : evaluation_;
        if (view.images) return view;
        const std::string dir = src.path.empty() ? fashion_mnist_default_dir : src.path;
        auto& images = sets_[dir + "|" + src.split];
        if (!images) images = std::make_unique<image_set>(load_fashion_mnist(dir, src.split));
        view.images = images.get();
        view.preprocess = recipe_.preprocess.present;
        view.scale = float(recipe_.preprocess.scale);
        view.mean.assign(recipe_.preprocess.mean.begin(), recipe_.preprocess.mean.end());
        view.std.assign(recipe_.preprocess.std.begin(), recipe_.preprocess.std.end());
        view.channels_last = recipe_.preprocess.layout == "nhwc";
        view.indices.resize(size_t(images->count));
        std::iota(view.indices.begin(), view.indices.end(), 0);
        // Calibration and training draw a seeded random subset; evaluation takes the split in order.
        if (calib || training)
            rng(derive_seed(recipe_.seed, std::string("data.") + name)).shuffle(view.indices.begin(), view.indices.end());
        if (src.samples && src.samples < view.indices.size()) view.indices.resize(src.samples);
        return view;
    }

    std::vector<std::string> files() const {
        std::vector<std::string> out;
        for (const auto* src : {&recipe_.calibration, &recipe_.evaluation, &recipe_.training})
            if (src->present)
                if (auto f = find_fashion_mnist(src->path.empty() ? fashion_mnist_default_dir : src->path, src->split)) {
                    out.push_back(f->images);
                    out.push_back(f->labels);
                }
        return out;
    }

  private:
    const recipe& recipe_;
    std::map<std::string, std::unique_ptr<image_set>> sets_;
    split_view calibration_, evaluation_, training_;
};

struct stage_outcome {
    std::string status = "pending";  // ok, failed, skipped, over_budget
    std::string message;
    double seconds = 0;
    std::map<std::string, double> results;
    uint64_t size_bytes = 0;
    std::string started, ended;
    std::string source;  // run, checkpoint or cache
    uint64_t peak_rss = 0;  // the process's peak resident memory after the stage
};

/// Peak resident memory of this process so far (Linux reports kilobytes).
uint64_t peak_rss_bytes() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return uint64_t(usage.ru_maxrss) * 1024;
}

/// Runs one stage's plugin over `state`. Throws stage_error with the plugin's message.
std::map<std::string, double> run_stage(const planned_stage& st, model_state& state, data_access& data) {
    stage_host host(
        state, [&](shrink_split s) -> const split_view& { return data.get(s); }, st.spec->id, st.seed,
        st.kind == "evaluator", parse_device(st.device).value_or(device_choice{}));
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
    return host.results();
}

/// Prints an error; messages that already name their file and say "error:" stay as they are.
void print_error(const std::string& message) {
    std::fprintf(stderr, "%s%s\n", message.find(": error: ") == std::string::npos ? "error: " : "", message.c_str());
}

std::string fmt(const char* format, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, format, v);
    return buf;
}

}  // namespace

int execute_plan(const plan& p, const registry& plugins, ledger& measured, const run_options& options) {
    const recipe& r = *p.source;
    console& out = console::get();
    cpu::set_thread_count(options.threads);

    fs::path dir = options.out_dir.empty() ? fs::path("runs") / (r.name + "-" + utc_now("%Y%m%d-%H%M%S")) : fs::path(options.out_dir);
    std::error_code ec;
    const bool occupied = fs::exists(dir, ec) && !(fs::is_directory(dir, ec) && fs::is_empty(dir, ec));
    if (options.resume) {
        if (!fs::is_regular_file(dir / "manifest.json", ec))
            throw input_error(source_mark{dir.string(), 0, 0}, "not a run directory (no manifest.json): nothing to resume");
        if (fs::is_regular_file(dir / "report.json", ec)) {
            out.info("run " + dir.string() + " already finished; nothing to resume (see its report.json)");
            return int(exit_code::ok);
        }
    } else if (occupied && !options.force) {
        throw input_error(source_mark{dir.string(), 0, 0},
                          std::string(fs::is_regular_file(dir / "report.json", ec) ? "the run directory holds a finished run"
                                                                                    : "the run directory already exists and is not empty") +
                              "; choose another --out, --force to replace it, or --resume to continue it");
    }
    const model original = load_any_model(r.model);  // before creating anything: a bad model writes nothing
    // Fine-tuners learn from the kept teacher: the recipe's teacher file, else the model.
    const auto root_teacher = std::make_shared<const model>(r.teacher.empty() ? original : load_any_model(r.teacher));
    data_access data(r);
    if (occupied && options.force && !options.resume)
        for (const char* old : {"models", "checkpoints", "report.json", "manifest.json", "recipe.yaml"}) fs::remove_all(dir / old, ec);

    fs::create_directories(dir / "models", ec);
    if (ec) throw input_error(source_mark{dir.string(), 0, 0}, "cannot create the run directory: " + ec.message());
    write_file_atomic(dir / "recipe.yaml", to_yaml(r.resolved));

    json manifest;
    manifest["status"] = "running";
    manifest["shrink_version"] = shrink_version;
    manifest["started"] = utc_now();
    manifest["recipe"] = {{"file", fs::absolute(r.file).string()}, {"sha256", sha256_file(r.file)},
                          {"resolved_sha256", sha256_hex(to_yaml(r.resolved))}};
    manifest["model"] = {{"file", r.model}, {"sha256", p.model_sha256}};
    if (!r.teacher.empty()) manifest["teacher"] = {{"file", r.teacher}, {"sha256", sha256_file(r.teacher)}};
    json data_files = json::array();
    std::string data_hash_text;
    for (const std::string& f : data.files()) {
        const std::string sha = sha256_file(f);
        data_files.push_back({{"file", f}, {"sha256", sha}});
        data_hash_text += f + "=" + sha + "\n";
    }
    for (const data_source* d : {&r.calibration, &r.evaluation, &r.training})
        if (d->present) data_hash_text += d->split + "/" + std::to_string(d->samples) + "\n";
    if (!r.teacher.empty()) data_hash_text += "teacher=" + sha256_file(r.teacher) + "\n";
    manifest["data"] = data_files;
    manifest["seed"] = r.seed;
    manifest["threads"] = cpu::thread_count();
    manifest["device"] = r.device;  // as the recipe asks; each stage's resolved device follows
    json stage_devices = json::object();
    for (const planned_stage& st : p.stages) stage_devices[st.spec->id] = st.device;
    manifest["stage_devices"] = stage_devices;
    manifest["host_cpu"] = cpu_model();
    manifest["libraries"] = {{"onednn", cpu::onednn_version()}, {"tbb", TBB_VERSION_STRING},
                             {"boost", BOOST_LIB_VERSION}, {"yaml-cpp", shrink_yaml_cpp_version},
                             {"nlohmann_json", std::to_string(NLOHMANN_JSON_VERSION_MAJOR) + "." + std::to_string(NLOHMANN_JSON_VERSION_MINOR) + "." + std::to_string(NLOHMANN_JSON_VERSION_PATCH)}};
    json plugin_list = json::array();
    std::map<const loaded_plugin*, std::string> plugin_sha;
    for (const auto& pl : plugins.plugins()) {
        json types = json::array();
        for (const planned_stage& st : p.stages)
            if (st.type->plugin == pl && std::find(types.begin(), types.end(), st.spec->use) == types.end()) types.push_back(st.spec->use);
        if (types.empty()) continue;
        plugin_sha[pl.get()] = sha256_file(pl->file);
        plugin_list.push_back({{"name", pl->name}, {"version", pl->version}, {"file", pl->file}, {"sha256", plugin_sha[pl.get()]},
                               {"types", types}});
    }
    manifest["plugins"] = plugin_list;
    write_file_atomic(dir / "manifest.json", manifest.dump(2) + "\n");

    // Each stage's key: everything that determines its output (see stage_store.hpp).
    auto key_of = [&](const planned_stage& st, const std::string& parent) {
        std::string text = std::string("shrink ") + shrink_version + "\nthreads=" + std::to_string(cpu::thread_count()) +
                           "\nparent=" + parent + "\ntype=" + st.spec->use + "\nplugin=" + plugin_sha[st.type->plugin.get()] +
                           "\nseed=" + std::to_string(st.seed) + "\ndevice=" + st.device + "\ndata=" + data_hash_text;
        for (const resolved_param& rp : st.params) text += "\nparam " + rp.name + "=" + rp.text;
        return sha256_hex(text);
    };
    std::vector<std::string> keys(p.stages.size());
    for (int i : p.order) {
        const planned_stage& st = p.stages[size_t(i)];
        keys[size_t(i)] = key_of(st, st.parent < 0 ? "model:" + p.model_sha256 : keys[size_t(st.parent)]);
    }
    const stage_store store(dir / "checkpoints", options.use_cache ? stage_store::default_cache() : fs::path());

    // Baseline: each distinct evaluator measures the unmodified model once.
    json baseline = nullptr;
    std::map<std::string, double> baseline_value;  // evaluator type+params -> metric
    const uint64_t original_size = serialized_size(original);
    auto evaluator_key = [](const planned_stage& st) {
        std::string k = st.spec->use;
        for (const resolved_param& rp : st.params) k += "|" + rp.name + "=" + rp.text;
        return k;
    };
    for (int i : p.order) {
        const planned_stage& st = p.stages[size_t(i)];
        if (st.kind != "evaluator" || baseline_value.count(evaluator_key(st))) continue;
        // The baseline is an evaluator applied to the input model: stored like a stage.
        const std::string key = sha256_hex("baseline\n" + key_of(st, "model:" + p.model_sha256));
        std::string source;
        model_state state{original, {}, root_teacher, false};
        try {
            std::map<std::string, double> results;
            if (auto stored = store.find(key, options.use_cache, source)) {
                results = stored->results;
                out.info("baseline: " + r.budget.metric + " of the input model with " + st.spec->use + ", reused from the " +
                         (source == "cache" ? "stage cache" : "run's checkpoint"));
            } else {
                out.info("baseline: measuring " + r.budget.metric + " of the input model with " + st.spec->use);
                results = run_stage(st, state, data);
                store.put(key, nullptr, results, "baseline:" + st.spec->id);
            }
            auto metric = results.find(r.budget.metric);
            if (metric == results.end())
                throw stage_error("evaluator " + st.spec->use + " reported no '" + r.budget.metric + "' metric");
            baseline_value[evaluator_key(st)] = metric->second;
            const auto se = results.find(r.budget.metric + "_stderr");
            measured.record(baseline_key(p, st), metric->second, se == results.end() ? 0.0 : se->second,
                            {{"baseline", st.spec->use}, {"model_sha256", p.model_sha256}, {"metric", r.budget.metric}});
            if (baseline.is_null()) baseline = {{"metric", r.budget.metric}, {"value", metric->second}, {"size_bytes", original_size}, {"evaluator", st.spec->use}};
        } catch (const std::exception& e) {
            out.warning(std::string("baseline evaluation failed: ") + e.what());
            write_file_atomic(dir / "manifest.json", manifest.dump(2) + "\n");
            print_error(e.what());
            return int(exit_code::stage_failed);
        }
    }

    std::vector<stage_outcome> outcome(p.stages.size());
    std::map<int, std::shared_ptr<model_state>> states;  // output state per finished stage
    std::vector<int> pending_children(p.stages.size());
    for (size_t i = 0; i < p.stages.size(); ++i) pending_children[i] = int(p.stages[i].children.size());
    auto original_state = std::make_shared<model_state>(model_state{original, {}, root_teacher, false});
    json results = json::array();
    bool any_failed = false, any_within = false, any_evaluator = false;
    json stage_seeds = json::object();

    for (int i : p.order) {
        const planned_stage& st = p.stages[size_t(i)];
        stage_outcome& o = outcome[size_t(i)];
        stage_seeds[st.spec->id] = st.seed;
        if (st.parent >= 0 && outcome[size_t(st.parent)].status != "ok") {
            o.status = "skipped";
            o.message = "parent '" + p.stages[size_t(st.parent)].spec->id + "' " + outcome[size_t(st.parent)].status;
            if (outcome[size_t(st.parent)].status == "over_budget") o.message = "its branch broke the budget at '" + p.stages[size_t(st.parent)].spec->id + "'";
            if (outcome[size_t(st.parent)].status == "skipped") o.message = outcome[size_t(st.parent)].message;
            out.info("stage " + st.spec->id + ": skipped (" + o.message + ")");
            continue;
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
                o.results = run_stage(st, *state, data);
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
        if (o.status != "ok") continue;
        o.size_bytes = serialized_size(state->net);

        if (st.kind == "evaluator") {
            any_evaluator = true;
            json entry{{"stage", st.spec->id}, {"metric", r.budget.metric}, {"size_bytes", o.size_bytes}};
            json path = json::array();
            for (int at = i; at >= 0; at = p.stages[size_t(at)].parent) path.insert(path.begin(), p.stages[size_t(at)].spec->id);
            entry["path"] = path;
            std::vector<stage_drop> drops;  // predicted retention of the path up to this evaluator
            for (int at = i; at >= 0; at = p.stages[size_t(at)].parent)
                if (p.stages[size_t(at)].changes_weights()) drops.push_back({p.stages[size_t(at)].expected_drop, p.stages[size_t(at)].kind});
            entry["predicted_retention"] = predict_retention(drops, r.budget.higher_is_better, r.budget.interaction_penalty);
            auto metric = o.results.find(r.budget.metric);
            if (metric == o.results.end()) {
                o.status = "failed";
                o.message = "evaluator reported no '" + r.budget.metric + "' metric";
                any_failed = true;
                std::fprintf(stderr, "error: stage '%s': %s\n", st.spec->id.c_str(), o.message.c_str());
                continue;
            }
            const double base = baseline_value.at(evaluator_key(st));
            const bool hib = r.budget.higher_is_better;
            const double retention = retention_of(base, metric->second, hib);
            const double required = required_retention(r.budget, base);
            const bool within = within_budget(r.budget, base, metric->second);
            entry["value"] = metric->second;
            entry["retention"] = retention;
            entry["required_retention"] = required;
            entry["within_budget"] = within;
            // Sampling noise: a 95% interval of the measured retention, and whether the
            // budget's threshold falls inside it (the verdict could flip on other samples).
            if (auto se = o.results.find(r.budget.metric + "_stderr"); se != o.results.end()) {
                const double a = retention_of(base, metric->second - 1.96 * se->second, hib);
                const double z = retention_of(base, metric->second + 1.96 * se->second, hib);
                entry["stderr"] = se->second;
                entry["retention_interval"] = {std::min(a, z), std::max(a, z)};
                entry["verdict_within_noise"] = r.budget.present && required >= std::min(a, z) && required <= std::max(a, z);
            }
            entry["extra"] = o.results;
            results.push_back(entry);
            any_within = any_within || within;
            if (!within) {
                o.status = "over_budget";
                out.info("  " + st.spec->id + ": retention " + fmt("%.4f", retention) + " is below the budget's " +
                         fmt("%.4f", required) + "; stopping this branch");
            }
        }
        states[i] = state;
        if (!st.children.empty()) continue;
        // A leaf: write the model its path produced, named after the last stage that changed it.
        int producer = i;
        while (producer >= 0 && !p.stages[size_t(producer)].changes_weights()) producer = p.stages[size_t(producer)].parent;
        const std::string name = producer < 0 ? "input" : p.stages[size_t(producer)].spec->id;
        const fs::path file = dir / "models" / (name + ".safetensors");
        if (!fs::exists(file)) {
            try {
                const std::string written = save_model(state->net, file);
                // The state is done with: let it go before the file is read back, so that the
                // two never take memory at the same time.
                states.erase(i);
                state.reset();
                // Read it back: the file must hold exactly what the stages made (its bytes are
                // those written, and what the reader makes of them serializes to those bytes
                // again), in the encodings the plan promised.
                std::vector<std::string> problems;
                if (const std::string on_disk = sha256_file(file); on_disk != written)
                    problems.push_back("its bytes on disk (sha256 " + on_disk + ") are not those written (" + written + ")");
                const model back = load_model(file);
                if (serialized_sha256(back) != written)
                    problems.push_back("what the reader makes of it does not serialize back to the bytes written");
                for (const std::string& broken : check_promises(back, p.stages[size_t(producer < 0 ? i : producer)].promised_encodings))
                    problems.push_back(broken);
                if (!problems.empty()) {
                    std::string all;
                    for (const std::string& m : problems) all += "\n  " + m;
                    throw stage_error(file.string() + ": error: the written model does not verify:" + all);
                }
                if (r.output_format == "onnx") onnx_import::save_onnx(back, dir / "models" / (name + ".onnx"));
            } catch (const std::exception& e) {
                print_error(e.what());
                any_failed = true;
            }
        }
        states.erase(i);
    }

    // Teach the ledger: a path segment between two measurements with exactly one lossy
    // stage in it measures that stage's drop.
    std::map<std::string, const json*> by_stage;
    for (const json& e : results) by_stage[e["stage"].get<std::string>()] = &e;
    for (const plan_path& path : p.paths) {
        double before = 1;
        std::vector<int> lossy;
        for (int s : path.stages) {
            const planned_stage& st = p.stages[size_t(s)];
            if (st.changes_weights()) lossy.push_back(s);
            auto e = by_stage.find(st.spec->id);
            if (st.kind != "evaluator" || e == by_stage.end()) continue;
            const double now = (*e->second)["retention"].get<double>();
            if (lossy.size() == 1) {
                const planned_stage& one = p.stages[size_t(lossy[0])];
                json params = json::object();
                for (const resolved_param& rp : one.params) params[rp.name] = rp.text;
                const double se = e->second->contains("stderr") ? (*e->second)["stderr"].get<double>() : 0.0;
                measured.record(one.chain_key, drop_between(before, now, r.budget.higher_is_better), se,
                                {{"type", one.spec->use}, {"params", params}, {"model_sha256", p.model_sha256},
                                 {"metric", r.budget.metric}, {"recipe", fs::absolute(r.file).string()}});
            }
            before = now;
            lossy.clear();
        }
    }
    try {
        measured.save();
    } catch (const std::exception& e) {
        out.warning(std::string("the ledger was not saved: ") + e.what());
    }

    json stages = json::array();
    for (size_t i = 0; i < p.stages.size(); ++i) {
        const planned_stage& st = p.stages[i];
        const stage_outcome& o = outcome[i];
        json params = json::object();
        for (const resolved_param& rp : st.params) params[rp.name] = rp.text;
        stages.push_back({{"id", st.spec->id}, {"type", st.spec->use}, {"status", o.status}, {"message", o.message},
                          {"seconds", o.seconds}, {"results", o.results}, {"size_bytes", o.size_bytes}, {"params", params},
                          {"expected_drop", st.expected_drop}, {"expected_drop_source", st.drop_source},
                          {"predicted_peak_memory_bytes", st.peak_memory}, {"measured_peak_rss_bytes", o.peak_rss},
                          {"started", o.started}, {"ended", o.ended}});
    }
    json report{{"recipe", r.name}, {"baseline", baseline}, {"results", results}, {"stages", stages},
                {"budget", r.budget.present ? json{{"metric", r.budget.metric}, {"higher_is_better", r.budget.higher_is_better},
                                                   {"max_drop", r.budget.max_drop ? json(*r.budget.max_drop) : json(nullptr)},
                                                   {"max_abs_drop", r.budget.max_abs_drop ? json(*r.budget.max_abs_drop) : json(nullptr)},
                                                   {"interaction_penalty", r.budget.interaction_penalty}}
                                            : json(nullptr)}};
    write_file_atomic(dir / "report.json", report.dump(2) + "\n");
    manifest["stage_seeds"] = stage_seeds;
    json stage_records = json::array();
    for (int i : p.order) {
        const stage_outcome& o = outcome[size_t(i)];
        stage_records.push_back({{"id", p.stages[size_t(i)].spec->id}, {"key", keys[size_t(i)]}, {"status", o.status},
                                 {"source", o.source}, {"started", o.started}, {"ended", o.ended}, {"seconds", o.seconds}});
    }
    manifest["stages"] = stage_records;
    manifest["status"] = any_failed ? "failed" : "finished";
    manifest["ended"] = utc_now();
    write_file_atomic(dir / "manifest.json", manifest.dump(2) + "\n");

    // The summary table.
    if (!baseline.is_null()) {
        out.info("");
        char line[256];
        std::snprintf(line, sizeof line, "%-12s %12s %7s %10s %10s %10s %17s  %s", "stage", "size", "ratio", r.budget.metric.c_str(),
                      "predicted", "retention", "95% interval", "within budget");
        out.info(line);
        std::snprintf(line, sizeof line, "%-12s %12llu %6.2fx %10.4f %10s %10s %17s  %s", "(baseline)", (unsigned long long)original_size,
                      1.0, baseline["value"].get<double>(), "", "1.0000", "", "-");
        out.info(line);
        for (const json& e : results) {
            const double size = e["size_bytes"].get<double>();
            std::string interval;
            if (e.contains("retention_interval"))
                interval = fmt("%.4f", e["retention_interval"][0].get<double>()) + "-" + fmt("%.4f", e["retention_interval"][1].get<double>());
            std::string verdict = e["within_budget"].get<bool>() ? "yes" : "NO";
            if (e.value("verdict_within_noise", false)) verdict += " (within noise)";
            std::snprintf(line, sizeof line, "%-12s %12llu %6.2fx %10.4f %10s %10.4f %17s  %s", e["stage"].get<std::string>().c_str(),
                          (unsigned long long)e["size_bytes"].get<uint64_t>(), double(original_size) / size, e["value"].get<double>(),
                          e.contains("predicted_retention") ? fmt("%.4f", e["predicted_retention"].get<double>()).c_str() : "",
                          e["retention"].get<double>(), interval.c_str(), verdict.c_str());
            out.info(line);
        }
    }
    out.info("\nrun directory: " + dir.string());

    if (any_failed) return int(exit_code::stage_failed);
    if (any_evaluator && !any_within) return int(exit_code::budget_missed);
    return int(exit_code::ok);
}

}  // namespace shrink
