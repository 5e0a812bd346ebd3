#include "indexer/decoders.h"

#include <algorithm>
#include <exception>
#include <utility>

#include "indexer/inputs.h"
#include "video/decoder.h"

namespace clipfind {

DecoderPool::DecoderPool(const std::vector<std::filesystem::path>& files, const std::vector<DecodeUnit>& units,
                         const IndexRequest& req, const clip::PreprocessConfig* preprocess, int threads,
                         std::vector<LaneFeed> lanes, UnitQueue& next, StageTimes& times, Progress& progress,
                         bool sited_chroma)
    : files_(files),
      units_(units),
      req_(req),
      preprocess_(preprocess),
      lanes_(std::move(lanes)),
      next_(next),
      times_(times),
      progress_(progress),
      sited_chroma_(sited_chroma),
      refused_(files.size()),
      running_(threads) {
  // NVDEC threads first: with fewer files than threads, the first go there.
  for (const LaneFeed& l : lanes_) running_ += l.gpu ? l.gpu_threads : 0;
  for (int lane = 0; lane < int(lanes_.size()); ++lane) {
    const LaneFeed& l = lanes_[size_t(lane)];
    for (int i = 0; l.gpu && i < l.gpu_threads; ++i) threads_.emplace_back([this, lane] { run_gpu(lane); });
  }
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

void DecoderPool::join() {
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void DecoderPool::thread_ends() {
  if (--running_ > 0) return;
  for (const LaneFeed& l : lanes_) l.queue->close();
}

void DecoderPool::run() {
  name_this_thread("cf-decode");
  const auto backlog = [this](int lane) { return lanes_[size_t(lane)].queue->size(); };
  try {
    while (!stopped()) {
      const auto take = next_.next_for_cpu(backlog);
      if (!take) break;
      try {
        decode_unit(*take);
      } catch (const LaneLost&) {
      }
    }
  } catch (const Closed&) {
  }
  thread_ends();
}

void DecoderPool::run_gpu(int lane) {
  name_this_thread("cf-nvdec");
  bool asked = false;
  try {
    while (!stopped()) {
      const auto take = next_.next_for_gpu(lane, !std::exchange(asked, true));
      if (!take) break;
      // Pictures are the CPU decoders' (no video to decode), and so are the
      // other parts of a file NVDEC gave up.
      const size_t file = units_[take->unit].file;
      if (is_image(files_[file]) || refused_[file].load() || !decode_unit_on_gpu(*take)) next_.hand_back(*take);
    }
  } catch (const Closed&) {
  } catch (const LaneLost&) {  // its GPU failed: this thread is done
  }
  next_.gpu_thread_done(asked);
  thread_ends();
}

// FFmpeg's own threads for one file: the cores shared among the files being
// decoded when it is opened (FFmpeg's default, cores + 1 per file, measured
// slower here: its extra frame threads cost more than they bring while the
// encoder wants the same cores).
int DecoderPool::ffmpeg_threads() const {
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, cores / std::max(1, busy_.load()));
}

void DecoderPool::push(int lane, Work&& w, double& blocked) {
  const auto tb = Clock::now();
  const bool open = lanes_[size_t(lane)].queue->push(std::move(w));
  blocked += since(tb);
  if (open) return;
  if (!next_.lane_alive(lane)) throw LaneLost{};
  throw Closed{};
}

void DecoderPool::count_attempt(Clock::time_point t0, double blocked, double preprocessing) {
  times_.decode.add(since(t0) - blocked - preprocessing);
  times_.preprocess.add(preprocessing);
  times_.blocked.add(blocked);
  // A file cut short by Ctrl-C is not finished: never commit it.
  if (stopped()) throw Closed{};
}

void DecoderPool::end_unit(int lane, FileEnd&& end, Clock::time_point t0, double blocked, double preprocessing,
                           std::atomic<int>& decoded_here) {
  count_attempt(t0, blocked, preprocessing);
  const bool first_part = end.part == 0;
  double ignored = 0.0;
  push(lane, std::move(end), ignored);
  if (first_part) ++decoded_here;  // files, not parts
}

void DecoderPool::decode_unit(const UnitQueue::Take& take) {
  const DecodeUnit& unit = units_[take.unit];
  const int attempt = take.attempt, lane = take.lane;
  const size_t i = unit.file;
  ++busy_;
  struct Idle {
    std::atomic<int>& busy;
    ~Idle() { --busy; }
  } idle{busy_};
  const auto t0 = Clock::now();
  double blocked = 0.0, preprocessing = 0.0;
  auto emit = [&](double time, clip::Image&& image) {
    SampledFrame f{i, time, {}, {}, {}, attempt, unit.part};
    if (preprocess_) {
      const auto tp = Clock::now();
      f.pixels.resize(size_t(3) * preprocess_->crop_height * preprocess_->crop_width);
      clip::preprocess_image(image, *preprocess_, f.pixels.data());
      preprocessing += since(tp);
    } else {
      f.image = std::move(image);
    }
    push(lane, std::move(f), blocked);
  };
  FileEnd end{i, false, {}, {}, attempt, unit.part, unit.parts, take.unit};
  try {
    if (is_image(files_[i])) {
      clip::Image img = clip::decode_image_file(files_[i]);
      end.info.width = img.width;
      end.info.height = img.height;
      end.info.decoded = 1;
      emit(0.0, std::move(img));
    } else {
      video::DecodeOptions o;
      o.sampling = req_.sampling;
      o.max_short_side = req_.max_short_side;
      o.sited_chroma = sited_chroma_;
      o.threads = ffmpeg_threads();
      o.stop = req_.stop;
      o.part = unit.range;
      end.info = video::decode_video(files_[i], o, [&](video::Frame&& f) { emit(f.time, std::move(f.image)); });
    }
    end.ok = true;
  } catch (const Closed&) {
    throw;
  } catch (const LaneLost&) {
    throw;
  } catch (const std::exception& e) {
    end.error = naming(files_[i], e.what());
  }
  end_unit(lane, std::move(end), t0, blocked, preprocessing, times_.cpu_files);
}

// The frames are full size (the CPU path's max_short_side shrink is not
// applied: the GPU preprocessing resizes from the full picture cheaply).
bool DecoderPool::decode_unit_on_gpu(const UnitQueue::Take& take) {
  const DecodeUnit& unit = units_[take.unit];
  const size_t i = unit.file;
  const int lane = take.lane;
  const auto t0 = Clock::now();
  double blocked = 0.0;
  FileEnd end{i, false, {}, {}, take.attempt, unit.part, unit.parts, take.unit};
  try {
    end.info = lanes_[size_t(lane)].gpu->decode(
        files_[i], req_.sampling, unit.range, req_.stop, [&](double time, DeviceFrame&& frame) {
          SampledFrame f{i, time, {}, {}, std::move(frame), take.attempt, unit.part};
          push(lane, std::move(f), blocked);
        });
    end.ok = true;
  } catch (const Closed&) {
    throw;
  } catch (const LaneLost&) {
    throw;
  } catch (const GpuPoolClosed&) {
    if (!next_.lane_alive(lane)) throw LaneLost{};
    throw Closed{};
  } catch (const GpuRefused& e) {
    count_attempt(t0, blocked, 0.0);
    if (!refused_[i].exchange(true)) {  // one warning a file, whatever its parts
      ++times_.gpu_refused;
      progress_.print("warning: " + naming(files_[i], e.what()) + "; decoding it on the CPU instead");
    }
    return false;
  } catch (const std::exception& e) {
    end.error = naming(files_[i], e.what());
  }
  end_unit(lane, std::move(end), t0, blocked, 0.0, times_.gpu_files);
  if (unit.parts > 1) ++times_.gpu_parts;
  return true;
}

}  // namespace clipfind
