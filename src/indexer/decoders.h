// The decoding stage of `clipfind index`: decoder threads that decode and
// sample files and (CPU backend) preprocess their frames for the encoder;
// with GPU decoding, NVDEC threads beside them.
#pragma once
#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

#include "clip/image/preprocess.h"
#include "indexer/bounded_queue.h"
#include "indexer/decode_units.h"
#include "indexer/gpu_decoders.h"
#include "indexer/pipeline.h"
#include "indexer/progress.h"
#include "indexer/stages.h"
#include "indexer/unit_queue.h"

namespace clipfind {

// Where one lane's frames go (lanes.h): its queue to its encoder, and the
// NVDEC decoders of its GPU (null: none) with their thread count.
struct LaneFeed {
  BoundedQueue<Work>* queue = nullptr;
  GpuDecoders* gpu = nullptr;
  int gpu_threads = 0;
};

// Decodes files (or parts of them) on a few threads, each taking the next not
// yet taken, so the next videos' decoding overlaps the current one's
// encoding and short files do not leave the encoder waiting at every file
// boundary. With NVDEC on a lane, gpu_threads more threads decode with it
// (frames stay on its GPU) and take units from the same queue
// (unit_queue.h), so that both decoders work at once; a file NVDEC cannot
// take goes to a CPU thread, with one warning line. CPU threads send each
// unit to the lane least behind. The lanes' queues are closed when the last
// thread ends.
class DecoderPool {
 public:
  // units: what the threads take (decode_units.h), GPU and CPU alike.
  DecoderPool(const std::vector<std::filesystem::path>& files, const std::vector<DecodeUnit>& units,
              const IndexRequest& req, const clip::PreprocessConfig* preprocess, int threads,
              std::vector<LaneFeed> lanes, UnitQueue& next, StageTimes& times, Progress& progress,
              bool sited_chroma = true);
  ~DecoderPool() { join(); }
  DecoderPool(const DecoderPool&) = delete;
  DecoderPool& operator=(const DecoderPool&) = delete;

  void join();

 private:
  struct Closed {};    // the encoders closed the queues: stop at once
  struct LaneLost {};  // the unit's lane was lost: drop the unit (UnitQueue::lose_lane queued it again)

  bool stopped() const { return req_.stop && req_.stop->load(); }
  void run();
  void run_gpu(int lane);
  void thread_ends();
  int ffmpeg_threads() const;
  void decode_unit(const UnitQueue::Take& take);
  bool decode_unit_on_gpu(const UnitQueue::Take& take);  // false: NVDEC gave it up, for a CPU thread
  void push(int lane, Work&& w, double& blocked);
  // Adds one decoding attempt's times; throws Closed when the run was stopped.
  void count_attempt(Clock::time_point t0, double blocked, double preprocessing);
  void end_unit(int lane, FileEnd&& end, Clock::time_point t0, double blocked, double preprocessing,
                std::atomic<int>& decoded_here);

  const std::vector<std::filesystem::path>& files_;
  const std::vector<DecodeUnit>& units_;
  const IndexRequest& req_;
  const clip::PreprocessConfig* preprocess_;  // null: frames go as RGB
  std::vector<LaneFeed> lanes_;
  UnitQueue& next_;
  StageTimes& times_;
  Progress& progress_;
  bool sited_chroma_;                       // video::DecodeOptions::sited_chroma
  std::vector<std::atomic<bool>> refused_;  // by file: NVDEC gave up a part of it
  std::atomic<int> running_;
  std::atomic<int> busy_{0};  // CPU threads decoding a file right now
  std::vector<std::thread> threads_;
};

}  // namespace clipfind
