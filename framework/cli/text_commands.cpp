// shrink tokenize, train-tokenizer: byte-level BPE tokenizers (text/).
#include "cli/subcommands.hpp"

#include "data/kjv.hpp"
#include "data/text_file.hpp"
#include "text/bpe_trainer.hpp"
#include "text/tokenizer.hpp"
#include "util/errors.hpp"
#include "util/files.hpp"

#include <iostream>
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

}  // namespace shrink::cli
