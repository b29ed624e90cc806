#include "run/data_access.hpp"

#include "data/kjv.hpp"
#include "data/text_file.hpp"
#include "text/windows.hpp"
#include "util/errors.hpp"
#include "util/random.hpp"

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <stdexcept>

namespace shrink {

const token_text& data_access::text_of(const data_source& src, const char* name) {
    if (tokenizer_path_.empty()) throw std::runtime_error(std::string("data.") + name + " is text, and the plan found no tokenizer");
    if (!tokenizer_) tokenizer_ = std::make_unique<text::tokenizer>(text::tokenizer::from_file(tokenizer_path_));
    const std::string source = src.dataset + "|" + src.path;
    auto& ids = tokens_[source];
    if (!ids) {
        auto encoded = std::make_shared<std::vector<uint32_t>>(tokenizer_->encode(src.dataset == "kjv" ? kjv_text() : read_text_file(src.path)));
        if (encoded->empty()) throw input_error(std::string("data.") + name + ": the text tokenizes to nothing");
        ids = std::move(encoded);
    }
    auto& text = texts_[source + "|" + std::to_string(src.seq_len)];
    if (!text) {
        text = std::make_unique<token_text>();
        text->ids = ids;
        text->seq_len = src.seq_len;
        text->token_bytes.resize(tokenizer_->vocab_size());
        for (uint32_t id = 0; id < tokenizer_->vocab_size(); ++id) {
            try {
                text->token_bytes[id] = uint32_t(tokenizer_->token_bytes(id).size());
            } catch (const std::exception&) {  // an id the tokenizer leaves unused
            }
        }
    }
    return *text;
}

const split_view& data_access::get(shrink_split split) {
    const bool calib = split == SHRINK_SPLIT_CALIBRATION, training = split == SHRINK_SPLIT_TRAINING;
    const data_source& src = calib ? recipe_.calibration : training ? recipe_.training : recipe_.evaluation;
    const char* name = calib ? "calibration" : training ? "training" : "evaluation";
    if (!src.present) throw std::runtime_error(std::string("the recipe has no data.") + name + " section");
    split_view& view = calib ? calibration_ : training ? training_ : evaluation_;
    if (view.images || view.text) return view;
    const uint64_t seed = derive_seed(recipe_.seed, std::string("data.") + name);
    if (src.is_text()) {
        // Windows (text/windows.hpp): evaluation takes the held-out tenth in text order,
        // calibration and training a seeded draw of the rest.
        const token_text& text = text_of(src, name);
        const int64_t count = text::window_count(int64_t(text.ids->size()), text.seq_len);
        const text::window_split parts = text::split_windows(count);
        const std::vector<int64_t>& from = training || calib ? parts.fitting : parts.evaluation;
        if (from.empty())
            throw input_error(std::string("data.") + name + ": the text is " + std::to_string(text.ids->size()) + " tokens, " +
                              std::to_string(count) + " windows of " + std::to_string(text.seq_len) + ", and leaves none for " +
                              (calib || training ? "calibration and training (nine windows in ten)" : "evaluation (every tenth window)") +
                              ": give more text or a shorter seq_len");
        const int64_t want = src.samples ? int64_t(src.samples) : int64_t(from.size());
        view.indices = calib || training ? text::sample_windows(from, want, seed)
                                         : std::vector<int64_t>(from.begin(), from.begin() + std::min<int64_t>(want, int64_t(from.size())));
        view.text = &text;
        return view;
    }
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
    if (calib || training) rng(seed).shuffle(view.indices.begin(), view.indices.end());
    if (src.samples && src.samples < view.indices.size()) view.indices.resize(src.samples);
    return view;
}

std::vector<std::string> data_access::files() const {
    std::vector<std::string> out;
    bool text = false;
    for (const auto* src : {&recipe_.calibration, &recipe_.evaluation, &recipe_.training}) {
        if (!src->present) continue;
        if (src->dataset == "kjv") {
            text = true;
            if (std::filesystem::exists(kjv_data_file)) out.push_back(kjv_data_file);
        } else if (src->dataset == "text") {
            text = true;
            out.push_back(src->path);
        } else if (auto f = find_fashion_mnist(src->path.empty() ? fashion_mnist_default_dir : src->path, src->split)) {
            out.push_back(f->images);
            out.push_back(f->labels);
        }
    }
    if (text && !tokenizer_path_.empty()) out.push_back(tokenizer_path_);
    // A file two sections read is hashed once.
    std::vector<std::string> unique;
    for (const std::string& f : out)
        if (std::find(unique.begin(), unique.end(), f) == unique.end()) unique.push_back(f);
    return unique;
}

}  // namespace shrink
