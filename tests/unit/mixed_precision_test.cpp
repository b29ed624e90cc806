// Mixed precision (plugins/quantizer_rtn/mixed_stages.hpp): the width assignment against
// brute force, the host's trial forward pass that the sensitivity analysis runs on, and
// both stages end to end on a decoder, with the plan's refusals.
#include "bit_allocation.hpp"
#include "rtn_kernel.hpp"
#include "cpu/engine.hpp"
#include "model/safetensors.hpp"
#include "model/surgery.hpp"
#include "run/stage_host.hpp"
#include "support.hpp"
#include "util/random.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstring>
#include <limits>

using namespace shrink;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

/// Every assignment tried: the least loss within the budget, or nothing.
std::optional<double> brute_force(const std::vector<std::vector<mixed::choice>>& layers, uint64_t budget) {
    std::optional<double> best;
    std::vector<size_t> at(layers.size(), 0);
    while (true) {
        uint64_t bytes = 0;
        double loss = 0;
        for (size_t l = 0; l < layers.size(); ++l) bytes += layers[l][at[l]].bytes, loss += layers[l][at[l]].loss;
        if (bytes <= budget && (!best || loss < *best)) best = loss;
        size_t l = 0;
        while (l < layers.size() && ++at[l] == layers[l].size()) at[l++] = 0;
        if (l == layers.size()) return best;
    }
}

struct trial_outputs {
    std::vector<float> logits;
};

shrink_status collect(void* user, const shrink_forward_event* ev, shrink_error*) {
    if (ev->kind == SHRINK_FORWARD_OUTPUT)
        static_cast<trial_outputs*>(user)->logits.insert(static_cast<trial_outputs*>(user)->logits.end(), ev->data,
                                                          ev->data + ev->rows * ev->cols);
    return SHRINK_OK;
}

}  // namespace

TEST_CASE("the width assignment is the least summed loss within the budget, as brute force finds it", "[mixed]") {
    rng r(11);
    for (int instance = 0; instance < 300; ++instance) {
        const size_t n = 1 + r.below(5);
        std::vector<std::vector<mixed::choice>> layers(n);
        uint64_t least = 0, most = 0;
        for (auto& l : layers) {
            const size_t k = 1 + r.below(4);
            uint64_t lo = std::numeric_limits<uint64_t>::max(), hi = 0;
            for (size_t i = 0; i < k; ++i) {
                l.push_back({int(i), 1 + r.below(400), double(r.below(1000)) / 7.0});
                lo = std::min(lo, l.back().bytes), hi = std::max(hi, l.back().bytes);
            }
            least += lo, most += hi;
        }
        const uint64_t budget = least / 2 + r.below(most + 10);
        INFO("instance " << instance << ", budget " << budget);
        const std::optional<double> expected = brute_force(layers, budget);
        const std::optional<mixed::allocation> got = mixed::allocate(layers, budget);
        REQUIRE(bool(got) == bool(expected));
        if (!got) continue;
        CHECK(got->loss == Approx(*expected).margin(1e-9));  // budgets under 65536 bytes: exact
        CHECK(got->bytes <= budget);
        uint64_t bytes = 0;
        for (size_t l = 0; l < n; ++l) bytes += layers[l][got->pick[l]].bytes;
        CHECK(bytes == got->bytes);
    }
    // A budget of many megabytes is counted in units, each choice rounded up: never over it.
    std::vector<std::vector<mixed::choice>> big;
    for (int l = 0; l < 30; ++l) big.push_back({{4, 1'000'003 + uint64_t(l), 1.0 + l}, {8, 2'000'001 + uint64_t(l) * 3, 0.01}});
    for (uint64_t budget : {30'100'000ull, 45'000'000ull, 59'999'999ull}) {
        const auto a = mixed::allocate(big, budget);
        REQUIRE(a);
        CHECK(a->bytes <= budget);
        // The most sensitive layers (the last ones) go to 8 bits first.
        for (size_t l = 1; l < big.size(); ++l) CHECK(a->pick[l] >= a->pick[l - 1]);
    }
    CHECK_FALSE(mixed::allocate(big, 30'000'000));  // below every layer at 4 bits
}

