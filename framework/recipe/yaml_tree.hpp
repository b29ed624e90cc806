// A strict YAML reader for recipes.
//
// yaml-cpp 0.7's Node API keeps the first of two duplicate keys, expands aliases
// lazily and forgets whether a scalar was quoted. We read the event stream instead and
// build our own small tree that keeps a source mark on every node, refuses duplicate
// keys, anchors and aliases, and remembers quoting (so "017" quoted is text while 017
// plain is a malformed number).
#pragma once

#include "util/errors.hpp"

#include <optional>
#include <string>
#include <vector>

namespace shrink {

struct yaml_node {
    enum class kind_t { null, scalar, sequence, map };
    kind_t kind = kind_t::null;
    std::string text;     // scalar
    bool quoted = false;  // scalar written in quotes or as a block: never a number
    source_mark mark;
    std::vector<yaml_node> items;   // sequence items, or map values
    std::vector<yaml_node> keys;    // map keys (scalars), parallel to items

    bool is_map() const { return kind == kind_t::map; }
    bool is_sequence() const { return kind == kind_t::sequence; }
    bool is_scalar() const { return kind == kind_t::scalar; }
    bool is_null() const { return kind == kind_t::null; }
    /// Map lookup; nullptr when absent.
    const yaml_node* find(const std::string& key) const;
    yaml_node* find(const std::string& key);
    const char* kind_name() const;
};

/// Parses one YAML document. `file` names the source in marks. Throws input_error.
yaml_node parse_yaml(const std::string& text, const std::string& file);

/// Reads and parses a file of at most max_bytes. Throws input_error.
yaml_node load_yaml_file(const std::string& path, uint64_t max_bytes);

/// Applies "a.b.c=value" to the tree; in a sequence of maps, a segment matches the item
/// whose `id` equals it ("stages.int8.params.bits=4"). Missing map keys are created.
void apply_override(yaml_node& root, const std::string& assignment);

}  // namespace shrink
