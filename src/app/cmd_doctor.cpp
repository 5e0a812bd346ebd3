// clipfind doctor: what a bug report needs about this build and machine:
// the version, whether the CUDA backend is built and usable here (or why
// not), the GPU, and the CUDA backend's effective switches (CLIPFIND_CUDA_*).
#include <cstdio>
#include <string>

#include "app/commands.h"
#include "clip/clip.h"
#include "index/ann.h"

namespace clipfind {

Command add_doctor_command(CLI::App& root) {
  CLI::App* app = root.add_subcommand(
      "doctor", "Print the build, the GPU (or why none is used) and the CUDA backend's switches, for bug reports.");
  return {app, [] {
            std::printf("version: clipfind %s\n", kVersion);
            for (const auto& [topic, line] : clip::engine_diagnostics())
              std::printf("%s: %s\n", topic.c_str(), line.c_str());
            std::printf("ann: %s\n", index::ann_backend().c_str());
            return 0;
          }};
}

}  // namespace clipfind