TEST_CASE("a trial forward pass computes with the given values and leaves the model as it was, bit for bit", "[mixed]") {
    const decoder_shape s = test::tiny_decoder_shape();
    model_state state;
    state.net = test::random_decoder(s, 9);
    // One weight stored quantized: the trial must give back its encoding, not floats.
    const std::string q = "model.layers.0.mlp.up_proj.weight", v = "model.layers.1.self_attn.v_proj.weight";
    {
        const tensor& t = state.net.at(q);
        const std::vector<float> w = t.decode();
        rtn::options o;
        o.bits = 4;
        o.symmetric = false;
        o.gran = rtn::granularity::per_group;
        o.group_size = 16;
        rtn::result r = rtn::quantize(w.data(), uint64_t(t.shape[0]), uint64_t(t.shape[1]), o);
        state.net.at(q) = make_quantized(t, quant_spec{4, false, r.group_size}, r.q, r.scales, r.zero_points);
    }
    const model before = state.net;
    const test::random_text text(6, 12, s.vocab, 4);
    stage_host host(state, [&](shrink_split) -> const split_view& { return text.view; }, "trial", 1, false);
    const shrink_host* h = host.table();

    std::vector<float> up = before.at(q).decode(), vp = before.at(v).decode();
    for (float& x : up) x *= -0.5f;
    for (float& x : vp) x = 0.01f;
    const shrink_trial_tensor trial[2] = {{q.c_str(), up.data(), up.size()}, {v.c_str(), vp.data(), vp.size()}};
    trial_outputs got;
    shrink_error e{};
    REQUIRE(h->forward_trial(h->ctx, SHRINK_SPLIT_CALIBRATION, 0, trial, 2, collect, &got, &e) == SHRINK_OK);

    // The same pass on a model that really holds those values.
    model changed = before;
    changed.at(q) = dense_tensor(q, changed.at(q).shape, up.data(), up.size(), nullptr);
    changed.at(v) = dense_tensor(v, changed.at(v).shape, vp.data(), vp.size(), nullptr);
    trial_outputs expected, plain;
    engine run(changed);
    batch_observer o;
    o.on_output = [&](const float* out, int64_t rows, int64_t cols, const int32_t*, double) {
        expected.logits.insert(expected.logits.end(), out, out + rows * cols);
    };
    forward_batches(changed, text.view, 0, run, o);
    CHECK(got.logits == expected.logits);

    auto unchanged = [&] {
        for (const auto& [name, t] : before.tensors) {
            INFO(name);
            CHECK(state.net.at(name).encoding_summary() == t.encoding_summary());
            CHECK(state.net.at(name).decode() == t.decode());
        }
    };
    unchanged();
    // With no tensors it is the plain forward pass.
    REQUIRE(h->forward_trial(h->ctx, SHRINK_SPLIT_CALIBRATION, 0, nullptr, 0, collect, &plain, &e) == SHRINK_OK);
    CHECK(plain.logits != got.logits);

    // Refused, the model untouched: a count that is not the tensor's, a tensor named twice,
    // one the model lacks; and an observer that fails halfway still gets the model back.
    const shrink_trial_tensor short_count[2] = {{v.c_str(), vp.data(), vp.size()}, {q.c_str(), up.data(), up.size() - 1}};
    CHECK(h->forward_trial(h->ctx, SHRINK_SPLIT_CALIBRATION, 0, short_count, 2, collect, &got, &e) != SHRINK_OK);
    CHECK(std::string(e.message).find("tensor '" + q + "' has") != std::string::npos);
    const shrink_trial_tensor twice[2] = {{v.c_str(), vp.data(), vp.size()}, {v.c_str(), vp.data(), vp.size()}};
    CHECK(h->forward_trial(h->ctx, SHRINK_SPLIT_CALIBRATION, 0, twice, 2, collect, &got, &e) != SHRINK_OK);
    CHECK(std::string(e.message).find("given twice") != std::string::npos);
    const shrink_trial_tensor unknown[1] = {{"no.such.weight", vp.data(), vp.size()}};
    CHECK(h->forward_trial(h->ctx, SHRINK_SPLIT_CALIBRATION, 0, unknown, 1, collect, &got, &e) != SHRINK_OK);
    auto failing = [](void*, const shrink_forward_event*, shrink_error* err) -> shrink_status {
        std::snprintf(err->message, sizeof err->message, "observer gave up");
        return SHRINK_FAILED;
    };
    CHECK(h->forward_trial(h->ctx, SHRINK_SPLIT_CALIBRATION, 0, trial, 2, failing, nullptr, &e) != SHRINK_OK);
    unchanged();
}

