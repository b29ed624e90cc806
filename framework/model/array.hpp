// A tensor's payload: a typed array whose storage may be shared, so that a model state
// forks without copying weights and a model file is read in place.
//
// Storage is either owned (a vector, shared by every copy of the array) or a view into
// memory someone else keeps alive (a memory-mapped model file, held by `keep`). Copying an
// array copies a pointer. Reading never copies. Writing goes through `write()`, which first
// gives this array storage of its own unless it already is the only owner of owned
// storage: copy-on-write, per tensor. Assigning a new vector replaces the storage.
#pragma once

#include <algorithm>
#include <cstddef>
#include <initializer_list>
#include <memory>
#include <vector>

namespace shrink {

template <class T>
class shared_array {
  public:
    shared_array() = default;
    shared_array(std::vector<T> values) : owned_(std::make_shared<std::vector<T>>(std::move(values))) { point_at_owned(); }
    shared_array(std::initializer_list<T> values) : shared_array(std::vector<T>(values)) {}

    /// `count` elements at `data`, which stay valid while `keep` lives (a mapped file).
    static shared_array view(std::shared_ptr<const void> keep, const T* data, size_t count) {
        shared_array a;
        a.keep_ = std::move(keep);
        a.data_ = data;
        a.size_ = count;
        return a;
    }

    const T* data() const { return data_; }
    size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    const T* begin() const { return data_; }
    const T* end() const { return data_ + size_; }
    const T& operator[](size_t i) const { return data_[i]; }
    std::vector<T> to_vector() const { return std::vector<T>(begin(), end()); }

    /// Writable elements: storage of this array's own first (copy-on-write).
    T* write() {
        if (!owned_ || owned_.use_count() > 1) {
            owned_ = std::make_shared<std::vector<T>>(begin(), end());
            keep_.reset();
            point_at_owned();
        }
        return owned_->data();
    }
    void assign(size_t count, const T& value) { *this = shared_array(std::vector<T>(count, value)); }
    template <class It>
    void assign(It first, It last) {
        *this = shared_array(std::vector<T>(first, last));
    }
    void clear() { *this = shared_array(); }

    /// Whether the elements live in memory the array does not own as a vector (a mapped file,
    /// an aligned buffer): write() copies them first. A model's tensors are views only of
    /// the mapped model file (load_model).
    bool is_view() const { return !owned_ && data_ != nullptr; }
    /// Whether both arrays read the same storage (a fork that has not written yet).
    bool shares_storage_with(const shared_array& other) const { return data_ == other.data_ && size_ != 0; }

    friend bool operator==(const shared_array& a, const shared_array& b) {
        return a.size_ == b.size_ && std::equal(a.begin(), a.end(), b.begin());
    }
    friend bool operator==(const shared_array& a, const std::vector<T>& b) {
        return a.size_ == b.size() && std::equal(a.begin(), a.end(), b.begin());
    }

  private:
    void point_at_owned() {
        data_ = owned_->data();
        size_ = owned_->size();
    }

    std::shared_ptr<std::vector<T>> owned_;  // null for a view
    std::shared_ptr<const void> keep_;       // what keeps a view's memory alive
    const T* data_ = nullptr;
    size_t size_ = 0;
};

}  // namespace shrink
