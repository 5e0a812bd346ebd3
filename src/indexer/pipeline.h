// `clipfind index` without the command line: find files, skip unchanged ones,
// decode + sample several files at once on a few threads while the engine
// embeds on this one (batches mix files), write each video in one transaction
// on a writer thread, and keep DIR/vectors.f16 current.
#pragma once
#include <atomic>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "clip/clip.h"
#include "indexer/shard.h"
#include "video/sampler.h"

namespace clipfind {

// Where videos are decoded: automatic = on the GPU's NVDEC when the engine
// runs on CUDA and NVDEC answers there, else on the CPU; gpu = the same, but
// an error when it cannot; cpu = FFmpeg on CPU threads only.
enum class DecodeOn { automatic, cpu, gpu };

struct IndexRequest {
  std::vector<std::filesystem::path> inputs;  // files and folders
  std::filesystem::path index_dir = "clipfind-index";
  std::filesystem::path model_dir;  // empty: the one the index was built with
  // engine.device may name several GPUs ("cuda:all", "cuda:0,2,3"): one
  // lane (engine, NVDEC decoders, encoder) per GPU, lanes.h.
  clip::EngineOptions engine;
  // The lanes' devices as given, instead of engine.device (tests: two lanes
  // on the CPU, or on one GPU).
  std::vector<std::string> devices;
  video::SamplingOptions sampling;
  bool reindex = false;
  int batch = 32;    // frames per embed call
  int decoders = 0;  // files (or parts of long ones) decoded at once on CPU threads; 0: from the core count
  DecodeOn decode = DecodeOn::automatic;
  int gpu_decoders = 0;  // files decoded at once with NVDEC; 0: GpuDecoders::kDefaultSessions
  int max_short_side = 448;
  // This process's share of the input files (shard.h); the index records
  // it, and a run with another share (unless reindex) is refused.
  Shard shard;
  bool progress = false;  // a progress line on stderr (a terminal) instead of log lines
  const std::atomic<bool>* stop = nullptr;
  // For tests: this lane's device "fails" at its embed call number
  // simulate_lost_at_batch, as a GPU that fails mid-run would.
  int simulate_lost_lane = -1;
  long simulate_lost_at_batch = 0;
};

// One lane's share of the work (lanes.h).
struct LaneSummary {
  std::string device;  // the engine's backend name ("cuda:1 fp16")
  long frames = 0, batches = 0;
  double embed_s = 0.0;    // in embed calls: its busy time
  double starved_s = 0.0;  // waiting for frames
  std::string lost;        // why the lane was given up midway (its unfinished files went to the others)
};

struct IndexSummary {
  int indexed = 0, skipped = 0, forgotten = 0;
  int other_shards = 0;  // input files left to the other shards (--shard)
  long frames = 0;
  // Frames the decoders decoded for the indexed files (sampling skips the
  // rest) and the seconds of video they hold: the realtime factor's numerator.
  long decoded = 0;
  double video_seconds = 0.0;
  int decoders = 0;  // decoder threads used (CPU)
  // GPU decoding: NVDEC threads used (0: decoded on the CPU only), the files
  // whose decoding ended on each side, and those NVDEC gave to the CPU.
  int gpu_decoders = 0;
  int files_on_gpu = 0, files_on_cpu = 0, gpu_refused = 0;
  // Parts of long videos split at key frames for the decoders
  // (decode_units.h; 0: none split), and how many of them NVDEC decoded.
  int parts = 0, parts_on_gpu = 0;
  long batches = 0;  // embed calls (frames / batches: the mean batch)
  double seconds = 0.0;
  // Thread-seconds per stage (decoders add up: they can exceed the wall
  // time): decoding and sampling, CLIP preprocessing (on the decoder threads
  // for the CPU backend), the encoder inside embed calls, SQLite commits.
  double decode_s = 0.0, preprocess_s = 0.0, embed_s = 0.0, write_s = 0.0;
  double decoders_blocked_s = 0.0;  // decoders waiting for room in the queue (the encoder is behind)
  double encoder_starved_s = 0.0;   // the encoder waiting for frames (the decoders are behind)
  double pipeline_s = 0.0;          // from the model being loaded to the end: what the encoder could fill
  double cpu_s = 0.0;               // process CPU time over the pipeline (all threads, user + system)
  double vectors_s = 0.0;           // rewriting vectors.f16 (times it was rewritten: vectors_written)
  int vectors_written = 0;
  std::string vectors_error;  // why vectors.f16 could not be written (search then reads SQLite)
  std::vector<std::pair<std::string, std::string>> failed;  // path, why
  bool interrupted = false;
  std::string device;              // where the engine ran (its backend name; lanes joined by " + "); empty: not loaded
  std::vector<LaneSummary> lanes;  // one per device the engine ran on
  bool removed_new_index = false;  // nothing indexed into a folder that did not exist: removed again
};

// Throws (naming the index or model) only for problems that stop the whole
// run; a bad input file is recorded in `failed`, printed once on stderr as
// "error: ..." when it is found, and the others go on. A run that indexes
// nothing (or throws) leaves no index folder where there was none.
IndexSummary run_index(const IndexRequest& request);

// Files under `inputs` that index would look at: files as given, folders
// searched recursively for video and image extensions; absolute, sorted.
std::vector<std::filesystem::path> collect_inputs(const std::vector<std::filesystem::path>& inputs);

}  // namespace clipfind
