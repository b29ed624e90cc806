// The King James Bible as training and evaluation text for language models, from Debian's
// bible-kjv package (its data file is compressed in the package's own format, so it is
// read through the package's `bible` program).
#pragma once

#include <cstdint>
#include <string>

namespace shrink {

/// The package's data file, which `bible` reads: what a run records as its input.
constexpr const char* kjv_data_file = "/usr/lib/bible.data";

/// Bytes of kjv_text() (Debian bookworm's bible-kjv 4.35): what plans count for it.
constexpr uint64_t kjv_text_bytes = 4137850;

/// Every verse from Genesis 1:1 to Revelation 22:21, one a line, without the verse
/// references `bible` puts in front ("Ge1:1 "): 31,102 lines, about 4.3 MB. Throws
/// input_error saying which package to install when `bible` is missing, and naming the
/// failure when it does not print the whole text.
std::string kjv_text();

/// Genesis 1 to 10 the same way (about 33 KB, a few milliseconds): what a plan encodes to
/// learn how many bytes a token covers without reading the whole text.
std::string kjv_sample();

}  // namespace shrink