namespace {

std::map<std::string, json> stage_results(const fs::path& run) {
    std::map<std::string, json> out;
    const json report = json::parse(test::read_text(run / "report.json"));
    for (const auto& s : report["stages"]) out[s["id"].get<std::string>()] = s["results"];
    return out;
}

/// The sensitivity artifacts a run's analyzer stored, per layer: KL at 2, 3, 4, 8 bits.
std::map<std::string, std::vector<double>> sensitivities(const fs::path& run, const std::string& stage) {
    std::map<std::string, std::vector<double>> out;
    for (const auto& e : fs::directory_iterator(run / "checkpoints")) {
        if (!fs::is_regular_file(e.path() / "state.json")) continue;
        const json j = json::parse(test::read_text(e.path() / "state.json"));
        if (j["stage"] != stage) continue;
        for (const json& a : j["artifacts"]) {
            if (a["key"] != "sensitivity") continue;
            const std::string bytes = test::read_text(run / "checkpoints" / "artifacts" / a["sha256"].get<std::string>());
            std::vector<double> kl(bytes.size() / sizeof(double));
            std::memcpy(kl.data(), bytes.data(), kl.size() * sizeof(double));
            out[a["layer"].get<std::string>()] = kl;
        }
    }
    return out;
}

}  // namespace

