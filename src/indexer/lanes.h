// The lanes of `clipfind index`: one per device the engine runs on (one per
// GPU with --device cuda:all or cuda:0,2,3), each with its own engine, NVDEC
// decoders, frame queue and encoder. The decoder threads' work queue
// (unit_queue.h), the part joiner and the writer are shared; pipeline.cpp
// wires them up.
#pragma once
#include <exception>
#include <functional>
#include <memory>
#include <vector>

#include "clip/clip.h"
#include "indexer/bounded_queue.h"
#include "indexer/encoder.h"
#include "indexer/gpu_decoders.h"
#include "indexer/stages.h"

namespace clipfind {

// One device's engine and what feeds it. Destroyed in reverse order: the
// encoder and the queue hold frames from the NVDEC pool, so they go first.
struct Lane {
  std::unique_ptr<clip::Engine> engine;
  std::unique_ptr<GpuDecoders> gpu;  // null: no NVDEC on this lane
  std::unique_ptr<BoundedQueue<Work>> frames;
  std::unique_ptr<Encoder> encoder;
};

// Runs every lane's encoder, the first on this thread and the others on
// their own (behind_decoders: each on_thread_behind_decoders, the CPU
// backend's way), until all have returned. An encoder that returns for any
// reason but its device failing means the run is over (its queue drained
// after the decoders ended, Ctrl-C, or the writer failed), so close_all()
// is called to wake every other thread; so it is when one throws. Returns
// the first exception an encoder threw (null: none).
std::exception_ptr run_encoders(std::vector<Lane>& lanes, bool behind_decoders, const std::function<void()>& close_all);

}  // namespace clipfind
