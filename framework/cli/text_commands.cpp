// shrink tokenize, train-tokenizer: byte-level BPE tokenizers (text/).
#include "cli/subcommands.hpp"

#include "cpu/engine.hpp"
#include "cpu/threading.hpp"
#include "data/kjv.hpp"
#include "data/text_file.hpp"
#include "hf/config.hpp"
#include "hf/folder.hpp"
#include "model/safetensors.hpp"
#include "text/bpe_trainer.hpp"
#include "text/sampling.hpp"
#include "text/windows.hpp"
#include "text/tokenizer.hpp"
#include "util/errors.hpp"
#include "util/files.hpp"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <shrink/perplexity.hpp>
#include <sstream>

namespace shrink::cli {

namespace {

void add_text_source(po::options_description& opts) {
    opts.add_options()("text", po::value<std::string>(), "the text itself")("file", po::value<std::string>(), "a UTF-8 text file (.jsonl: the \"text\" of each line)")(
        "kjv", po::bool_switch(), "the King James Bible (Debian's bible-kjv package), one verse a line");
}

/// The text named by --text, --file or --kjv (exactly one).
std::string text_source(const po::variables_map& vm) {
    const int given = int(vm.count("text")) + int(vm.count("file")) + int(vm["kjv"].as<bool>());
    if (given != 1) throw usage_error("give the text with exactly one of --text, --file and --kjv");
    if (vm.count("text")) return vm["text"].as<std::string>();
    if (vm.count("file")) return read_text_file(vm["file"].as<std::string>());
    return kjv_text();
}

}  // namespace

int cmd_tokenize(const std::vector<std::string>& args) {
    po::options_description opts("options");
    opts.add_options()("tokenizer", po::value<std::string>(), "tokenizer.json, or a model folder holding one");
    add_text_source(opts);
    opts.add_options()("decode", po::bool_switch(), "the text is token ids (separated by white space): print their text")(
        "skip-special", po::bool_switch(), "with --decode, leave special tokens out")("count", po::bool_switch(),
                                                                                    "print the number of tokens and bytes only");
    parsed p = parse("tokenize", "TOKENIZER (--text TEXT | --file FILE | --kjv)", opts, args, "tokenizer");
    if (p.help) return 0;
    const text::tokenizer tok = text::tokenizer::from_file(require(p.vm, "tokenizer", "TOKENIZER"));
    const std::string source = text_source(p.vm);
    if (p.vm["decode"].as<bool>()) {
        std::istringstream in(source);
        std::vector<uint32_t> ids;
        std::string word;
        while (in >> word) {
            char* end = nullptr;
            errno = 0;
            const unsigned long long v = std::strtoull(word.c_str(), &end, 10);
            if (*end || errno || word[0] == '-' || v > text::max_token_id) throw input_error("'" + word + "' is not a token id");
            ids.push_back(uint32_t(v));
        }
        std::cout << tok.decode(ids, p.vm["skip-special"].as<bool>());
        return 0;
    }
    const std::vector<uint32_t> ids = tok.encode(source);
    if (p.vm["count"].as<bool>()) {
        std::cout << ids.size() << " tokens, " << source.size() << " bytes (" << double(source.size()) / double(std::max<size_t>(ids.size(), 1))
                  << " bytes a token)\n";
        return 0;
    }
    std::string line;
    line.reserve(ids.size() * 6);
    for (size_t i = 0; i < ids.size(); ++i) line.append(i ? " " : "").append(std::to_string(ids[i]));
    std::cout << line << "\n";
    return 0;
}

int cmd_train_tokenizer(const std::vector<std::string>& args) {
    po::options_description opts("options");
    opts.add_options()("out", po::value<std::string>(), "the tokenizer.json to write");
    add_text_source(opts);
    opts.add_options()("vocab-size", po::value<uint32_t>()->default_value(4096), "tokens in all: 256 bytes, merges, <|endoftext|>")(
        "min-frequency", po::value<uint32_t>()->default_value(2), "merge only pairs seen at least this often");
    parsed p = parse("train-tokenizer", "--out FILE (--text TEXT | --file FILE | --kjv)", opts, args);
    if (p.help) return 0;
    const std::string out = require(p.vm, "out", "--out");
    text::bpe_training options;
    options.vocab_size = p.vm["vocab-size"].as<uint32_t>();
    options.min_frequency = p.vm["min-frequency"].as<uint32_t>();
    const text::tokenizer_spec spec = text::train_bpe(text_source(p.vm), options);
    write_file_atomic(out, text::write_tokenizer_json(spec));
    std::cout << out << ": " << spec.vocab.size() << " tokens, " << spec.merges.size() << " merges\n";
    return 0;
}

namespace {

/// A decoder with its tokenizer, as perplexity and generate take them.
struct decoder_run {
    model m;
    std::unique_ptr<text::tokenizer> tok;
    int64_t vocab = 0;
    int64_t context = 0;  // max_position_embeddings; 0 when unknown
    std::vector<uint32_t> stop_ids;
};

decoder_run load_decoder(const po::variables_map& vm, const std::string& command) {
    namespace fs = std::filesystem;
    decoder_run d;
    const fs::path path = require(vm, "model", "MODEL");
    std::error_code ec;
    const bool folder = fs::is_directory(path, ec);
    d.m = folder ? hf::import_folder(path) : load_model(path);
    const layer* embed = d.m.find_layer("embed_tokens");
    if (d.m.input_features != 2 || !embed || embed->op != "embedding")
        throw input_error(path.string() + ": not a language model (its input is not tokens): " + command + " needs a decoder");
    d.vocab = d.m.at(embed->weight).shape[0];
    const fs::path tokenizer_path = vm.count("tokenizer") ? fs::path(vm["tokenizer"].as<std::string>()) : hf::tokenizer_location(path, d.m.info);
    if (tokenizer_path.empty()) throw usage_error("give the tokenizer with --tokenizer (tokenizer.json or its folder)");
    d.tok = std::make_unique<text::tokenizer>(text::tokenizer::from_file(tokenizer_path));
    if (int64_t(d.tok->vocab_size()) > d.vocab)
        throw input_error("the tokenizer has " + std::to_string(d.tok->vocab_size()) + " token ids, the model's embedding " + std::to_string(d.vocab));
    if (auto it = d.m.info.find("hf.config"); it != d.m.info.end()) {
        const hf::decoder_config c = hf::parse_decoder_config(it->second, "hf.config");
        d.context = c.max_positions;
        for (int64_t id : c.eos_token_ids) d.stop_ids.push_back(uint32_t(id));
    }
    if (d.stop_ids.empty())
        for (const auto& a : d.tok->spec().added)
            if (a.special) d.stop_ids.push_back(a.id);
    return d;
}

}  // namespace

int cmd_perplexity(const std::vector<std::string>& args) {
    namespace fs = std::filesystem;
    po::options_description opts("options");
    opts.add_options()("model", po::value<std::string>(), "a decoder: a Hugging Face folder, or a .safetensors made from one")(
        "tokenizer", po::value<std::string>(), "tokenizer.json or its folder (default: the model's folder)");
    add_text_source(opts);
    opts.add_options()("seq-len", po::value<int64_t>()->default_value(128), "tokens a window")(
        "split", po::value<std::string>()->default_value("evaluation"),
        "evaluation: the held-out windows (every tenth); all: every window")("windows", po::value<int64_t>()->default_value(0),
                                                                             "measure the first N windows of the split (0 = all)")(
        "threads", po::value<int>()->default_value(0), "CPU threads (0 = all cores)");
    parsed p = parse("perplexity", "MODEL (--kjv | --file FILE | --text TEXT) [--seq-len N] [--tokenizer DIR]", opts, args, "model");
    if (p.help) return 0;
    cpu::set_thread_count(p.vm["threads"].as<int>());
    const decoder_run d = load_decoder(p.vm, "perplexity");
    const model& m = d.m;
    const text::tokenizer& tok = *d.tok;
    const int64_t vocab = d.vocab, context = d.context;
    const int64_t seq_len = p.vm["seq-len"].as<int64_t>();
    if (seq_len < 2) throw usage_error("--seq-len must be at least 2 (a window predicts its tokens after the first)");
    if (context && seq_len > context)
        throw input_error("--seq-len " + std::to_string(seq_len) + " is above the model's context of " + std::to_string(context) +
                          " tokens (max_position_embeddings in config.json)");

    const std::string source = text_source(p.vm);
    const std::vector<uint32_t> ids = tok.encode(source);
    if (ids.empty()) throw input_error("the text tokenizes to nothing");
    const int64_t count = text::window_count(int64_t(ids.size()), seq_len);
    if (count == 0)
        throw input_error("the text is " + std::to_string(ids.size()) + " tokens, fewer than one window of " + std::to_string(seq_len));
    const std::string split = p.vm["split"].as<std::string>();
    if (split != "evaluation" && split != "all") throw usage_error("--split must be evaluation or all");
    std::vector<int64_t> chosen;
    if (split == "all") {
        for (int64_t w = 0; w < count; ++w) chosen.push_back(w);
    } else {
        chosen = text::split_windows(count).evaluation;
        if (chosen.empty())
            throw input_error("the text makes " + std::to_string(count) + " windows of " + std::to_string(seq_len) +
                              " tokens; the held-out split takes every tenth: give more text, a shorter --seq-len, or --split all");
    }
    if (const int64_t n = p.vm["windows"].as<int64_t>(); n > 0 && n < int64_t(chosen.size())) chosen.resize(size_t(n));

    std::vector<uint32_t> bytes_of(tok.vocab_size());
    for (uint32_t id = 0; id < tok.vocab_size(); ++id) {
        try {
            bytes_of[id] = uint32_t(tok.token_bytes(id).size());
        } catch (const std::out_of_range&) {  // an id the tokenizer leaves unused
        }
    }
    const engine e(m);
    perplexity_meter meter;
    constexpr size_t batch = 8;  // windows per forward pass
    for (size_t first = 0; first < chosen.size(); first += batch) {
        const size_t n = std::min(batch, chosen.size() - first);
        std::vector<float> tokens;
        tokens.reserve(n * size_t(seq_len) * 2);
        for (size_t w = 0; w < n; ++w)
            for (int64_t t = 0; t < seq_len; ++t) tokens.insert(tokens.end(), {float(ids[size_t(chosen[first + w] * seq_len + t)]), float(t)});
        const std::vector<float> logits = e.run(tokens.data(), int64_t(n) * seq_len);
        for (size_t w = 0; w < n; ++w) {
            const auto begin = ids.begin() + chosen[first + w] * seq_len;
            std::vector<int32_t> next;
            std::vector<uint32_t> bytes;
            for (auto id = begin + 1; id != begin + seq_len; ++id) {
                next.push_back(int32_t(*id));
                bytes.push_back(*id < bytes_of.size() ? bytes_of[*id] : 0);
            }
            meter.add_window(logits.data() + w * size_t(seq_len * vocab), vocab, next.data(), bytes.data(), seq_len - 1);
        }
    }
    std::printf("perplexity %.4f +- %.4f over %lld windows of %lld tokens (%s split, %lld tokens predicted); bits per byte %.4f\n",
                meter.perplexity(), meter.standard_error(), (long long)meter.windows(), (long long)seq_len, split.c_str(),
                (long long)meter.predicted_tokens(), meter.bits_per_byte());
    return 0;
}

int cmd_generate(const std::vector<std::string>& args) {
    po::options_description opts("options");
    opts.add_options()("model", po::value<std::string>(), "a decoder: a Hugging Face folder, or a .safetensors made from one")(
        "prompt", po::value<std::string>(), "the text to continue")("max-tokens", po::value<int64_t>()->default_value(64),
                                                                   "tokens to generate at most")(
        "temperature", po::value<double>()->default_value(0.0), "0: the most likely token each time; above: sampled")(
        "seed", po::value<uint64_t>()->default_value(0), "the sampling seed")(
        "tokenizer", po::value<std::string>(), "tokenizer.json or its folder (default: the model's folder)")(
        "threads", po::value<int>()->default_value(0), "CPU threads (0 = all cores)");
    parsed p = parse("generate", "MODEL --prompt TEXT [--max-tokens N] [--temperature T] [--seed S]", opts, args, "model");
    if (p.help) return 0;
    cpu::set_thread_count(p.vm["threads"].as<int>());
    const std::string prompt = require(p.vm, "prompt", "--prompt");
    const double temperature = p.vm["temperature"].as<double>();
    const int64_t max_tokens = p.vm["max-tokens"].as<int64_t>();
    if (!(temperature >= 0) || temperature > 100) throw usage_error("--temperature must be in [0, 100]");
    if (max_tokens < 0) throw usage_error("--max-tokens must not be negative");
    const decoder_run d = load_decoder(p.vm, "generate");
    std::vector<uint32_t> ids = d.tok->encode(prompt);
    if (ids.empty()) throw input_error("the prompt tokenizes to nothing");
    if (d.context && int64_t(ids.size()) >= d.context)
        throw input_error("the prompt is " + std::to_string(ids.size()) + " tokens, the model's context " + std::to_string(d.context));

    // The prompt in one pass (prefill), then one token a pass from the KV cache.
    const engine e(d.m);
    cpu::kv_cache cache;
    rng g(p.vm["seed"].as<uint64_t>());
    using clock = std::chrono::steady_clock;
    const auto started = clock::now();
    std::vector<float> tokens;
    for (size_t t = 0; t < ids.size(); ++t) tokens.insert(tokens.end(), {float(ids[t]), float(t)});
    std::vector<float> logits = e.run_cached(tokens.data(), int64_t(ids.size()), cache);
    const double prefill = std::chrono::duration<double>(clock::now() - started).count();
    const float* last = logits.data() + (ids.size() - 1) * size_t(d.vocab);
    std::vector<uint32_t> generated;
    const auto decoding = clock::now();
    while (int64_t(generated.size()) < max_tokens && (!d.context || cache.positions < d.context)) {
        const uint32_t next = text::sample_token(last, d.vocab, temperature, g);
        if (std::find(d.stop_ids.begin(), d.stop_ids.end(), next) != d.stop_ids.end()) break;
        generated.push_back(next);
        const float one[2] = {float(next), float(cache.positions)};
        logits = e.run_cached(one, 1, cache);
        last = logits.data();
    }
    const double decode = std::chrono::duration<double>(clock::now() - decoding).count();
    std::cout << prompt << d.tok->decode(generated) << "\n";
    std::fprintf(stderr, "%zu prompt tokens in %.3f s (%.1f tokens/s), %zu generated in %.3f s (%.1f tokens/s)\n", ids.size(), prefill,
                 double(ids.size()) / prefill, generated.size(), decode, generated.empty() ? 0.0 : double(generated.size()) / decode);
    return 0;
}

}  // namespace shrink::cli
