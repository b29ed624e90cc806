// Pass: text data fits the model before anything runs. A language model takes text and an
// image model images; windows fit the model's context; the tokenizer exists, reads, and
// has no id past the model's embedding.
#include "plan/passes.hpp"

#include "data/kjv.hpp"
#include "hf/config.hpp"
#include "hf/folder.hpp"
#include "text/tokenizer.hpp"

#include <algorithm>
#include <fstream>

namespace shrink {

namespace {

/// Bytes of text per token on a sample of the recipe's first text source (Genesis 1-10,
/// or a file's first 64 KiB up to its last line break), for the memory estimate; 1, the
/// most tokens a byte-level BPE can make, when there is no sample to read. The run
/// reports anything wrong with the text itself.
double bytes_per_token(const text::tokenizer& tok, const recipe& r) {
    for (const data_source* src : {&r.calibration, &r.evaluation, &r.training}) {
        if (!src->present || !src->is_text()) continue;
        try {
            std::string sample;
            if (src->dataset == "kjv") {
                sample = kjv_sample();
            } else {
                std::ifstream f(src->path, std::ios::binary);
                sample.resize(64 * 1024);
                f.read(sample.data(), std::streamsize(sample.size()));
                sample.resize(size_t(f.gcount()));
                if (f.gcount() == 64 * 1024) sample.resize(sample.rfind('\n') == std::string::npos ? 0 : sample.rfind('\n') + 1);
            }
            const size_t tokens = tok.encode(sample).size();
            return tokens ? std::max(1.0, double(sample.size()) / double(tokens)) : 1.0;
        } catch (const std::exception&) {
            return 1;
        }
    }
    return 1;
}

}  // namespace

void check_text_data(plan& p, plan_inputs& in) {
    const recipe& r = in.r;
    diagnostics& diag = in.diag;
    const bool language_model = p.model.vocab > 0;
    int64_t context = 0;  // max_position_embeddings, when the model says
    if (auto it = p.model.info.find("hf.config"); it != p.model.info.end()) {
        try {
            context = hf::parse_decoder_config(it->second, "hf.config").max_positions;
        } catch (const std::exception&) {  // read_model has checked the model; a context is a bonus
        }
    }
    bool text = false;
    for (const auto& [src, what] : {std::pair{&r.calibration, "data.calibration"}, std::pair{&r.evaluation, "data.evaluation"},
                                    std::pair{&r.training, "data.training"}}) {
        if (!src->present || src->dataset.empty()) continue;
        if (src->is_text() && !language_model) {
            diag.error(src->mark, std::string(what) + " is text (" + src->dataset + "), but the model is not a language model: it takes " +
                                      std::to_string(p.model.input_features) + " values a sample, not tokens");
        } else if (!src->is_text() && language_model) {
            diag.error(src->mark, std::string(what) + " is " + src->dataset +
                                      " images, but the model is a language model: give text (dataset: kjv, or text with a path)");
        } else if (src->is_text() && context && src->seq_len > context) {
            diag.error(src->seq_len_mark.line ? src->seq_len_mark : src->mark,
                       std::string(what) + ".seq_len " + std::to_string(src->seq_len) + " is above the model's context of " +
                           std::to_string(context) + " tokens (max_position_embeddings in config.json)");
        }
        text = text || src->is_text();
    }
    if (!text || !language_model) return;
    const std::filesystem::path where = r.tokenizer.empty() ? hf::tokenizer_location(r.model, p.model.info) : std::filesystem::path(r.tokenizer);
    const source_mark& mark = r.tokenizer.empty() ? r.model_mark : r.tokenizer_mark;
    if (where.empty()) {
        diag.error(r.model_mark, "text data needs a tokenizer, and the model file does not say which folder it came from: "
                                 "give data.tokenizer (a tokenizer.json, or the folder holding it)");
        return;
    }
    try {
        const text::tokenizer tok = text::tokenizer::from_file(where);
        if (int64_t(tok.vocab_size()) > p.model.vocab)
            diag.error(mark, "the tokenizer has " + std::to_string(tok.vocab_size()) + " token ids, the model's embedding " +
                                 std::to_string(p.model.vocab));
        p.tokenizer = std::filesystem::is_directory(where) ? (where / "tokenizer.json").string() : where.string();
        p.text_bytes_per_token = bytes_per_token(tok, r);
    } catch (const std::exception& e) {
        diag.error(mark, std::string("cannot read the tokenizer: ") + e.what());
    }
}

}  // namespace shrink
