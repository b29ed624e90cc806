// SmoothQuant (plugins/transform_smoothquant) and the channel magnitudes it reads
// (calibrator.channels): the scales as the paper's formula gives them; on a decoder the
// transform leaves the model's outputs as they were while the largest input channel
// shrinks; the planner places it (channel magnitudes first, before any quantizer, ranges
// calibrated again after it).
#include "model/safetensors.hpp"
#include "smooth.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>

using namespace shrink;

TEST_CASE("SmoothQuant's scales are max|x|^a / max|w|^(1-a) per channel, clamped at 1e-5", "[smoothquant]") {
    const std::vector<float> w{1, -4, 0.5f, 0,  //
                               -2, 1, 0.25f, 0};
    std::vector<float> colmax;
    smooth::column_absmax(w.data(), 2, 4, colmax);
    CHECK(colmax == std::vector<float>{2, 4, 0.5f, 0});
    const std::vector<float> x{8, 1, 2, 3};
    const std::vector<float> s = smooth::scales(x, colmax, 0.5);
    CHECK(s[0] == Approx(std::sqrt(8.0) / std::sqrt(2.0)));
    CHECK(s[1] == Approx(1 / 2.0));
    CHECK(s[2] == Approx(std::sqrt(2.0) / std::sqrt(0.5)));
    CHECK(s[3] == Approx(std::sqrt(3.0) / std::sqrt(1e-5)));  // an all-zero column counts as 1e-5
    CHECK(smooth::scales(x, colmax, 0.0)[1] == Approx(1 / 4.0));  // alpha 0: only the weights' side
    CHECK(smooth::scales(x, colmax, 1.0)[0] == Approx(8.0));       // alpha 1: only the inputs'
    CHECK_THROWS(smooth::scales(x, {1, 2}, 0.5));
}

namespace {

const std::string corpus =
    "In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness was upon "
    "the face of the deep. And the Spirit of God moved upon the face of the waters.\n";

std::string recipe(const std::string& stages) {
    return "version: 1\nname: sq\nseed: 3\nmodel: lm.safetensors\ndata:\n  tokenizer: .\n"
           "  calibration: { dataset: text, path: text.txt, seq_len: 16, samples: 8 }\n"
           "  evaluation: { dataset: text, path: text.txt, seq_len: 16 }\nstages:\n" +
           stages;
}

}  // namespace

TEST_CASE("transform.smoothquant leaves a decoder's outputs as they were and flattens its inputs", "[smoothquant][cli]") {
    test::temp_dir dir;
    const test::text_decoder d = test::save_text_decoder(dir.path(), corpus, 31);
    std::string text;
    for (int i = 0; i < 12; ++i) text += corpus;
    test::write_text(dir / "text.txt", text);
    test::write_text(dir / "r.yaml", recipe("  - { id: channels, use: calibrator.channels }\n"
                                            "  - { id: smooth, use: transform.smoothquant, params: { alpha: 0.5 } }\n"
                                            "  - { id: ppl, use: evaluator.perplexity }\n"));
    const auto r = test::shrink_cli("run " + (dir / "r.yaml").string() + " --out " + (dir / "run").string() + " --no-cache");
    INFO(r.output);
    REQUIRE(r.code == 0);
    const auto report = nlohmann::json::parse(test::read_text(dir / "run" / "report.json"));
    INFO(report.dump(2));
    const double base = report["baseline"]["value"].get<double>();
    CHECK(report["results"][0]["value"].get<double>() == Approx(base).epsilon(1e-5));
    nlohmann::json smooth;
    for (const auto& s : report["stages"])
        if (s["id"] == "smooth") smooth = s["results"];
    // Each block's q/k/v after its first norm and gate/up after its second, and the head
    // after the final norm: every linear but o_proj and down_proj.
    uint64_t linears = 0, by_norm = 0;
    for (const layer& l : d.m.layers) {
        if (l.op != "linear") continue;
        ++linears;
        by_norm += l.name.find("o_proj") == std::string::npos && l.name.find("down_proj") == std::string::npos;
    }
    CHECK(smooth["layers_smoothed"].get<double>() == double(by_norm));
    CHECK(smooth["norms_folded"].get<double>() == double(2 * 2 + 1));
    CHECK(by_norm < linears);
    CHECK(smooth["largest_input_after"].get<double>() < smooth["largest_input_before"].get<double>());
    // The written model: norms and the weights after them changed, the others as they were.
    const model out = load_model(dir / "run" / "models" / "smooth.safetensors");
    for (const layer& l : d.m.layers) {
        if (l.weight.empty()) continue;
        const bool changed = out.at(l.weight).decode() != d.m.at(l.weight).decode();
        const bool expected = l.op == "rms_norm" || (l.op == "linear" && l.name.find("o_proj") == std::string::npos &&
                                                     l.name.find("down_proj") == std::string::npos);
        INFO(l.name);
        CHECK(changed == expected);
    }
}

