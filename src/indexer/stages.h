// What flows between the stages of `clipfind index` (pipeline.cpp shows
// how they connect) and the timing helpers they share.
#pragma once
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "clip/clip.h"
#include "video/decoder.h"

namespace clipfind {

using Clock = std::chrono::steady_clock;
inline double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Thread-seconds that several threads add to.
class Seconds {
 public:
  void add(double s) { ns_.fetch_add(int64_t(s * 1e9), std::memory_order_relaxed); }
  double get() const { return double(ns_.load(std::memory_order_relaxed)) * 1e-9; }

 private:
  std::atomic<int64_t> ns_{0};
};

// Named threads show up in top and perf; threads FFmpeg starts inherit the name.
inline void name_this_thread(const char* name) { pthread_setname_np(pthread_self(), name); }

// An error message that names the file (decoder errors already do).
inline std::string naming(const std::filesystem::path& file, const std::string& what) {
  return what.rfind(file.string(), 0) == 0 ? what : file.string() + ": " + what;
}

// A frame's RGB in the engine's GPU memory, lent by the GPU decoders' pool
// (device_frame_pool.h): the buffer goes back when the last copy is dropped.
using DeviceFrame = std::shared_ptr<const clip::DeviceImageView>;

// One sampled frame of todo[file]: preprocessed pixels when the decoder
// threads preprocess (CPU backend), else the RGB picture for the engine (the
// CUDA backend preprocesses on the GPU): in host memory from the CPU
// decoder, in GPU memory (`device`) from NVDEC.
struct SampledFrame {
  size_t file = 0;
  double time = 0.0;
  clip::Image image;
  std::vector<float> pixels;  // [3, crop_h, crop_w]
  DeviceFrame device;
  // Which decoding of the file it comes from: 0, or 1 for the CPU's after
  // NVDEC gave the file up midway. The encoder drops what an earlier
  // attempt delivered when a later one starts, so no file is half GPU-,
  // half CPU-decoded.
  int attempt = 0;
  int part = 0;  // of a file split for decoding (DecodeUnit)
};

// After a file's last frame: how its decoding ended.
struct FileEnd {
  size_t file = 0;
  bool ok = false;
  video::VideoInfo info;
  std::string error;
  int attempt = 0;  // as SampledFrame's
  // The file's part that ended, of how many: the file is finished once all
  // have (their frames are joined in order then).
  int part = 0, parts = 1;
  size_t unit = 0;  // the decode unit (decode_units.h) that ended
};

using Work = std::variant<SampledFrame, FileEnd>;

// One part of a file (the whole file unless it was split) whose frames are
// all embedded, or that failed: for the joiner (part_joiner.h).
struct FinishedPart {
  FileEnd end;
  std::string error;  // set when it failed (decoding or embedding)
  std::vector<double> times;
  std::vector<float> embeddings;  // times.size() rows, L2-normalised
};

// A file whose frames are all embedded, or that failed: for the writer.
struct FinishedFile {
  FileEnd end;
  std::vector<double> times;
  std::vector<float> embeddings;  // times.size() rows, L2-normalised
};

// The decoders' and the writer's; each encoder counts its own (Encoder).
struct StageTimes {
  Seconds decode, preprocess, blocked, write;
  // Files whose decoding ended (ok or not) on NVDEC / on a CPU decoder, and
  // those NVDEC gave to the CPU decoders (counted in cpu_files too).
  std::atomic<int> gpu_files{0}, cpu_files{0}, gpu_refused{0};
  std::atomic<int> gpu_parts{0};  // parts of split files (decode_units.h) decoded on NVDEC
};

}  // namespace clipfind