TEST_CASE("analyzer.sensitivity measures each layer without changing the model; quantizer.mixed meets the target",
          "[mixed][cli]") {
    test::temp_dir dir;
    const test::text_decoder d = test::save_text_lm(dir.path(), 23, 12);
    const std::string head = "version: 1\nname: mx\nseed: 3\nmodel: lm.safetensors\ndata:\n  tokenizer: .\n"
                             "  calibration: { dataset: text, path: text.txt, seq_len: 16, samples: 6 }\n"
                             "  evaluation: { dataset: text, path: text.txt, seq_len: 16 }\nstages:\n";
    auto run = [&](const std::string& name, const std::string& stages) {
        test::write_text(dir / (name + ".yaml"), head + stages);
        return test::shrink_cli("run " + (dir / (name + ".yaml")).string() + " --out " + (dir / name).string() + " --no-cache",
                                "SHRINK_LEDGER=off");
    };
    // In groups of 16 an f32 scale and an int8 zero point add 2.5 bits a weight: every layer
    // at 8 bits fits 11 bits a weight, 8 fits every layer at 4 bits and some at 8, 6.6
    // fewer at 8.
    const auto r = run("r", "  - { id: sens, use: analyzer.sensitivity, params: { group_size: 16 } }\n"
                            "  - { id: ppl-sens, use: evaluator.perplexity }\n"
                            "  - { id: all8, use: quantizer.mixed, after: sens, params: { target_bits_per_weight: 11.0, group_size: 16 } }\n"
                            "  - { id: mid, use: quantizer.mixed, after: sens, params: { target_bits_per_weight: 8.0, group_size: 16 } }\n"
                            "  - { id: ppl-mid, use: evaluator.perplexity }\n"
                            "  - { id: low, use: quantizer.mixed, after: sens, params: { target_bits_per_weight: 6.6, group_size: 16 } }\n"
                            "  - { id: ppl-low, use: evaluator.perplexity }\n"
                            "  - { id: rtn4, use: quantizer.rtn, after: [], params: { bits: 4, scheme: asymmetric, granularity: per_group, group_size: 16 } }\n"
                            "  - { id: ppl-rtn4, use: evaluator.perplexity }\n");
    INFO(r.output);
    REQUIRE((r.code == 0 || r.code == 4));
    auto results = stage_results(dir / "r");
    const json report = json::parse(test::read_text(dir / "r" / "report.json"));
    // The analyzer leaves the model as it was: the same perplexity as the baseline, to the bit.
    CHECK(results["ppl-sens"]["perplexity"].get<double>() == report["baseline"]["value"].get<double>());

    const auto kl = sensitivities(dir / "r", "sens");
    size_t linears = 0;
    for (const layer& l : d.m.layers)
        if (l.op == "linear") ++linears;
    REQUIRE(kl.size() == linears);
    for (const auto& [name, v] : kl) {
        INFO(name);
        REQUIRE(v.size() == 4);
        CHECK(v[0] > v[2]);  // 2 bits move the outputs more than 4
        CHECK(v[2] > v[3]);  // and 4 more than 8
        CHECK(v[3] >= 0);
    }

    // Every target is met; more bits where the budget allows, the 4-bit layers' outputs no
    // better than the mixed ones.
    for (const char* id : {"all8", "mid", "low"}) {
        INFO(id);
        CHECK(results[id]["layers_quantized"].get<double>() == double(linears));
    }
    CHECK(results["all8"]["bits_per_weight"].get<double>() <= 11.0);
    CHECK(results["mid"]["bits_per_weight"].get<double>() <= 8.0);
    CHECK(results["low"]["bits_per_weight"].get<double>() <= 6.6);
    int eights_all = 0, eights_mid = 0, eights_low = 0;
    for (const auto& [name, v] : kl) {
        eights_all += results["all8"]["bits." + name].get<double>() == 8;
        eights_mid += results["mid"]["bits." + name].get<double>() == 8;
        eights_low += results["low"]["bits." + name].get<double>() == 8;
    }
    CHECK(eights_all == int(linears));
    CHECK(eights_mid > eights_low);
    CHECK(eights_mid < int(linears));
    CHECK(results["mid"]["predicted_kl"].get<double>() <= results["low"]["predicted_kl"].get<double>());
    const model mid = load_model(dir / "r" / "models" / "mid.safetensors");
    for (const layer& l : mid.layers) {
        if (l.op != "linear") continue;
        INFO(l.name);
        REQUIRE(mid.at(l.weight).quant);
        CHECK(mid.at(l.weight).quant->bits == (results["mid"]["bits." + l.name].get<double>() == 8 ? 8 : 4));
    }

    // A target below every layer at the fewest bits fails the stage with the least it can store.
    const auto tight = run("tight", "  - { id: sens, use: analyzer.sensitivity, params: { group_size: 16 } }\n"
                                    "  - { id: m, use: quantizer.mixed, params: { target_bits_per_weight: 3.0, group_size: 16 } }\n");
    INFO(tight.output);
    CHECK(tight.code == 3);
    CHECK(tight.output.find("target_bits_per_weight 3 is below what these layers can store") != std::string::npos);
    // The grid must be the one measured.
    const auto grid = run("grid", "  - { id: sens, use: analyzer.sensitivity, params: { group_size: 16 } }\n"
                                  "  - { id: m, use: quantizer.mixed, params: { group_size: 32 } }\n");
    CHECK(grid.code == 3);
    CHECK(grid.output.find("was measured with scheme asymmetric and group_size 16, not with this stage's asymmetric and 32") !=
          std::string::npos);

    // Before running: no measurement, or one a weight change made stale, is refused.
    test::write_text(dir / "none.yaml", head + "  - { id: m, use: quantizer.mixed }\n");
    const auto none = test::shrink_cli("plan " + (dir / "none.yaml").string());
    INFO(none.output);
    CHECK(none.code != 0);
    CHECK(none.output.find("requires 'layer_sensitivity', which no stage before it on its path provides") != std::string::npos);
    test::write_text(dir / "stale.yaml", head + "  - { id: sens, use: analyzer.sensitivity }\n"
                                                "  - { id: prune, use: pruner.magnitude, params: { layers: [lm_head] } }\n"
                                                "  - { id: m, use: quantizer.mixed }\n");
    const auto stale = test::shrink_cli("plan " + (dir / "stale.yaml").string());
    INFO(stale.output);
    CHECK(stale.code != 0);
    // The pruned layer is the head, the last; the measurement of the first layer is stale too.
    CHECK(stale.output.find("but stage 'prune' changed the weights after 'sens' provided it, so it is stale; move 'sens' after 'prune'") !=
          std::string::npos);
}

