#include "text/perplexity.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace shrink::text {

void perplexity_meter::add_window(const float* logits, int64_t vocab, const std::vector<uint32_t>& ids, const std::vector<uint32_t>& bytes) {
    if (ids.size() < 2) throw std::invalid_argument("a window needs two tokens to predict one");
    double window = 0;
    for (size_t t = 0; t + 1 < ids.size(); ++t) {
        const float* row = logits + int64_t(t) * vocab;
        const uint32_t next = ids[t + 1];
        if (next >= uint64_t(vocab)) throw std::invalid_argument("token id " + std::to_string(next) + " is past the model's vocabulary");
        // log-sum-exp in double, shifted by the largest logit.
        const float top = *std::max_element(row, row + vocab);
        double sum = 0;
        for (int64_t v = 0; v < vocab; ++v) sum += std::exp(double(row[v]) - top);
        window += std::log(sum) + top - double(row[next]);
        bytes_ += bytes[t + 1];
    }
    total_nll_ += window;
    tokens_ += int64_t(ids.size() - 1);
    window_nll_.push_back(window / double(ids.size() - 1));
}

double perplexity_meter::mean_nll() const { return tokens_ ? total_nll_ / double(tokens_) : 0; }

double perplexity_meter::perplexity() const { return std::exp(mean_nll()); }

double perplexity_meter::standard_error() const {
    const size_t n = window_nll_.size();
    if (n < 2) return 0;
    double mean = 0;
    for (double v : window_nll_) mean += v;
    mean /= double(n);
    double var = 0;
    for (double v : window_nll_) var += (v - mean) * (v - mean);
    var /= double(n - 1);
    return perplexity() * std::sqrt(var / double(n));
}

double perplexity_meter::bits_per_byte() const { return bytes_ ? total_nll_ / std::log(2.0) / double(bytes_) : 0; }

}  // namespace shrink::text
