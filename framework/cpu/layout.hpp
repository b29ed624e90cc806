// How one activation lies in memory for one batch: plain (row-major; NCHW for images) or a
// blocked layout that a oneDNN primitive chose (such as nChw16c). The engine carries a
// value's layout from the conv that makes it through pooling and activations, which take
// any layout, and converts it to plain only where a step reads plain data.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace shrink::cpu {

struct layout_desc;  // a oneDNN memory descriptor (cpu/onednn_context.hpp)

class layout {
  public:
    layout() = default;  // plain
    explicit layout(std::shared_ptr<const layout_desc> d) : desc_(std::move(d)) {}
    bool plain() const { return !desc_; }
    /// Floats a buffer in this layout takes, padding included (blocked layouts only).
    int64_t floats() const;
    const layout_desc* desc() const { return desc_.get(); }
    /// Both plain, or the same blocked layout of the same dims.
    bool operator==(const layout& other) const;
    /// Whether data in this layout can be read as `rows` samples of `shape`: plain data
    /// always can; blocked data only with those very dims (a reshape keeps the floats
    /// but not a blocked layout's meaning).
    bool fits(int64_t rows, const std::vector<int64_t>& shape) const;

  private:
    std::shared_ptr<const layout_desc> desc_;
};

/// Where a batch of `rows` samples in layout `l` is each sample's `per_sample` floats,
/// shuffled the same way in every sample: entry j is the plain index of the float at
/// position j of a sample. Empty when the layout is not such a shuffle (it pads, or
/// interleaves samples). A linear layer can then read the blocked data directly, its
/// weight columns put in this order.
std::vector<int64_t> sample_order(const layout& l, int64_t rows, int64_t per_sample);

}  // namespace shrink::cpu
