// `--ann auto|on|off` of the commands that write an index (index, merge), and
// bringing its vectors.ann up to date after they wrote vectors.f16.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

namespace clipfind {

void add_ann_option(CLI::App& app, std::string* mode);

// vectors.ann after vectors.f16 (index/ann_catalog.h), with a line on stderr
// saying what was done. A failure is a warning: search then scans exactly,
// and the next `clipfind index` retries.
void update_ann(const std::string& index_dir, const std::string& mode);

}  // namespace clipfind
