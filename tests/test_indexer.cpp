// The indexing pipeline as a library (issue 25): the bounded queue between its
// stages, which files it takes from the paths given, and run_index end to end
// on small generated videos with the tiny model in tests/data/models: the
// sampled frames and their embeddings in the catalog, unchanged files skipped,
// each failure recorded once while the other files go on, no index folder
// left behind by a run that indexed nothing into a folder that did not exist,
// and the model's family recorded, another family refused (issue 26).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "clip/clip.h"
#include "index/catalog.h"
#include "index/half.h"
#include "index/query.h"
#include "indexer/bounded_queue.h"
#include "indexer/decode_units.h"
#include "indexer/encoder.h"
#include "indexer/inputs.h"
#include "indexer/part_joiner.h"
#include "indexer/pipeline.h"
#include "indexer/unit_queue.h"
#include "support/temp_dir.h"
#include "video_fixtures.h"

namespace fs = std::filesystem;
namespace video = clipfind::video;
using clipfind::BoundedQueue;

namespace {

const fs::path kModel = fs::path(CLIPFIND_TEST_DATA) / "models" / "full_fp32_quickgelu_p32";
const fs::path kSiglipModel = fs::path(CLIPFIND_TEST_DATA) / "models" / "siglip_vision_only";

using cliptest::TempDir;

void touch(const fs::path& p, const std::string& bytes = "x") {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

// Waits up to a second for `done`; a queue that never lets it happen fails.
template <class F>
bool eventually(F done) {
  for (int i = 0; i < 1000 && !done(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return done();
}

}  // namespace

TEST(BoundedQueue, FirstInFirstOut) {
  BoundedQueue<int> q(4);
  EXPECT_FALSE(q.try_pop());  // nothing yet, and try_pop does not wait
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(q.push(i));
  EXPECT_EQ(*q.try_pop(), 0);
  EXPECT_EQ(*q.pop(), 1);
  EXPECT_EQ(*q.pop(), 2);
  EXPECT_FALSE(q.finished());
  q.close();
  EXPECT_EQ(*q.pop(), 3);  // closed: what is in it still comes out
  EXPECT_TRUE(q.finished());
  EXPECT_FALSE(q.pop());
  EXPECT_FALSE(q.push(4));  // nobody would take it
}

TEST(BoundedQueue, ProducerWaitsForRoom) {
  BoundedQueue<int> q(1);
  std::atomic<int> pushed{0};
  std::thread producer([&] {
    for (int i = 0; i < 3; ++i) {
      if (!q.push(i)) return;
      ++pushed;
    }
  });
  ASSERT_TRUE(eventually([&] { return pushed.load() == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(pushed.load(), 1);  // full: the second push waits
  EXPECT_EQ(*q.pop(), 0);
  EXPECT_TRUE(eventually([&] { return pushed.load() == 2; }));
  EXPECT_EQ(*q.pop(), 1);
  EXPECT_EQ(*q.pop(), 2);
  producer.join();
  EXPECT_EQ(pushed.load(), 3);
}

TEST(BoundedQueue, CloseReleasesAWaitingProducerAndConsumer) {
  BoundedQueue<int> full(1);
  ASSERT_TRUE(full.push(0));
  std::atomic<int> push_result{-1};
  std::thread producer([&] { push_result = full.push(1) ? 1 : 0; });
  BoundedQueue<int> empty(1);
  std::atomic<int> pop_result{-1};
  std::thread consumer([&] { pop_result = empty.pop() ? 1 : 0; });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(push_result.load(), -1);  // both still waiting
  EXPECT_EQ(pop_result.load(), -1);
  full.close();
  empty.close();
  producer.join();
  consumer.join();
  EXPECT_EQ(push_result.load(), 0);  // the push was refused, not queued
  EXPECT_EQ(pop_result.load(), 0);
  EXPECT_EQ(*full.pop(), 0);
  EXPECT_FALSE(full.pop());
}

size_t no_backlog(int) { return 0; }

TEST(UnitQueue, WithoutGpuThreadsUnitsGoInOrderThenNone) {
  clipfind::UnitQueue q(3, 0);
  for (size_t i = 0; i < 3; ++i) {
    const auto t = q.next_for_cpu(no_backlog);
    ASSERT_TRUE(t);
    EXPECT_EQ(t->unit, i);
    EXPECT_EQ(t->attempt, 0);
    EXPECT_EQ(t->lane, 0);
  }
  EXPECT_FALSE(q.next_for_cpu(no_backlog));  // nothing left, and no GPU thread to wait for
}

TEST(UnitQueue, HandedBackUnitsGoToCpuThreadsFirstWhoWaitForTheGpuThreads) {
  clipfind::UnitQueue q(3, 1);
  EXPECT_EQ(q.next_for_gpu(0, true)->unit, 0u);  // the GPU thread
  EXPECT_EQ(q.next_for_cpu(no_backlog)->unit, 1u);
  const auto last = q.next_for_gpu(0, false);
  ASSERT_TRUE(last);
  EXPECT_EQ(last->unit, 2u);
  EXPECT_FALSE(q.next_for_gpu(0, false));
  // All units taken, but the GPU thread may still hand one back: a CPU
  // thread asking now waits.
  std::atomic<int> got{-1}, attempt{-1};
  std::thread cpu([&] {
    const auto t = q.next_for_cpu(no_backlog);
    attempt = t ? t->attempt : -2;
    got = t ? int(t->unit) : -2;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(got.load(), -1);
  q.hand_back(*last);  // NVDEC could not take it
  cpu.join();
  EXPECT_EQ(got.load(), 2);
  EXPECT_EQ(attempt.load(), 1);  // decoded again: the encoder drops the first attempt's frames
  std::thread end([&] { got = q.next_for_cpu(no_backlog) ? 1 : 0; });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  q.gpu_thread_done(true);  // no more units can come back: the CPU thread stops
  end.join();
  EXPECT_EQ(got.load(), 0);
}

// With two lanes, CPU threads send each unit to the lane with the fewest
// units in flight, then the shorter queue; NVDEC threads to their own.
TEST(UnitQueue, CpuUnitsGoToTheLaneLeastBehind) {
  clipfind::UnitQueue q(5, 1, 2);
  EXPECT_EQ(q.next_for_gpu(1, true)->lane, 1);  // unit 0: lane 1 has one in flight
  EXPECT_EQ(q.next_for_cpu(no_backlog)->lane, 0);
  auto backlog = [](int lane) { return lane == 0 ? size_t(5) : size_t(1); };
  EXPECT_EQ(q.next_for_cpu(backlog)->lane, 1);  // one each: the shorter queue
  q.done(0);
  q.done(1);
  EXPECT_EQ(q.next_for_cpu(backlog)->lane, 0);  // lane 0: none in flight, lane 1: unit 2
}

// A lost lane's units not done yet are decoded again (a higher attempt) for
// the lanes left, before new units; done ones stay done. The last lane is
// never lost. CPU threads wait while a lane could still be lost.
TEST(UnitQueue, ALostLanesUnfinishedUnitsAreTakenAgainByTheOthers) {
  clipfind::UnitQueue q(4, 0, 2);
  std::vector<clipfind::UnitQueue::Take> taken;
  for (int i = 0; i < 4; ++i) taken.push_back(*q.next_for_cpu(no_backlog));
  EXPECT_EQ(taken[0].lane, 0);
  EXPECT_EQ(taken[1].lane, 1);
  EXPECT_EQ(taken[2].lane, 0);
  EXPECT_EQ(taken[3].lane, 1);
  q.done(0);
  q.done(1);  // lane 1 finished unit 1, not unit 3
  std::atomic<int> got{-1};
  std::thread cpu([&] {
    const auto t = q.next_for_cpu(no_backlog);
    got = t ? int(t->unit) : -2;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(got.load(), -1);  // nothing to take, but lane 1 could still be lost
  EXPECT_TRUE(q.lose_lane(1));
  cpu.join();
  EXPECT_EQ(got.load(), 3);
  EXPECT_FALSE(q.lane_alive(1));
  EXPECT_FALSE(q.next_for_gpu(1, false));  // a lost lane's NVDEC threads stop
  EXPECT_FALSE(q.lose_lane(0));            // the last lane stays
  EXPECT_TRUE(q.lane_alive(0));
  EXPECT_FALSE(q.next_for_cpu(no_backlog));  // one lane left: nothing more can come back
}

// NVDEC is the faster decoder: CPU threads take nothing before every NVDEC
// thread has asked once, so a single file goes to NVDEC whichever thread
// starts first. A thread that stops before asking does not hold them up.
TEST(UnitQueue, CpuThreadsWaitForEachGpuThreadsFirstCall) {
  clipfind::UnitQueue q(2, 2);
  std::atomic<int> got{-1};
  std::thread cpu([&] {
    const auto t = q.next_for_cpu(no_backlog);
    got = t ? int(t->unit) : -2;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(got.load(), -1);  // no GPU thread has asked yet
  EXPECT_EQ(q.next_for_gpu(0, true)->unit, 0u);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(got.load(), -1);  // the second has not
  q.gpu_thread_done(false);   // it stopped without asking
  cpu.join();
  EXPECT_EQ(got.load(), 1);
}

TEST(UnitQueue, CloseWakesWaitingCpuThreads) {
  clipfind::UnitQueue q(1, 1);
  EXPECT_TRUE(q.next_for_gpu(0, true));
  std::atomic<int> got{-1};
  std::thread cpu([&] { got = q.next_for_cpu(no_backlog) ? 1 : 0; });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(got.load(), -1);
  q.close();
  cpu.join();
  EXPECT_EQ(got.load(), 0);
}

TEST(DeviceList, AllAndListsNameGpusOneDeviceIsItself) {
  auto four = [] { return 4; };
  EXPECT_EQ(clip::device_list("cuda:all", four), (std::vector<std::string>{"cuda:0", "cuda:1", "cuda:2", "cuda:3"}));
  EXPECT_EQ(clip::device_list("cuda:0,2,3", four), (std::vector<std::string>{"cuda:0", "cuda:2", "cuda:3"}));
  int asked = 0;
  auto counting = [&] { return ++asked, 4; };
  EXPECT_EQ(clip::device_list("cuda:1", counting), (std::vector<std::string>{"cuda:1"}));
  EXPECT_EQ(clip::device_list("auto", counting), (std::vector<std::string>{"auto"}));
  EXPECT_EQ(asked, 0);  // one device: CUDA is not even asked
  auto error = [&](const std::string& device, int gpus) {
    try {
      clip::device_list(device, [gpus] { return gpus; });
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error("cuda:all", 0), "--device cuda:all: no GPU to run on (0 CUDA GPUs here)");
  EXPECT_EQ(error("cuda:0,0", 4), "--device cuda:0,0: GPU 0 is named twice (4 CUDA GPUs here)");
  EXPECT_EQ(error("cuda:0,4", 4), "--device cuda:0,4: there is no GPU 4 (4 CUDA GPUs here)");
  EXPECT_EQ(error("cuda:0,x", 4),
            "--device cuda:0,x: 'x' is not a GPU number; expected cuda:all or cuda:N,M,... (4 CUDA GPUs here)");
  EXPECT_EQ(error("cuda:0,,1", 1).substr(0, 33), "--device cuda:0,,1: '' is not a G");
  EXPECT_EQ(error("cuda:0,1,", 2), "--device cuda:0,1,: a trailing comma (2 CUDA GPUs here)");
  // The list's form is checked before the GPUs: the same message with none.
  EXPECT_EQ(error("cuda:0,x", 0),
            "--device cuda:0,x: 'x' is not a GPU number; expected cuda:all or cuda:N,M,... (0 CUDA GPUs here)");
  EXPECT_EQ(error("cuda:1,1", 0), "--device cuda:1,1: GPU 1 is named twice (0 CUDA GPUs here)");
}

// One encoder over one file, "a.mp4", fed by the test through `in`; what it
// hands the writer comes out of `out`.
struct EncoderRun {
  std::unique_ptr<clip::Engine> engine = clip::Engine::load(kModel);
  BoundedQueue<clipfind::Work> in{64};
  BoundedQueue<clipfind::FinishedFile> out{8};
  std::vector<size_t> units_done;
  std::string lost;
  // Closes `in`, then encodes all it holds in batches of `batch`.
  void run(int batch, clipfind::EncoderLane lane = {}) {
    clipfind::IndexRequest req;
    req.batch = batch;
    const std::vector<fs::path> files = {"a.mp4"};
    clipfind::Progress progress(false, 1, 0);
    clipfind::PartJoiner joiner(req.sampling, out, [&](size_t u) { units_done.push_back(u); });
    in.close();
    clipfind::Encoder encoder(*engine, req, files, false, in, joiner, progress, std::move(lane));
    encoder.run();
    lost = encoder.lost();
  }
};

// A file NVDEC gave up midway is decoded again on the CPU (attempt 1): the
// encoder drops what the first attempt delivered, embedded already or still
// in the batch, so the file is indexed from the second decoding alone.
TEST(Encoder, ALaterAttemptReplacesWhatTheFirstDelivered) {
  EncoderRun e;
  auto frame = [](double t, int attempt) {
    clipfind::SampledFrame f;
    f.time = t;
    f.attempt = attempt;
    f.image.width = f.image.height = 40;
    f.image.rgb.assign(40 * 40 * 3, uint8_t(100 + 50 * attempt + 10 * t));
    return f;
  };
  // Attempt 0: one batch embedded, then two frames left in the next batch
  // when attempt 1 starts.
  for (double t : {10.0, 11.0, 12.0, 13.0, 14.0, 15.0}) e.in.push(frame(t, 0));
  for (double t : {0.0, 1.0, 2.0}) e.in.push(frame(t, 1));
  clipfind::FileEnd end;
  end.ok = true;
  end.attempt = 1;
  e.in.push(end);
  e.run(4);
  const auto done = e.out.try_pop();
  ASSERT_TRUE(done);
  EXPECT_TRUE(done->end.ok);
  EXPECT_EQ(done->times, (std::vector<double>{0.0, 1.0, 2.0}));
  EXPECT_EQ(done->embeddings.size(), 3u * size_t(e.engine->projection_dim()));
  EXPECT_FALSE(e.out.try_pop());
}

// A file decoded in parts: it goes to the writer only once every part has
// ended, whatever order they end in, its frames joined in part order, a
// part's first sample dropped when it falls in the interval the part
// before last sampled (--every 1: 29.5 after 29.0), kept when not (60.0).
TEST(Encoder, PartsAreJoinedInOrderOnceAllHaveEnded) {
  EncoderRun e;
  auto frame = [](double t, int part) {
    clipfind::SampledFrame f;
    f.time = t;
    f.part = part;
    f.image.width = f.image.height = 40;
    f.image.rgb.assign(40 * 40 * 3, uint8_t(t));
    return f;
  };
  auto end = [](int part) {
    clipfind::FileEnd e;
    e.ok = true;
    e.part = part;
    e.parts = 3;
    e.info.decoded = 10;
    return e;
  };
  for (double t : {60.0, 61.0}) e.in.push(frame(t, 2));
  e.in.push(end(2));
  for (double t : {29.5, 30.0, 31.0}) e.in.push(frame(t, 1));
  for (double t : {0.0, 1.0, 29.0}) e.in.push(frame(t, 0));
  e.in.push(end(0));
  e.in.push(end(1));
  e.run(2);
  const auto done = e.out.try_pop();
  ASSERT_TRUE(done);
  EXPECT_TRUE(done->end.ok);
  EXPECT_EQ(done->end.info.decoded, 30);
  EXPECT_EQ(done->times, (std::vector<double>{0.0, 1.0, 29.0, 30.0, 31.0, 60.0, 61.0}));
  EXPECT_EQ(done->embeddings.size(), 7u * size_t(e.engine->projection_dim()));
  EXPECT_FALSE(e.out.try_pop());
}

// A run stopped while a part is still decoding (its end never comes) hands
// nothing of the file to the writer: never half-indexed, so the next run
// takes the whole file again.
TEST(Encoder, AFileWithAPartNotEndedIsNotHandedOn) {
  EncoderRun e;
  for (int part = 0; part < 2; ++part) {
    clipfind::SampledFrame f;
    f.time = 40.0 * part;
    f.part = part;
    f.image.width = f.image.height = 40;
    f.image.rgb.assign(40 * 40 * 3, uint8_t(part));
    e.in.push(std::move(f));
  }
  clipfind::FileEnd first;
  first.ok = true;
  first.parts = 2;
  e.in.push(first);
  e.run(2);
  EXPECT_FALSE(e.out.try_pop());
}

// Two parts of one file, each ended, frames 40 x 40 of one grey level.
void two_ended_parts(BoundedQueue<clipfind::Work>& in) {
  for (int part = 0; part < 2; ++part) {
    for (int k = 0; k < 3; ++k) {
      clipfind::SampledFrame f;
      f.time = 40.0 * part + k;
      f.part = part;
      f.image.width = f.image.height = 40;
      f.image.rgb.assign(40 * 40 * 3, uint8_t(10 * k + part));
      in.push(std::move(f));
    }
    clipfind::FileEnd end;
    end.ok = true;
    end.part = part;
    end.parts = 2;
    end.unit = size_t(part);
    in.push(end);
  }
}

// The device fails (a clip::DeviceError) and another lane takes the work:
// this encoder stops at once and hands on nothing more: the parts it had not
// finished are decoded again for the other lane (UnitQueue::lose_lane).
TEST(Encoder, ALostLaneHandsNothingOn) {
  EncoderRun e;
  two_ended_parts(e.in);
  std::vector<std::string> errors;
  clipfind::EncoderLane lane;
  lane.lose = [&](const std::string& error) { return errors.push_back(error), true; };
  lane.simulate_at_batch = 2;  // the first batch (frames 0-3) goes through
  e.run(4, std::move(lane));
  EXPECT_FALSE(e.out.try_pop());
  EXPECT_EQ(e.units_done, (std::vector<size_t>{0}));  // part 0 was done by then: part 1 alone goes again
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("simulated device failure"), std::string::npos) << errors[0];
  EXPECT_EQ(e.lost, errors[0]);
}

// The last lane is never given up: the batch is embedded again part by part
// (as after any engine error) and the file indexed.
TEST(Encoder, TheLastLaneRetriesItsBatchPartByPart) {
  EncoderRun e;
  two_ended_parts(e.in);
  clipfind::EncoderLane lane;
  lane.lose = [](const std::string&) { return false; };
  lane.simulate_at_batch = 1;
  e.run(4, std::move(lane));
  const auto done = e.out.try_pop();
  ASSERT_TRUE(done);
  EXPECT_TRUE(done->end.ok) << done->end.error;
  EXPECT_EQ(done->times, (std::vector<double>{0.0, 1.0, 2.0, 40.0, 41.0, 42.0}));
  EXPECT_EQ(e.units_done, (std::vector<size_t>{0, 1}));
  EXPECT_TRUE(e.lost.empty());
}

TEST(Inputs, FoldersGiveVideosAndImagesFilesAreTakenAsGiven) {
  TempDir t;
  const fs::path lib = t.path / "lib";
  for (const char* name : {"a.mp4", "sub/b.MKV", "sub/deeper/c.png", "d.JPEG", "notes.txt", "e.mp3"}) touch(lib / name);
  touch(t.path / "loose.bin");
  const std::vector<fs::path> got = clipfind::collect_inputs(
      {lib, t.path / "loose.bin", t.path / "missing.mp4", lib / "a.mp4", lib / "sub/../a.mp4"});
  // Sorted, absolute, each once; a folder only yields known extensions (any
  // case), while a file named on the command line is taken whatever it is,
  // missing or not (run_index then reports it).
  const std::vector<fs::path> want = {lib / "a.mp4",        lib / "d.JPEG",
                                      lib / "sub/b.MKV",    lib / "sub/deeper/c.png",
                                      t.path / "loose.bin", t.path / "missing.mp4"};
  std::vector<fs::path> sorted_want = want;
  std::sort(sorted_want.begin(), sorted_want.end());
  EXPECT_EQ(got, sorted_want);
}

TEST(Inputs, ImagesAndFileStats) {
  EXPECT_TRUE(clipfind::is_image("x/Photo.JPG"));
  EXPECT_TRUE(clipfind::is_image("p.png"));
  EXPECT_FALSE(clipfind::is_image("v.mp4"));
  EXPECT_FALSE(clipfind::is_image("png"));
  TempDir t;
  touch(t.path / "f", "12345");
  const clipfind::FileStat a = clipfind::stat_file(t.path / "f");
  EXPECT_EQ(a.size, 5);
  fs::last_write_time(t.path / "f", fs::last_write_time(t.path / "f") + std::chrono::seconds(3));
  EXPECT_EQ(clipfind::stat_file(t.path / "f").mtime_ns - a.mtime_ns, 3'000'000'000);
}

class Pipeline : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::path(CLIPFIND_BINARY_DIR) / "tests" / "indexer_fixtures";
    fs::create_directories(dir_);
    cliptest::make_video_once(dir_, "clip.mp4", "-f lavfi -i testsrc2=s=160x120:r=25:d=3 -pix_fmt yuv420p");
    cliptest::make_video_once(dir_, "still.png", "-f lavfi -i testsrc2=s=200x150:d=1 -frames:v 1");
    cliptest::write_once(dir_, "text.mp4", "this is not a video\n");
    // Two minutes, low resolution, short GOPs with B-frames: split into parts.
    cliptest::make_video_once(dir_, "long.mp4",
                              "-f lavfi -i testsrc2=s=64x48:r=10:d=120 -c:v libx264 -g 12 -bf 2 -pix_fmt yuv420p");
  }

  static fs::path file(const std::string& name) { return dir_ / name; }

  clipfind::IndexRequest request(const fs::path& index, std::vector<fs::path> inputs) const {
    clipfind::IndexRequest r;
    r.inputs = std::move(inputs);
    r.index_dir = index;
    r.model_dir = kModel;
    r.engine.threads = 2;
    r.batch = 4;
    r.decoders = 2;
    return r;
  }

  static fs::path dir_;
};
fs::path Pipeline::dir_;

TEST_F(Pipeline, IndexesSampledFramesThenSkipsThemAsUnchanged) {
  TempDir t;
  const fs::path index = t.path / "index";
  const auto s = clipfind::run_index(request(index, {file("clip.mp4"), file("still.png")}));
  EXPECT_EQ(s.indexed, 2);
  EXPECT_EQ(s.frames, 3 + 1);  // every 1 s of 3 s, and the picture
  EXPECT_TRUE(s.failed.empty());
  EXPECT_FALSE(s.interrupted);
  EXPECT_EQ(s.device.rfind("cpu", 0), 0u) << s.device;  // the engine's backend, for the summary
  EXPECT_GT(s.pipeline_s, 0.0);

  clipfind::index::Catalog cat(index, false);
  const auto videos = cat.videos();
  ASSERT_EQ(videos.size(), 2u);
  for (const auto& v : videos) {
    EXPECT_EQ(v.status, "ok") << v.path;
    EXPECT_EQ(v.frames, fs::path(v.path).filename() == "clip.mp4" ? 3 : 1) << v.path;
  }
  EXPECT_EQ(cat.meta("model_path"), fs::absolute(kModel).string());
  const auto frames = cat.read_frames();
  ASSERT_EQ(frames.rows(), 4u);
  // The picture's row (time 0 of its own video) is what the engine gives for
  // that file, L2-normalised, within half precision: the pipeline's
  // preprocessing on the decoder threads is the engine's.
  const int64_t still_id = videos[0].path.ends_with("still.png") ? videos[0].id : videos[1].id;
  auto engine = clip::Engine::load(kModel);
  clip::Tensor want = engine->embed_image_files({file("still.png")});
  clip::l2_normalize_rows(want);
  ASSERT_EQ(frames.dim, engine->projection_dim());
  size_t still_rows = 0;
  for (size_t r = 0; r < frames.rows(); ++r) {
    double norm = 0.0;
    for (int c = 0; c < frames.dim; ++c) norm += double(frames.at(r, c)) * frames.at(r, c);
    EXPECT_NEAR(norm, 1.0, 1e-2) << "row " << r;
    if (frames.video[r] != still_id) continue;
    ++still_rows;
    for (int c = 0; c < frames.dim; ++c) EXPECT_NEAR(frames.at(r, c), want.data[size_t(c)], 2e-3) << "column " << c;
  }
  EXPECT_EQ(still_rows, 1u);

  const auto again = clipfind::run_index(request(index, {file("clip.mp4"), file("still.png")}));
  EXPECT_EQ(again.indexed, 0);
  EXPECT_EQ(again.skipped, 2);
  EXPECT_EQ(again.pipeline_s, 0.0);  // nothing to embed: the model is not even loaded
  EXPECT_TRUE(again.device.empty());
}

TEST_F(Pipeline, EachFailureIsRecordedOnceAndTheOthersGoOn) {
  TempDir t;
  const fs::path index = t.path / "index";
  const fs::path missing = t.path / "missing.mp4";
  const auto s = clipfind::run_index(request(index, {file("text.mp4"), file("clip.mp4"), missing}));
  EXPECT_EQ(s.indexed, 1);
  EXPECT_EQ(s.frames, 3);
  ASSERT_EQ(s.failed.size(), 2u);
  // By path: their order depends on where the build and temporary folders are.
  const std::map<std::string, std::string> failed(s.failed.begin(), s.failed.end());
  ASSERT_EQ(failed.size(), 2u) << "each failure once";
  ASSERT_TRUE(failed.count(missing.string()));
  EXPECT_EQ(failed.at(missing.string()), missing.string() + ": no such file");
  const std::string text = file("text.mp4").string();
  ASSERT_TRUE(failed.count(text));
  EXPECT_EQ(failed.at(text).rfind(text + ": cannot open", 0), 0u) << failed.at(text);
  // The undecodable file is in the catalog as an error (retried next time);
  // the missing one is not there at all.
  clipfind::index::Catalog cat(index, false);
  const auto bad = cat.find(file("text.mp4").string());
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, "error");
  EXPECT_FALSE(cat.find(missing.string()));
  EXPECT_EQ(cat.find(file("clip.mp4").string())->status, "ok");
}

TEST_F(Pipeline, NothingIndexedIntoANewFolderLeavesNoFolder) {
  TempDir t;
  const fs::path parent = t.path / "new";  // neither it nor the index folder exist
  const fs::path index = parent / "index";
  // A missing file only (the model is never loaded) ...
  auto s = clipfind::run_index(request(index, {t.path / "missing.mp4"}));
  EXPECT_EQ(s.indexed, 0);
  EXPECT_EQ(s.failed.size(), 1u);
  EXPECT_TRUE(s.removed_new_index);
  EXPECT_FALSE(fs::exists(parent));
  // ... an undecodable one (through the whole pipeline) ...
  s = clipfind::run_index(request(index, {file("text.mp4")}));
  EXPECT_EQ(s.failed.size(), 1u);
  EXPECT_TRUE(s.removed_new_index);
  EXPECT_FALSE(fs::exists(parent));
  // ... a folder with nothing to index ...
  fs::create_directories(t.path / "empty");
  s = clipfind::run_index(request(index, {t.path / "empty"}));
  EXPECT_EQ(s.indexed + s.failed.size(), 0u);
  EXPECT_FALSE(fs::exists(parent));
  // ... and a new index without a model, which stops the run.
  auto no_model = request(index, {file("clip.mp4")});
  no_model.model_dir.clear();
  EXPECT_THROW(clipfind::run_index(no_model), std::runtime_error);
  EXPECT_FALSE(fs::exists(parent));
}

TEST_F(Pipeline, AnExistingIndexStaysWhenNothingIsIndexed) {
  TempDir t;
  const fs::path index = t.path / "index";
  ASSERT_EQ(clipfind::run_index(request(index, {file("clip.mp4")})).indexed, 1);
  const auto s = clipfind::run_index(request(index, {t.path / "missing.mp4"}));
  EXPECT_EQ(s.failed.size(), 1u);
  EXPECT_FALSE(s.removed_new_index);
  clipfind::index::Catalog cat(index, false);
  EXPECT_EQ(cat.videos().size(), 1u);
  // An empty folder that existed before is not removed either.
  const fs::path empty = t.path / "empty-index";
  fs::create_directories(empty);
  clipfind::run_index(request(empty, {t.path / "missing.mp4"}));
  EXPECT_TRUE(fs::is_directory(empty));
}

TEST_F(Pipeline, RecordsTheModelFamilyAndRefusesAnotherFamilyUntilReindex) {
  TempDir t;
  const fs::path index = t.path / "index";
  ASSERT_EQ(clipfind::run_index(request(index, {file("clip.mp4")})).indexed, 1);
  auto model_of = [](const fs::path& dir) {
    clip::EngineOptions o;
    o.threads = 1;
    return clip::Engine::load(dir, o)->config();
  };
  const clip::ClipConfig clip_config = model_of(kModel);
  std::optional<clipfind::index::ModelRecord> before;
  clipfind::index::CatalogStamp stamp;
  {
    clipfind::index::Catalog cat(index, false);
    before = cat.model();
    stamp = cat.stamp();
  }
  ASSERT_TRUE(before);
  EXPECT_EQ(before->family, "clip");
  EXPECT_EQ(before->dim, clip_config.projection_dim);
  EXPECT_EQ(before->logit_scale, clip_config.logit_scale);  // recorded as the engine read them
  EXPECT_EQ(before->logit_bias, clip_config.logit_bias);
  EXPECT_EQ(before->path, fs::absolute(kModel).string());

  // A SigLIP model into the CLIP index: refused before anything changes.
  auto siglip = request(index, {file("clip.mp4"), file("still.png")});
  siglip.model_dir = kSiglipModel;
  try {
    clipfind::run_index(siglip);
    ADD_FAILURE() << "indexed with another family";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_EQ(
        what.rfind(index.string() + ": built with a clip model (" + before->path + ") but " + kSiglipModel.string() +
                       " is a siglip model. Embeddings of different model families "
                       "cannot be mixed: re-run with --reindex",
                   0),
        0u)
        << what;
  }
  {
    clipfind::index::Catalog cat(index, false);
    EXPECT_EQ(cat.model(), before);
    EXPECT_EQ(cat.stamp(), stamp);
    EXPECT_EQ(cat.videos().size(), 1u);
  }

  // --reindex rebuilds it with the SigLIP model, whose family it then records.
  siglip.reindex = true;
  ASSERT_EQ(clipfind::run_index(siglip).indexed, 2);
  const clip::ClipConfig siglip_config = model_of(kSiglipModel);
  clipfind::index::Catalog cat(index, false);
  const auto after = cat.model();
  ASSERT_TRUE(after);
  EXPECT_EQ(after->family, "siglip");
  EXPECT_EQ(after->dim, siglip_config.projection_dim);
  EXPECT_EQ(after->logit_scale, siglip_config.logit_scale);
  EXPECT_EQ(after->logit_bias, siglip_config.logit_bias);
  // And search refuses the CLIP model for it.
  EXPECT_THROW(clipfind::index::query_model(cat, kModel.string()), std::runtime_error);
  EXPECT_EQ(clipfind::index::query_model(cat, ""), fs::absolute(kSiglipModel).string());
}

TEST_F(Pipeline, DecodeGpuWithoutGpuDecodingFailsClearlyAndLeavesNoFolder) {
  TempDir t;
  const fs::path parent = t.path / "new";
  auto r = request(parent / "index", {file("clip.mp4")});
  r.decode = clipfind::DecodeOn::gpu;  // with the engine on the CPU: never possible
  try {
    clipfind::run_index(r);
    ADD_FAILURE() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("--decode gpu: cannot decode on the GPU: ", 0), 0u) << e.what();
    std::printf("%s\n", e.what());
  }
  EXPECT_FALSE(fs::exists(parent));
}

TEST_F(Pipeline, DecodeAutoWithTheEngineOnTheCpuIsTheCpuPath) {
  TempDir t;
  auto cpu = request(t.path / "cpu", {file("clip.mp4"), file("still.png")});
  cpu.decode = clipfind::DecodeOn::cpu;
  auto automatic = request(t.path / "auto", {file("clip.mp4"), file("still.png")});
  const auto a = clipfind::run_index(cpu);
  const auto b = clipfind::run_index(automatic);
  EXPECT_EQ(b.gpu_decoders, 0);
  EXPECT_EQ(b.files_on_gpu, 0);
  EXPECT_EQ(b.files_on_cpu, 2);
  EXPECT_EQ(a.files_on_cpu, 2);
  const auto fa = clipfind::index::Catalog(t.path / "cpu", false).read_frames();
  const auto fb = clipfind::index::Catalog(t.path / "auto", false).read_frames();
  ASSERT_EQ(fa.rows(), 4u);
  ASSERT_EQ(fb.rows(), fa.rows());
  EXPECT_TRUE(std::equal(fa.time.begin(), fa.time.end(), fb.time.begin()));
  EXPECT_TRUE(std::equal(fa.embeddings.begin(), fa.embeddings.end(), fb.embeddings.begin()));
}

// Which parts the decoders take (issue 32): the last files, up to two
// minutes of video per decoder, in parts of about 30 s so that the decoders
// finish together; with fewer files than decoders, every file in enough
// parts; nothing split with one decoder or for --scenes.
TEST_F(Pipeline, PlansPartsForTheTailAndForFewFiles) {
  const fs::path lng = file("long.mp4"), clip = file("clip.mp4"), still = file("still.png");
  auto shape = [](const std::vector<clipfind::DecodeUnit>& units) {
    std::string s;
    for (const auto& u : units)
      s += std::to_string(u.file) + ":" + std::to_string(u.part) + "/" + std::to_string(u.parts) + " ";
    return s;
  };
  // Two decoders: 120 s of tail. The 3 s clip uses 30 s of it (any file
  // opened counts at least that), the third long file the 90 s left: 3 parts.
  const std::vector<fs::path> files{lng, lng, lng, clip};
  const auto units = clipfind::plan_decode_units(files, {}, 2);
  EXPECT_EQ(shape(units), "0:0/1 1:0/1 2:0/3 2:1/3 2:2/3 3:0/1 ");
  // The parts cover the file once, in order, split where a part ends.
  ASSERT_EQ(units.size(), 6u);
  EXPECT_EQ(units[2].range.from, INT64_MIN);
  EXPECT_EQ(units[2].range.to, units[3].range.from);
  EXPECT_EQ(units[3].range.to, units[4].range.from);
  EXPECT_EQ(units[4].range.to, INT64_MAX);
  EXPECT_LT(units[3].range.from, units[4].range.from);

  EXPECT_EQ(shape(clipfind::plan_decode_units(files, {}, 1)), "0:0/1 1:0/1 2:0/1 3:0/1 ");
  video::SamplingOptions scenes;
  scenes.mode = video::Sampling::scenes;
  EXPECT_EQ(shape(clipfind::plan_decode_units(files, scenes, 8)), "0:0/1 1:0/1 2:0/1 3:0/1 ");
  // Eight decoders, two files: each video in 4 parts (at most 120 / 30);
  // the picture is whole.
  EXPECT_EQ(shape(clipfind::plan_decode_units({still, lng}, {}, 8)), "0:0/1 1:0/4 1:1/4 1:2/4 1:3/4 ");
  // Thirty decoders: the whole 360 s is tail, each file in 4 parts.
  EXPECT_EQ(clipfind::plan_decode_units({lng, lng, lng}, {}, 30).size(), 12u);
  // A file that cannot be opened stays whole, for its decoding to say why.
  EXPECT_EQ(shape(clipfind::plan_decode_units({file("text.mp4"), lng}, {}, 4)), "0:0/1 1:0/4 1:1/4 1:2/4 1:3/4 ");
}

// One long file and more decoders than files: the file is split at key
// frames and its parts decoded at once (issue 32), with the same times and
// embeddings, byte for byte, as one decoder reading it whole; --scenes is
// never split.
TEST_F(Pipeline, ALongFileSplitForSeveralDecodersIndexesAsWhole) {
  TempDir t;
  video::SamplingOptions keyframes, scenes;
  keyframes.mode = video::Sampling::keyframes;
  scenes.mode = video::Sampling::scenes;
  video::SamplingOptions every_07;
  every_07.every = 0.7;
  for (const video::SamplingOptions& s : {video::SamplingOptions{}, every_07, keyframes, scenes}) {
    const std::string name = std::to_string(int(s.mode)) + "-" + std::to_string(s.every);
    auto one = request(t.path / ("one" + name), {file("long.mp4")});
    one.decoders = 1;
    one.sampling = s;
    auto four = request(t.path / ("four" + name), {file("long.mp4")});
    four.decoders = 4;
    four.sampling = s;
    const auto a = clipfind::run_index(one);
    const auto b = clipfind::run_index(four);
    ASSERT_EQ(a.indexed, 1) << name;
    ASSERT_EQ(b.indexed, 1) << name;
    EXPECT_EQ(a.decoders, 1);
    EXPECT_EQ(b.decoders, s.mode == video::Sampling::scenes ? 1 : 4) << name << ": split into 4 parts of 30 s";
    EXPECT_EQ(b.files_on_cpu, 1);
    const auto fa = clipfind::index::Catalog(t.path / ("one" + name), false).read_frames();
    const auto fb = clipfind::index::Catalog(t.path / ("four" + name), false).read_frames();
    ASSERT_GE(fa.rows(), s.mode == video::Sampling::scenes ? 1u : 5u) << name;
    ASSERT_EQ(fb.rows(), fa.rows()) << name;
    EXPECT_TRUE(std::equal(fa.time.begin(), fa.time.end(), fb.time.begin())) << name;
    EXPECT_TRUE(std::equal(fa.embeddings.begin(), fa.embeddings.end(), fb.embeddings.begin())) << name;
    EXPECT_EQ(clipfind::index::Catalog(t.path / ("four" + name), false).videos().size(), 1u);
  }
}

// Each indexed file's rows, by path: times and half-float embeddings.
std::map<std::string, std::pair<std::vector<double>, std::vector<uint16_t>>> rows_by_path(const fs::path& index) {
  const clipfind::index::Catalog cat(index, false);
  std::map<int64_t, std::string> path;
  for (const auto& v : cat.videos()) path[v.id] = v.path;
  const auto frames = cat.read_frames();
  std::map<std::string, std::pair<std::vector<double>, std::vector<uint16_t>>> out;
  for (size_t r = 0; r < frames.rows(); ++r) {
    auto& [times, embeddings] = out[path.at(frames.video[r])];
    times.push_back(frames.time[r]);
    embeddings.insert(embeddings.end(), frames.row(r), frames.row(r) + frames.dim);
  }
  return out;
}

// Two lanes (two engines: one per GPU with --device cuda:all, on the CPU
// here) share the files and the long file's parts out between them, and the
// index is the one a single lane builds, byte for byte; then lane 1's
// device fails midway: its unfinished parts are decoded again for lane 0,
// nothing is lost or indexed twice.
TEST_F(Pipeline, TwoLanesIndexLikeOneAndALostLanesWorkGoesToTheOther) {
  TempDir t;
  const std::vector<fs::path> inputs = {file("long.mp4"), file("clip.mp4"), file("still.png")};
  auto one = request(t.path / "one", inputs);
  one.decoders = 4;
  one.engine.threads = 1;
  const auto a = clipfind::run_index(one);
  ASSERT_EQ(a.indexed, 3);
  ASSERT_EQ(a.lanes.size(), 1u);
  const auto expected = rows_by_path(t.path / "one");

  auto two = one;
  two.index_dir = t.path / "two";
  two.devices = {"cpu", "cpu"};
  const auto b = clipfind::run_index(two);
  EXPECT_EQ(b.indexed, 3);
  EXPECT_TRUE(b.failed.empty());
  ASSERT_EQ(b.lanes.size(), 2u);
  EXPECT_GT(b.lanes[0].frames, 0);
  EXPECT_GT(b.lanes[1].frames, 0);
  EXPECT_EQ(b.lanes[0].frames + b.lanes[1].frames, b.frames);
  EXPECT_EQ(b.device, a.device + " + " + a.device);
  EXPECT_EQ(rows_by_path(t.path / "two"), expected);

  auto lost = two;
  lost.index_dir = t.path / "lost";
  lost.simulate_lost_lane = 1;
  lost.simulate_lost_at_batch = 3;
  const auto c = clipfind::run_index(lost);
  EXPECT_EQ(c.indexed, 3);
  EXPECT_TRUE(c.failed.empty());
  ASSERT_EQ(c.lanes.size(), 2u);
  EXPECT_NE(c.lanes[1].lost.find("simulated device failure"), std::string::npos) << c.lanes[1].lost;
  EXPECT_TRUE(c.lanes[0].lost.empty());
  EXPECT_EQ(c.frames, a.frames);  // what lane 1 had embedded before it failed is not counted twice
  EXPECT_EQ(rows_by_path(t.path / "lost"), expected);
  EXPECT_EQ(clipfind::index::Catalog(t.path / "lost", false).videos().size(), 3u);
}

TEST_F(Pipeline, StopBeforeTheFirstFrameCommitsNothing) {
  TempDir t;
  std::atomic<bool> stop{true};
  auto r = request(t.path / "index", {file("clip.mp4"), file("still.png")});
  r.stop = &stop;
  const auto s = clipfind::run_index(r);
  EXPECT_TRUE(s.interrupted);
  EXPECT_EQ(s.indexed, 0);
  EXPECT_TRUE(s.failed.empty());  // an interrupted file is not a failed one
}
