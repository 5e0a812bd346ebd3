#include "indexer/decoders.h"

#include <algorithm>
#include <exception>
#include <utility>

#include "indexer/inputs.h"
#include "video/decoder.h"

namespace clipfind {

DecoderPool::DecoderPool(const std::vector<std::filesystem::path>& files, const IndexRequest& req,
                         const clip::PreprocessConfig* preprocess, int threads, BoundedQueue<Work>& queue,
                         StageTimes& times)
    : files_(files), req_(req), preprocess_(preprocess), queue_(queue), times_(times), running_(threads) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

void DecoderPool::join() {
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void DecoderPool::run() {
  name_this_thread("cf-decode");
  try {
    for (size_t i; !stopped() && (i = next_++) < files_.size();) decode_file(i);
  } catch (const Closed&) {
  }
  if (--running_ == 0) queue_.close();
}

// FFmpeg's own threads for one file: the cores shared among the files being
// decoded when it is opened (FFmpeg's default, cores + 1 per file, measured
// slower here: its extra frame threads cost more than they bring while the
// encoder wants the same cores).
int DecoderPool::ffmpeg_threads() const {
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, cores / std::max(1, busy_.load()));
}

void DecoderPool::decode_file(size_t i) {
  ++busy_;
  struct Idle {
    std::atomic<int>& busy;
    ~Idle() { --busy; }
  } idle{busy_};
  const auto t0 = Clock::now();
  double blocked = 0.0, preprocessing = 0.0;
  auto emit = [&](double time, clip::Image&& image) {
    SampledFrame f{i, time, {}, {}};
    if (preprocess_) {
      const auto tp = Clock::now();
      f.pixels.resize(size_t(3) * preprocess_->crop_height * preprocess_->crop_width);
      clip::preprocess_image(image, *preprocess_, f.pixels.data());
      preprocessing += since(tp);
    } else {
      f.image = std::move(image);
    }
    const auto tb = Clock::now();
    const bool open = queue_.push(std::move(f));
    blocked += since(tb);
    if (!open) throw Closed{};
  };
  FileEnd end{i, false, {}, {}};
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
      o.threads = ffmpeg_threads();
      o.stop = req_.stop;
      end.info = video::decode_video(files_[i], o, [&](video::Frame&& f) { emit(f.time, std::move(f.image)); });
    }
    end.ok = true;
  } catch (const Closed&) {
    throw;
  } catch (const std::exception& e) {
    end.error = naming(files_[i], e.what());
  }
  times_.decode.add(since(t0) - blocked - preprocessing);
  times_.preprocess.add(preprocessing);
  times_.blocked.add(blocked);
  // A file cut short by Ctrl-C is not finished: never commit it.
  if (stopped()) throw Closed{};
  if (!queue_.push(std::move(end))) throw Closed{};
}

}  // namespace clipfind