TEST_CASE("the plan shows quantizer.mixed's assignment once the analyzer's output is cached; the run then makes it",
          "[mixed][cli]") {
    test::temp_dir dir;
    test::save_text_lm(dir.path(), 23, 12);
    const std::string env = "SHRINK_LEDGER=off SHRINK_CACHE=" + (dir / "cache").string();
    const std::string head = "version: 1\nname: mx\nseed: 3\nmodel: lm.safetensors\ndata:\n  tokenizer: .\n"
                             "  calibration: { dataset: text, path: text.txt, seq_len: 16, samples: 6 }\n"
                             "  evaluation: { dataset: text, path: text.txt, seq_len: 16 }\nstages:\n";
    const std::string sens = "  - { id: sens, use: analyzer.sensitivity, params: { group_size: 16 } }\n";
    const std::string mid = "  - { id: mid, use: quantizer.mixed, after: sens, params: { target_bits_per_weight: 8.0, group_size: 16 } }\n";
    const std::string tight = "  - { id: tight, use: quantizer.mixed, after: sens, params: { target_bits_per_weight: 3.0, group_size: 16 } }\n";
    const fs::path full = dir / "full.yaml";
    test::write_text(full, head + sens + mid + tight);
    auto plan = [&](const std::string& flags) { return test::shrink_cli("plan " + full.string() + " --threads 1 " + flags, env); };

    // Nothing cached yet: the plan says so and stands.
    const auto before = plan("");
    INFO(before.output);
    CHECK(before.code == 0);
    CHECK(before.output.find("  mid: not previewed: 'sens' is not in the stage cache") != std::string::npos);

    // The analyzer alone, once, fills the cache (its key does not depend on the stages after it).
    test::write_text(dir / "sens.yaml", head + sens);
    const auto analysed = test::shrink_cli("run " + (dir / "sens.yaml").string() + " --out " + (dir / "sens").string() + " --threads 1", env);
    INFO(analysed.output);
    REQUIRE(analysed.code == 0);

    // Now the plan runs both quantizers on the cached analysis: the assignment, and the
    // failure the run would meet, with the run's exit code.
    const auto text = plan("");
    INFO(text.output);
    CHECK(text.code == 3);
    CHECK(text.output.find("  mid on the cached output of 'sens':\n    assigned widths for ") != std::string::npos);
    CHECK(text.output.find("  tight on the cached output of 'sens':\n    the run will fail here: ") != std::string::npos);
    CHECK(text.output.find("target_bits_per_weight 3 is below what these layers can store") != std::string::npos);
    const auto as_json = plan("--format json");
    REQUIRE(as_json.code == 3);
    std::map<std::string, json> preview;
    const json planned = json::parse(as_json.output.substr(as_json.output.find('{')));
    for (const json& p : planned["previews"]) preview[p["stage"]] = p;
    REQUIRE(preview.size() == 2);
    CHECK(preview["mid"]["from"] == "sens");
    CHECK(preview["mid"]["status"] == "ok");
    CHECK(preview["tight"]["status"] == "failed");
    // Without the cache only stages that start from the model are previewed.
    CHECK(plan("--no-cache").output.find("  mid: not previewed: the stage cache is off") != std::string::npos);

    // The run reuses the analysis and makes exactly what the plan showed.
    test::write_text(dir / "run.yaml", head + sens + mid);
    const auto ran = test::shrink_cli("run " + (dir / "run.yaml").string() + " --out " + (dir / "run").string() + " --threads 1", env);
    INFO(ran.output);
    REQUIRE(ran.code == 0);
    CHECK(ran.output.find("stage sens (analyzer.sensitivity): reused from the stage cache") != std::string::npos);
    const json run_results = stage_results(dir / "run")["mid"];
    size_t per_layer = 0, eights = 0;
    for (const auto& [name, value] : preview["mid"]["results"].items()) {
        INFO(name);
        CHECK(run_results.at(name).get<double>() == value.get<double>());
        per_layer += name.rfind("bits.", 0) == 0;
        eights += name.rfind("bits.", 0) == 0 && value.get<double>() == 8;
    }
    CHECK(run_results.size() == preview["mid"]["results"].size());
    CHECK(per_layer > 0);
    CHECK(eights > 0);  // a real mix at 8 bits per weight, as the test above finds
    CHECK(eights < per_layer);
}
