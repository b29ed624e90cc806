// The one rule both runtimes (the CPU engine, the CUDA runner) fuse by: layer j can run
// inside the step that produced `produced` when it reads that value, is its only reader,
// and nobody needs the value in between (it is not the model's output).
#pragma once

#include "model/model.hpp"

#include <map>
#include <string>

namespace shrink {

class fusion_rule {
  public:
    explicit fusion_rule(const model& m) : m_(m) {
        for (const layer& l : m.layers)
            for (const std::string& in : l.inputs()) ++readers_[in];
    }
    bool absorbable(size_t j, const std::string& produced) const {
        auto it = readers_.find(produced);
        return j < m_.layers.size() && m_.layers[j].input == produced && it != readers_.end() && it->second == 1 &&
               produced != m_.output;
    }

  private:
    const model& m_;
    std::map<std::string, int> readers_;
};

}  // namespace shrink
