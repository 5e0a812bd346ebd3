// clipfind index: add videos, images and folders of them to an index.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "app/ann_option.h"
#include "app/commands.h"
#include "index/ann_catalog.h"
#include "indexer/gpu_decoders.h"
#include "indexer/pipeline.h"

namespace clipfind {

namespace {

std::atomic<bool> g_stop{false};

// First Ctrl-C: finish cleanly (the video being indexed is dropped, the ones
// before it are committed). A second one kills the process the default way.
extern "C" void on_sigint(int) {
  g_stop.store(true);
  std::signal(SIGINT, SIG_DFL);
}

struct IndexOptions {
  std::vector<std::string> inputs;
  std::string index = "clipfind-index";
  std::string model;
  double every = 1.0;
  bool keyframes = false;
  bool scenes = false;
  double scene_threshold = 0.12;
  bool reindex = false;
  int batch = 32;
  int decoders = 0;
  std::string decode = "auto";
  int gpu_decoders = 0;
  int max_side = 448;
  bool quiet_progress = false;
  std::string shard;    // "I/N", "auto" or empty (all files)
  int shard_count = 0;  // --shard auto under Kubernetes; 0: not given
  std::string ann = "auto";
  clip::EngineOptions engine;
};

// --shard and --shard-count as the pipeline takes them (indexer/shard.h).
Shard chosen_shard(const IndexOptions& o) {
  if (o.shard.empty()) {
    if (o.shard_count > 0) throw std::runtime_error("--shard-count goes with --shard auto");
    return {};
  }
  if (o.shard == "auto") {
    return shard_from_environment(std::getenv, o.shard_count > 0 ? std::optional<int>(o.shard_count) : std::nullopt);
  }
  if (o.shard_count > 0) throw std::runtime_error("--shard-count goes with --shard auto, not --shard I/N");
  return parse_shard(o.shard);
}

// "a, b and 2 more": the paths given, for a message.
std::string listed(const std::vector<std::string>& paths) {
  std::string out;
  const size_t shown = std::min<size_t>(paths.size(), 3);
  for (size_t i = 0; i < shown; ++i) out += (i ? ", " : "") + paths[i];
  if (paths.size() > shown) out += " and " + std::to_string(paths.size() - shown) + " more";
  return out;
}

int run_index_command(const IndexOptions& o) {
  IndexRequest r;
  r.inputs.assign(o.inputs.begin(), o.inputs.end());
  r.index_dir = o.index;
  r.model_dir = o.model;
  r.engine = o.engine;
  r.sampling.every = o.every;
  r.sampling.scene_threshold = o.scene_threshold;
  if (o.keyframes) r.sampling.mode = video::Sampling::keyframes;
  if (o.scenes) r.sampling.mode = video::Sampling::scenes;
  r.reindex = o.reindex;
  r.batch = o.batch;
  r.decoders = o.decoders;
  r.decode = o.decode == "gpu" ? DecodeOn::gpu : o.decode == "cpu" ? DecodeOn::cpu : DecodeOn::automatic;
  r.gpu_decoders = o.gpu_decoders;
  r.max_short_side = o.max_side;
  r.shard = chosen_shard(o);
  r.progress = !o.quiet_progress && isatty(STDERR_FILENO);
  r.stop = &g_stop;
  std::signal(SIGINT, on_sigint);
  const IndexSummary s = run_index(r);
  std::signal(SIGINT, SIG_DFL);

  if (!r.shard.whole()) {
    std::fprintf(stderr, "shard %s: %d input files are this shard's, %d the other shards'\n", r.shard.spec().c_str(),
                 s.indexed + s.skipped + int(s.failed.size()), s.other_shards);
  }
  // A shard can draw no file (more shards than files): nothing to do is no failure.
  if (s.indexed == 0 && s.skipped == 0 && s.forgotten == 0 && s.failed.empty() && s.other_shards > 0 &&
      !s.interrupted) {
    std::fprintf(stderr, "shard %s: no file in this share; no index written at %s\n", r.shard.spec().c_str(),
                 o.index.c_str());
    return 0;
  }
  // Each failure was printed once, as "error: ...", when it was found.
  if (s.indexed == 0 && s.skipped == 0 && s.forgotten == 0 && !s.interrupted) {
    const std::string no_index = s.removed_new_index ? "; no index created at " + o.index : "";
    if (s.failed.empty()) {
      std::fprintf(stderr, "error: no video or image files in %s%s\n", listed(o.inputs).c_str(), no_index.c_str());
    } else if (s.failed.size() == 1) {
      std::fprintf(stderr, "error: nothing indexed: the only file failed%s\n", no_index.c_str());
    } else {
      std::fprintf(stderr, "error: nothing indexed: all %zu files failed%s\n", s.failed.size(), no_index.c_str());
    }
    return 1;
  }
  const std::string device = s.device.empty() ? "" : " on " + s.device;
  std::fprintf(stderr, "%s: %d indexed (%ld frames), %d unchanged, %d forgotten, %zu failed in %.1f s%s\n",
               o.index.c_str(), s.indexed, s.frames, s.skipped, s.forgotten, s.failed.size(), s.seconds,
               device.c_str());
  if (s.decoded > 0 && s.seconds > 0) {
    // The rate users compare: video time indexed per second, and the frames
    // decoded for it (sampling lets the decoders skip the rest).
    std::fprintf(stderr, "  %.0f s of video at %.1fx realtime; %ld frames decoded (%.0f/s)\n", s.video_seconds,
                 s.video_seconds / s.seconds, s.decoded, double(s.decoded) / s.seconds);
  }
  if (s.frames > 0 && s.pipeline_s > 0) {
    // Where the time went. Decoder figures are thread-seconds summed over the
    // decoder threads; "busy" is the encoder's share of the pipeline's wall time.
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    std::fprintf(stderr,
                 "  pipeline %.1f s, %.1f frames/s: %d decoders: decode %.1f s, preprocess %.1f s, blocked on a full "
                 "queue %.1f s; encoder: embed %.1f s in %ld batches (busy %.0f%%), starved %.1f s; write %.1f s; "
                 "CPU %.1f s (%.0f%% of %u cores)\n",
                 s.pipeline_s, s.frames / s.pipeline_s, s.decoders, s.decode_s, s.preprocess_s, s.decoders_blocked_s,
                 s.embed_s, s.batches, 100.0 * s.embed_s / s.pipeline_s, s.encoder_starved_s, s.write_s, s.cpu_s,
                 100.0 * s.cpu_s / (s.pipeline_s * cores), cores);
  }
  if (s.gpu_decoders > 0) {
    const std::string refused =
        s.gpu_refused > 0 ? " (" + std::to_string(s.gpu_refused) + " that NVDEC could not take)" : "";
    std::fprintf(stderr, "  decoded on the GPU (%s, %d NVDEC sessions): %d files, on the CPU (%d threads): %d%s\n",
                 s.device.c_str(), s.gpu_decoders, s.files_on_gpu, s.decoders, s.files_on_cpu, refused.c_str());
  }
  if (s.lanes.size() > 1) {
    // Each GPU's share: its frames and how busy its encoder was.
    for (const LaneSummary& l : s.lanes) {
      std::fprintf(
          stderr, "  %s: %ld frames in %ld batches, embed %.1f s (busy %.0f%%), starved %.1f s%s\n", l.device.c_str(),
          l.frames, l.batches, l.embed_s, s.pipeline_s > 0 ? 100.0 * l.embed_s / s.pipeline_s : 0.0, l.starved_s,
          l.lost.empty() ? "" : ("; failed midway, its unfinished files went to the others: " + l.lost).c_str());
    }
  }
  if (s.parts > 0) {
    std::fprintf(stderr, "  long videos split at key frames into %d parts, decoded side by side", s.parts);
    if (s.gpu_decoders > 0) std::fprintf(stderr, " (%d on the GPU)", s.parts_on_gpu);
    std::fputc('\n', stderr);
  }
  if (s.vectors_written > 0) {
    std::fprintf(stderr, "  vectors.f16 rewritten %d time%s (%.1f s)\n", s.vectors_written,
                 s.vectors_written == 1 ? "" : "s", s.vectors_s);
  }
  if (!s.vectors_error.empty()) {
    std::fprintf(stderr, "warning: %s (search reads the catalog instead, slower; the next `clipfind index` retries)\n",
                 s.vectors_error.c_str());
  }
  if (!s.interrupted && s.vectors_error.empty()) update_ann(o.index, o.ann);
  if (s.interrupted) {
    std::fprintf(stderr, "interrupted: run the same command again to resume\n");
    return 130;
  }
  return s.failed.empty() ? 0 : 1;
}

}  // namespace

Command add_index_command(CLI::App& root) {
  auto o = std::make_shared<IndexOptions>();
  CLI::App* app = root.add_subcommand(
      "index",
      "Add videos, images and folders of them to an index. Unchanged files are skipped,\n"
      "changed ones re-indexed, deleted ones forgotten; Ctrl-C stops cleanly and a re-run resumes.");
  app->add_option("PATH", o->inputs, "video or image files, or folders searched recursively")->required();
  app->add_option("--index", o->index, "index folder")->capture_default_str();
  app->add_option("--model", o->model,
                  "CLIP or SigLIP model folder, transformers format (default: the one the index was built with)")
      ->check(CLI::ExistingDirectory);
  auto* every = app->add_option("--every", o->every, "seconds between sampled frames")
                    ->capture_default_str()
                    ->check(CLI::PositiveNumber);
  auto* key = app->add_flag("--keyframes", o->keyframes, "sample key frames only (fast: the rest is never decoded)");
  auto* scenes = app->add_flag("--scenes", o->scenes, "sample a frame whenever the picture changes enough");
  key->excludes(every)->excludes(scenes);
  scenes->excludes(every);
  app->add_option("--scene-threshold", o->scene_threshold, "mean grey difference (0-1) that counts as a change")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app->add_flag("--reindex", o->reindex, "drop everything and rebuild (e.g. with another model)");
  app->add_option("--batch", o->batch, "frames per encoder call")->capture_default_str()->check(CLI::Range(1, 4096));
  app->add_option("--decoders", o->decoders,
                  "files, or parts of long ones, decoded at once on CPU threads (0: from the number of cores)")
      ->capture_default_str()
      ->check(CLI::Range(0, 64));
  app->add_option("--decode", o->decode,
                  "where videos are decoded: gpu (NVDEC, frames stay on the GPU; needs the engine on CUDA), cpu, "
                  "or auto (gpu when the engine runs on CUDA and NVDEC is usable, else cpu). Files NVDEC cannot "
                  "take are decoded on the CPU")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "cpu", "gpu"}));
  app->add_option("--gpu-decoders", o->gpu_decoders,
                  "files, or parts of long ones, decoded at once with NVDEC, beside the --decoders CPU threads (0: " +
                      std::to_string(GpuDecoders::kDefaultSessions) + ")")
      ->capture_default_str()
      ->check(CLI::Range(0, 64));
  app->add_option("--max-side", o->max_side, "decode frames with the short side at most this")
      ->capture_default_str()
      ->check(CLI::Range(64, 4096));
  app->add_flag("--no-progress", o->quiet_progress, "log lines instead of a progress bar");
  app->add_option("--shard", o->shard,
                  "index only share I of N of the files (I/N, 0 <= I < N: FNV-1a of the path relative to the "
                  "input folder, modulo N), into this --index folder; `clipfind merge` combines the N folders. "
                  "auto: from a Slurm job array (SLURM_ARRAY_TASK_ID/COUNT) or a Kubernetes Indexed Job "
                  "(JOB_COMPLETION_INDEX, with --shard-count)")
      ->check([](const std::string& v) -> std::string {
        if (v == "auto") return "";
        try {
          parse_shard(v);
          return "";
        } catch (const std::exception& e) {
          return e.what();
        }
      });
  app->add_option("--shard-count", o->shard_count,
                  "N for --shard auto where the scheduler does not say it (Kubernetes: the Job's completions)")
      ->check(CLI::Range(1, 1000000));
  add_ann_option(*app, &o->ann);
  add_engine_options(*app, o->engine);
  allow_several_gpus(*app,
                     "an engine and NVDEC decoders on each, sharing the files; a GPU that fails midway hands its "
                     "unfinished files to the others");
  app->footer("Example: clipfind index ~/Videos --model models/clip-vit-base-patch32 --every 2");
  return {app, [o] { return run_index_command(*o); }};
}

}  // namespace clipfind