TEST_CASE("the planner places SmoothQuant: after channel magnitudes, before quantizing, ranges calibrated after it", "[smoothquant][cli]") {
    test::temp_dir dir;
    test::save_text_decoder(dir.path(), corpus, 31);
    test::write_text(dir / "text.txt", corpus + corpus + corpus);
    auto refused = [&](const std::string& name, const std::string& stages, const std::string& says) {
        test::write_text(dir / name, recipe(stages));
        const auto r = test::shrink_cli("validate " + (dir / name).string());
        INFO(r.output);
        CHECK(r.code == 1);
        CHECK(r.output.find(says) != std::string::npos);
    };
    refused("no-channels.yaml", "  - { id: smooth, use: transform.smoothquant }\n", "requires 'channel_magnitudes'");
    refused("after-quant.yaml",
            "  - { id: channels, use: calibrator.channels }\n"
            "  - { id: q, use: quantizer.rtn }\n"
            "  - { id: smooth, use: transform.smoothquant }\n",
            "cannot work on quantized weights");
    refused("stale-ranges.yaml",
            "  - { id: ranges, use: calibrator.minmax }\n"
            "  - { id: channels, use: calibrator.channels }\n"
            "  - { id: smooth, use: transform.smoothquant }\n"
            "  - { id: q, use: quantizer.rtn, params: { activation_bits: 8 } }\n",
            "move 'ranges' after 'smooth'");
}

TEST_CASE("W8A8 per token: SmoothQuant then quantizer.rtn with dynamic int8 inputs, no ranges needed", "[smoothquant][cli]") {
    test::temp_dir dir;
    const test::text_decoder d = test::save_text_decoder(dir.path(), corpus, 31);
    std::string text;
    for (int i = 0; i < 12; ++i) text += corpus;
    test::write_text(dir / "text.txt", text);
    // Static int8 inputs need a calibrator's ranges; per-token ones are computed as the model runs.
    test::write_text(dir / "static.yaml", recipe("  - { id: q, use: quantizer.rtn, params: { bits: 8, granularity: per_channel, activation_bits: 8 } }\n"));
    const auto refused = test::shrink_cli("validate " + (dir / "static.yaml").string());
    CHECK(refused.code == 1);
    CHECK(refused.output.find("requires 'activation_ranges'") != std::string::npos);
    test::write_text(dir / "r.yaml", recipe("  - { id: channels, use: calibrator.channels }\n"
                                            "  - { id: smooth, use: transform.smoothquant, params: { alpha: 0.5 } }\n"
                                            "  - { id: q, use: quantizer.rtn, params: { bits: 8, granularity: per_channel, activation_bits: 8_per_token } }\n"
                                            "  - { id: ppl, use: evaluator.perplexity }\n"));
    const auto r = test::shrink_cli("run " + (dir / "r.yaml").string() + " --out " + (dir / "run").string() + " --no-cache");
    INFO(r.output);
    REQUIRE(r.code == 0);
    CHECK(r.output.find("with int8 inputs per token") != std::string::npos);
    const model out = load_model(dir / "run" / "models" / "q.safetensors");
    size_t linears = 0;
    for (const layer& l : out.layers) {
        if (l.op != "linear") continue;
        ++linears;
        INFO(l.name);
        REQUIRE(l.input_quantization);
        CHECK(l.input_quantization->per_token);
        CHECK(out.at(l.weight).quant->bits == 8);
    }
    CHECK(linears > 0);
    // It quantizes: not the float perplexity, and near it.
    const auto report = nlohmann::json::parse(test::read_text(dir / "run" / "report.json"));
    const double base = report["baseline"]["value"].get<double>(), q = report["results"][0]["value"].get<double>();
    CHECK(q != base);
    CHECK(std::fabs(q / base - 1) < 0.05);
    const auto shown = test::shrink_cli("inspect " + (dir / "run" / "models" / "q.safetensors").string());
    CHECK(shown.output.find("(input int8 per token, dynamic)") != std::string::npos);
}
