// Which unit (a file, or a part of a long one: decode_units.h) each decoder
// thread of `clipfind index` takes next, which lane its frames go to, and
// which units are done. A lane is one encoder with its engine on one device
// (several with --device cuda:all, lanes.h); NVDEC threads belong to the
// lane of their GPU, CPU threads feed whichever lane is least behind.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>

namespace clipfind {

// New units go, in order, to whichever decoder thread asks first, GPU or
// CPU, so that both kinds are busy and their sum sets the pace. A unit NVDEC
// cannot take is handed back and goes to the next CPU thread before any new
// one (it is late already), for the same lane. A lane whose device fails is
// lost: its units not done yet are decoded again, for the other lanes, before
// any new unit. CPU threads therefore keep asking while a GPU thread runs
// (it may hand a unit back) and, with two lanes or more alive, until every
// unit is done (a lane may still be lost). CPU threads take nothing until
// every NVDEC thread has asked once, so that NVDEC, the faster decoder, gets
// the first units (with one file, the file) whichever thread starts first.
class UnitQueue {
 public:
  UnitQueue(size_t units, int gpu_threads, int lanes = 1);

  struct Take {
    size_t unit;
    // 0 for a unit's first decoding; higher each time it is decoded again
    // (NVDEC gave it up, or its lane was lost), so that the encoder can
    // drop what an earlier decoding delivered (stages.h, SampledFrame).
    int attempt;
    int lane;  // where its frames go
  };

  // For the NVDEC threads of `lane`: a unit to decode again, else the next
  // new one; nullopt when none is left or the lane is lost. `first`: the
  // thread's first call.
  std::optional<Take> next_for_gpu(int lane, bool first);
  // For CPU threads: a unit NVDEC gave up, else one to decode again, else
  // the next new one; those two for the live lane with the fewest units in
  // flight (taken, not done), then the smallest backlog(lane) (frames
  // waiting in its queue). nullopt once none can come
  // any more, or after close(); waits meanwhile.
  std::optional<Take> next_for_cpu(const std::function<size_t(int)>& backlog);
  // NVDEC gave `take` up: a CPU thread decodes it again, for the same lane.
  void hand_back(const Take& take);
  // An NVDEC thread takes no more units (once per GPU thread, also when it
  // stops early). `asked`: whether it called next_for_gpu at all.
  void gpu_thread_done(bool asked);
  // The unit's frames are all embedded and with the writer's side: a lost
  // lane no longer takes it back.
  void done(size_t unit);
  // The lane's device failed: its units not done are decoded again for the
  // other lanes. False, and nothing changes, when it is the last live lane.
  bool lose_lane(int lane);
  bool lane_alive(int lane);
  // No more units for anyone: the pipeline is stopping.
  void close();

 private:
  bool may_requeue() const;  // a lane could still be lost (two or more alive)
  int least_behind(const std::function<size_t(int)>& backlog) const;
  // With m_ held: a unit to decode again, else the next new one.
  std::optional<size_t> next_unit();
  // With m_ held: `unit` taken for `lane`, its next attempt.
  Take take_for(size_t unit, int lane);

  std::mutex m_;
  std::condition_variable changed_;
  size_t units_, next_ = 0, done_count_ = 0;
  std::vector<int> lane_of_;      // by unit: the lane its latest decoding feeds (-1: not taken)
  std::vector<int> attempts_;     // by unit: decodings started
  std::vector<bool> done_;        // by unit
  std::deque<Take> handed_back_;  // for CPU threads, each for its lane
  std::deque<size_t> again_;      // from lost lanes, for any lane
  std::vector<bool> alive_;       // by lane
  std::vector<int> in_flight_;    // by lane: units taken for it, not done
  int live_lanes_;
  int gpu_running_;
  int gpu_unasked_;  // NVDEC threads yet to make their first call
  bool closed_ = false;
};

}  // namespace clipfind
