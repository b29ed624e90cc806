// quantizer.gptq_sequential: GPTQ calibrated block by block (run/block_feed.hpp), each
// block's Hessians from inputs through the blocks before it as already quantized. Block 0
// sees what calibrator.hessian sees, so its codes equal quantizer.gptq's; later blocks see
// the quantized blocks' outputs, so theirs differ. The plan's memory for it (the stream
// between blocks, a block's Hessians) is within 25% of the run's peak.
#include "model/safetensors.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace shrink;

namespace {

const std::string corpus =
    "In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness was upon "
    "the face of the deep. And the Spirit of God moved upon the face of the waters.\n";

nlohmann::json stage_results(const nlohmann::json& report, const std::string& id) {
    for (const auto& s : report["stages"])
        if (s["id"] == id) return s["results"];
    return {};
}

}  // namespace

TEST_CASE("quantizer.gptq_sequential: block 0 as quantizer.gptq quantizes it, later blocks through the quantized ones",
          "[gptq][blocks][cli]") {
    test::temp_dir dir;
    const test::text_decoder d = test::save_text_decoder(dir.path(), corpus, 17);
    std::string text;
    for (int i = 0; i < 12; ++i) text += corpus;
    test::write_text(dir / "text.txt", text);
    test::write_text(dir / "r.yaml", "version: 1\nname: seq\nseed: 3\nmodel: lm.safetensors\ndata:\n  tokenizer: .\n"
                                     "  calibration: { dataset: text, path: text.txt, seq_len: 16, samples: 8 }\n"
                                     "  evaluation: { dataset: text, path: text.txt, seq_len: 16 }\nstages:\n"
                                     "  - { id: hessian, use: calibrator.hessian }\n"
                                     "  - { id: gptq, use: quantizer.gptq, params: { bits: 3, group_size: 0 } }\n"
                                     "  - { id: seq, use: quantizer.gptq_sequential, after: [], params: { bits: 3, group_size: 0 } }\n");
    const auto r = test::shrink_cli("run " + (dir / "r.yaml").string() + " --out " + (dir / "run").string() + " --no-cache");
    INFO(r.output);
    REQUIRE(r.code == 0);
    const auto report = nlohmann::json::parse(test::read_text(dir / "run" / "report.json"));
    const auto seq = stage_results(report, "seq");
    INFO(report.dump(2));
    CHECK(seq["layers_quantized"] == 15.0);  // 7 a block, the head
    CHECK(seq["blocks"] == 5.0);             // embedding, 2 blocks, final norm, head

    const model by_hessian = load_model(dir / "run" / "models" / "gptq.safetensors");
    const model sequential = load_model(dir / "run" / "models" / "seq.safetensors");
    int later_differ = 0;
    for (const layer& l : d.m.layers) {
        if (l.op != "linear") continue;
        const tensor &a = by_hessian.at(l.weight), &b = sequential.at(l.weight);
        REQUIRE(b.quant);
        const bool same = a.q.to_vector() == b.q.to_vector() && a.scales.to_vector() == b.scales.to_vector();
        INFO(l.name);
        if (l.name.rfind("layers.0.", 0) == 0) CHECK(same);
        else later_differ += !same;
    }
    CHECK(later_differ >= 7);  // block 1 and the head see block 0's quantized outputs
}

TEST_CASE("the plan's peak memory for sequential GPTQ holds the stream between blocks, within 25% of the run's",
          "[gptq][blocks][cli][memory]") {
    // Enough KJV windows that the stream (2 x windows x 128 tokens x 128 floats) outweighs
    // the rest of the process.
    test::temp_dir dir;
    const auto made = test::shrink_cli("train --arch llama -q --out " + (dir / "lm").string() +
                                       " --vocab 300 --hidden 128 --layers 2 --heads 2 --kv-heads 1 --intermediate 256 --seq-len 128 --steps 1");
    INFO(made.output);
    REQUIRE(made.code == 0);
    test::write_text(dir / "r.yaml", "version: 1\nname: seqmem\nseed: 3\nmodel: lm\ndata:\n"
                                     "  calibration: { dataset: kjv, seq_len: 128, samples: 3000 }\nstages:\n"
                                     "  - { id: seq, use: quantizer.gptq_sequential, params: { bits: 4, group_size: 128 } }\n");
    const auto plan = test::shrink_cli("plan " + (dir / "r.yaml").string());
    INFO(plan.output);
    CHECK(plan.output.find("the stream between blocks") != std::string::npos);
    const auto r = test::shrink_cli("run " + (dir / "r.yaml").string() + " --out " + (dir / "run").string() + " --no-cache");
    INFO(r.output);
    REQUIRE(r.code == 0);
    test::check_memory_estimates(dir / "run" / "report.json");
}

TEST_CASE("on an MLP, whose blocks (its layers) differ in width, the plan holds the widest stream and the largest block's Hessian",
          "[gptq][blocks][cli][memory]") {
    // 784 -> 16 -> 8 -> 4: the images are read afresh for the first layer, the values
    // between layers (16, 8 and 4 floats an image) are held for all 20,000 images; the
    // first layer's Hessian is the largest.
    test::temp_dir dir;
    save_model(test::tiny_model(4), dir / "m.safetensors");
    test::write_text(dir / "r.yaml", "version: 1\nname: mlpseq\nseed: 3\nmodel: m.safetensors\ndata:\n"
                                     "  calibration: { dataset: fashion-mnist, split: train, samples: 20000 }\nstages:\n"
                                     "  - { id: seq, use: quantizer.gptq_sequential, params: { bits: 4, group_size: 0 } }\n");
    const auto plan = test::shrink_cli("plan " + (dir / "r.yaml").string());
    INFO(plan.output);
    // 2 x 20,000 x 16 x 4 bytes; the first layer's 784 x 784 doubles.
    CHECK(plan.output.find("2.4 MiB the stream between blocks") != std::string::npos);
    CHECK(plan.output.find("4.7 MiB a block's Hessians") != std::string::npos);
    const auto r = test::shrink_cli("run " + (dir / "r.yaml").string() + " --out " + (dir / "run").string() + " --no-cache");
    INFO(r.output);
    REQUIRE(r.code == 0);
    test::check_memory_estimates(dir / "run" / "report.json");
}
