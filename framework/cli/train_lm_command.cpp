// shrink train --arch llama: the reference language model (train/reference_lm.hpp),
// written as a Hugging Face folder with its tokenizer.
#include "cli/subcommands.hpp"

#include "cpu/threading.hpp"
#include "hf/config.hpp"
#include "hf/folder.hpp"
#include "text/tokenizer.hpp"
#include "text/tokenizer_spec.hpp"
#include "train/reference_lm.hpp"
#include "util/console.hpp"
#include "util/errors.hpp"
#include "util/text.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>

namespace shrink::cli {

namespace fs = std::filesystem;

int cmd_train_lm(const std::vector<std::string>& args) {
    po::options_description opts("options");
    lm_train_options t;
    decoder_shape& s = t.shape;
    std::string arch;
    opts.add_options()("arch", po::value<std::string>(&arch), "llama")(
        "out", po::value<std::string>()->default_value("models/kjv-llama"), "the Hugging Face folder to write (must not exist)")(
        "vocab", po::value<int64_t>(&s.vocab)->default_value(s.vocab), "tokenizer and embedding size")(
        "hidden", po::value<int64_t>(&s.hidden)->default_value(s.hidden), "hidden size")(
        "layers", po::value<int64_t>(&s.layers)->default_value(s.layers), "decoder blocks")(
        "heads", po::value<int64_t>(&s.heads)->default_value(s.heads), "attention heads")(
        "kv-heads", po::value<int64_t>(&s.kv_heads)->default_value(s.kv_heads), "key/value heads (grouped-query attention when fewer)")(
        "intermediate", po::value<int64_t>(&s.intermediate)->default_value(s.intermediate), "MLP width")(
        "seq-len", po::value<int64_t>(&t.seq_len)->default_value(t.seq_len), "tokens a training window (also the model's context)")(
        "batch", po::value<int64_t>(&t.batch)->default_value(t.batch), "windows a step")(
        "steps", po::value<int64_t>(&t.steps)->default_value(t.steps), "optimizer steps (0 = one pass over the training windows)")(
        "lr", po::value<double>(&t.learning_rate)->default_value(t.learning_rate), "AdamW learning rate (cosine schedule)")(
        "weight-decay", po::value<double>(&t.weight_decay)->default_value(t.weight_decay), "decoupled weight decay (AdamW)")(
        "seed", po::value<uint64_t>(&t.seed)->default_value(t.seed), "random seed")(
        "threads", po::value<int>()->default_value(0), "CPU threads (0 = all cores); the same count gives the same bytes")(
        "quiet,q", "errors only")("verbose,v", "debug output");
    parsed p = parse("train", "--arch llama [--out DIR] [--steps N] [--hidden 256] [--layers 4] [--seed S] [--threads N]", opts, args);
    if (p.help) return 0;
    set_verbosity(p.vm);
    auto in_range = [](const char* name, int64_t v, int64_t lo, int64_t hi) {
        if (v < lo || v > hi)
            throw usage_error(std::string("--") + name + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    };
    in_range("vocab", s.vocab, 300, 1 << 20);
    in_range("hidden", s.hidden, 8, 65536);
    in_range("layers", s.layers, 1, 256);
    in_range("heads", s.heads, 1, 1024);
    in_range("kv-heads", s.kv_heads, 1, s.heads);
    in_range("intermediate", s.intermediate, 1, 1 << 20);
    in_range("seq-len", t.seq_len, 2, 1 << 16);
    in_range("batch", t.batch, 1, 1 << 16);
    in_range("steps", t.steps, 0, int64_t(1) << 40);
    if (s.hidden % s.heads != 0 || (s.hidden / s.heads) % 2 != 0)
        throw usage_error("--hidden must be --heads times an even head size (rotary embeddings rotate pairs)");
    if (s.heads % s.kv_heads != 0) throw usage_error("--heads must be a multiple of --kv-heads");
    if (!(t.learning_rate > 0 && t.learning_rate < 1)) throw usage_error("--lr must be in (0, 1)");
    if (!(t.weight_decay >= 0 && t.weight_decay < 10)) throw usage_error("--weight-decay must be in [0, 10)");
    s.head_dim = s.hidden / s.heads;
    const fs::path out = p.vm["out"].as<std::string>();
    std::error_code ec;
    if (fs::exists(out, ec)) throw usage_error(out.string() + " exists: train writes a new folder");
    cpu::set_thread_count(p.vm["threads"].as<int>());

    console& c = console::get();
    c.info("training a llama decoder (vocab " + std::to_string(s.vocab) + ", hidden " + std::to_string(s.hidden) + ", " +
           std::to_string(s.layers) + " layers, " + std::to_string(s.heads) + " heads over " + std::to_string(s.kv_heads) +
           " key/value heads, MLP " + std::to_string(s.intermediate) + ") on the KJV text, windows of " + std::to_string(t.seq_len) +
           ", seed " + std::to_string(t.seed) + ", " + std::to_string(cpu::thread_count()) + " threads");
    const auto started = std::chrono::steady_clock::now();
    const lm_train_result r = train_reference_lm(t, [&](int64_t step, int64_t steps, double loss) {
        c.progress("training", uint64_t(step), uint64_t(steps));
        if (step % 50 == 0) c.debug("step " + std::to_string(step) + " loss " + format_double(loss));
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

    // The folder transformers loads: config.json, the weights, the tokenizer.
    const text::tokenizer tok(r.tokenizer);
    const std::optional<uint32_t> end = tok.id_of("<|endoftext|>");
    hf::decoder_config config;
    config.architecture = "LlamaForCausalLM", config.model_type = "llama";
    config.vocab_size = s.vocab, config.hidden_size = s.hidden, config.intermediate_size = s.intermediate;
    config.layers = s.layers, config.heads = s.heads, config.kv_heads = s.kv_heads, config.head_dim = s.head_dim;
    config.max_positions = t.seq_len, config.rms_norm_eps = s.rms_eps, config.rope_theta = s.rope_theta;
    if (end) config.bos_token_id = *end, config.eos_token_ids = {*end};
    model m = r.net;
    m.info["hf.config"] = hf::write_decoder_config(config);
    m.info["hf.architecture"] = config.architecture;
    const nlohmann::json tokenizer_config{{"tokenizer_class", "PreTrainedTokenizerFast"},
                                          {"model_max_length", t.seq_len},
                                          {"eos_token", end ? nlohmann::json("<|endoftext|>") : nlohmann::json(nullptr)},
                                          {"bos_token", nullptr},
                                          {"clean_up_tokenization_spaces", false}};
    if (out.has_parent_path()) fs::create_directories(out.parent_path());
    hf::export_folder(m, out, {},
                      {{"tokenizer.json", text::write_tokenizer_json(r.tokenizer)}, {"tokenizer_config.json", tokenizer_config.dump(2) + "\n"}});
    char line[256];
    std::snprintf(line, sizeof line, "%lld steps (%lld tokens) in %.0f s; final training loss %.4f, held-out perplexity %.2f; wrote %s",
                  (long long)r.steps, (long long)r.tokens, seconds, r.final_loss, r.heldout_perplexity, out.c_str());
    c.info(line);
    return 0;
}

}  // namespace shrink::cli
