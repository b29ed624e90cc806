// The samples a stage sees: a split of the recipe's data, turned into model inputs
// (preprocessing) and run through the model in batches.
#pragma once

#include "backend/runner.hpp"
#include "data/fashion_mnist.hpp"
#include "model/model.hpp"
#include "train/fit.hpp"

#include <shrink/abi.h>

#include <cstdint>
#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace shrink {

/// A text cut into windows of seq_len tokens: the samples of text data for language models.
struct token_text {
    std::shared_ptr<const std::vector<uint32_t>> ids;  // the whole text, tokenized
    std::vector<uint32_t> token_bytes;                 // by id: the bytes of text the token stands for
    int64_t seq_len = 0;
};

/// The samples of a split a stage may see: the images (or the windows of a text) and the
/// indices to use.
struct split_view {
    const image_set* images = nullptr;
    const token_text* text = nullptr;  // set instead of images for text data; indices are window indices
    std::vector<int64_t> indices;
    bool preprocess = false;  // (pixel * scale - mean[c]) / std[c]; else pixel * the model's input_scale
    float scale = 1;
    std::vector<float> mean{0}, std{1};  // 1 value, or one per channel
    bool channels_last = false;           // nhwc: a pixel's channels are adjacent
};

/// Resolves a split lazily (loading data costs time a plan check should not spend).
using split_source = std::function<const split_view&(shrink_split)>;

/// Turns a split's images into model inputs, checked once against the model.
class input_filler {
  public:
    input_filler(const split_view& view, const model& m) : view_(view), m_(m) {
        // Grayscale images feed a model with C channels: each pixel goes to every channel.
        pixels_ = view.images->features;
        channels_ = pixels_ > 0 && m.input_features % pixels_ == 0 ? m.input_features / pixels_ : 0;
        if (channels_ < 1 || (!view.preprocess && channels_ != 1))
            throw std::runtime_error("the data has " + std::to_string(pixels_) + " pixels per sample, the model takes " +
                                     std::to_string(m.input_features) + " values" +
                                     (channels_ > 1 ? " (several channels: give data.preprocess)" : ""));
        for (const auto* list : {&view.mean, &view.std})
            if (view.preprocess && list->size() != 1 && int64_t(list->size()) != channels_)
                throw std::runtime_error("data.preprocess gives " + std::to_string(list->size()) +
                                         " per-channel values; the model takes " + std::to_string(channels_) + " channel(s)");
    }

    /// Sample `idx` of the image set into `row` (the model's input_features floats).
    void fill(int64_t idx, float* row, int32_t* label) const {
        const uint8_t* px = view_.images->pixels.data() + idx * pixels_;
        if (view_.preprocess)
            for (int64_t c = 0; c < channels_; ++c) {
                const float mean = view_.mean[view_.mean.size() == 1 ? 0 : size_t(c)];
                const float std = view_.std[view_.std.size() == 1 ? 0 : size_t(c)];
                for (int64_t f = 0; f < pixels_; ++f)
                    row[view_.channels_last ? f * channels_ + c : c * pixels_ + f] = (float(px[f]) * view_.scale - mean) / std;
            }
        else
            for (int64_t f = 0; f < m_.input_features; ++f) row[f] = float(px[f]) * m_.input_scale;
        *label = view_.images->labels[size_t(idx)];
    }

  private:
    const split_view& view_;
    const model& m_;
    int64_t pixels_ = 0, channels_ = 0;
};


/// What a batched forward pass reports.
struct batch_observer {
    runner::layer_input_fn on_layer_input;  // empty: layer inputs are not captured
    /// A batch's outputs (rows x cols), its labels and the forward pass's wall time.
    std::function<void(const float* out, int64_t rows, int64_t cols, const int32_t* labels, double seconds)> on_output;
    std::function<void(uint64_t done, uint64_t total)> on_progress;
};

/// Up to max_samples (0 = all) of `view` cut into batches of 256 images, or of whole
/// windows up to 1,024 tokens for text. A text batch's rows are its tokens, as [id,
/// position] inputs; its labels are each position's next token, -1 at a window's last
/// position (it predicts nothing). `m` and `view` must outlive it.
class batch_feed {
  public:
    batch_feed(const model& m, const split_view& view, uint64_t max_samples);
    ~batch_feed();
    size_t batches() const { return size_t((total_ + per_batch_ - 1) / per_batch_); }
    uint64_t samples() const { return total_; }
    uint64_t samples_through(size_t b) const { return std::min(total_, uint64_t(b + 1) * per_batch_); }
    /// Batch b's rows: its images, or its windows' tokens.
    int64_t rows(size_t b) const {
        const uint64_t count = samples_through(b) - uint64_t(b) * per_batch_;
        return int64_t(count) * (view_.text ? view_.text->seq_len : 1);
    }
    /// Batch b's model inputs and labels; returns its rows.
    int64_t fill(size_t b, std::vector<float>& input, std::vector<int32_t>& labels) const;

  private:
    const model& m_;
    const split_view& view_;
    std::unique_ptr<input_filler> filler_;  // images
    uint64_t total_ = 0, per_batch_ = 1;
};

/// Runs up to max_samples (0 = all) of `view` through `run` in batches of 256 images, or
/// of whole windows up to 1,024 tokens for text. A text batch's rows are its tokens, as
/// [id, position] inputs; its labels are each position's next token, -1 at a window's last
/// position (it predicts nothing).
void forward_batches(const model& m, const split_view& view, uint64_t max_samples, runner& run, const batch_observer& observer);

/// The split as the trainer's sample source (the view must outlive it); for text a sample
/// is a window.
train::sample_source training_samples(const split_view& view, const model& m);

}  // namespace shrink
