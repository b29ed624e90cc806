// The directory a run owns (docs/reproducibility.md): chosen, checked against --resume and
// --force, locked for as long as the process lives, and cleared of what killed runs left.
#pragma once

#include "recipe/recipe.hpp"

#include <filesystem>
#include <optional>
#include <string>

namespace shrink {

struct run_options;

class run_dir {
  public:
    /// `out` is the --out or --resume directory; empty: runs/NAME-YYYYmmdd-HHMMSS, with -2,
    /// -3, ... appended while that name is taken (two runs started in the same second).
    /// Throws input_error naming the directory when it holds another run (without --force
    /// or --resume), is not a run to resume, or is locked by another shrink process.
    /// Nothing when --resume finds a run that finished (its manifest says so).
    static std::optional<run_dir> open(const recipe& r, const run_options& options);

    const std::filesystem::path& path() const { return path_; }

    /// Before the run writes: --force clears what an earlier run left; every run removes
    /// the temporary files of processes that no longer exist (a kill -9 leaves them) and
    /// the report of the attempt it continues; makes models/.
    void prepare(const run_options& options);

    run_dir(run_dir&&) noexcept;
    run_dir& operator=(run_dir&&) = delete;
    ~run_dir();

  private:
    run_dir(std::filesystem::path path, int lock);
    std::filesystem::path path_;
    int lock_ = -1;  // flock'ed DIR/.lock, held until the process lets it go
};

}  // namespace shrink
