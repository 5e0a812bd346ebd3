// The SM clock and board power while a benchmark runs, sampled through NVML
// in a background thread. The H100 here holds its 700 W cap on long fp16
// passes by lowering the SM clock (1,335 MHz on ViT-L/14 at batch 256
// against 1,980 idle), so a throughput figure means little without the
// clock it ran at; bench_gpu prints both, and the share of the dense fp16
// peak at that clock.
//
// NVML is loaded with dlopen: the driver ships libnvidia-ml.so.1 on the GPU
// machine, while the build machines (and CI) have no NVML header or library.
// Without it the sampler reports nothing and the benchmark runs as before.
// The four entry points are declared here by hand from NVML's C API
// (nvml.h): return codes are ints with 0 for success, a device is an opaque
// pointer, clock type 1 is the SM clock (MHz), power is in milliwatts.
#pragma once
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace bench {

class GpuClocks {
 public:
  struct Reading {
    bool valid = false;
    double sm_mhz = 0;  // medians over the samples
    double watts = 0;
    int samples = 0;
  };

  explicit GpuClocks(unsigned device = 0) {
    lib_ = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib_) return;
    init_ = reinterpret_cast<int (*)()>(dlsym(lib_, "nvmlInit_v2"));
    shutdown_ = reinterpret_cast<int (*)()>(dlsym(lib_, "nvmlShutdown"));
    auto handle = reinterpret_cast<int (*)(unsigned, void**)>(dlsym(lib_, "nvmlDeviceGetHandleByIndex_v2"));
    clock_ = reinterpret_cast<int (*)(void*, int, unsigned*)>(dlsym(lib_, "nvmlDeviceGetClockInfo"));
    power_ = reinterpret_cast<int (*)(void*, unsigned*)>(dlsym(lib_, "nvmlDeviceGetPowerUsage"));
    if (!init_ || !shutdown_ || !handle || !clock_ || !power_ || init_() != 0) return;
    initialised_ = true;
    ok_ = handle(device, &dev_) == 0;
  }
  ~GpuClocks() {
    stop();
    if (initialised_) shutdown_();
    if (lib_) dlclose(lib_);
  }
  GpuClocks(const GpuClocks&) = delete;
  GpuClocks& operator=(const GpuClocks&) = delete;

  bool available() const { return ok_; }

  // Starts sampling every 10 ms (a no-op without NVML).
  void start() {
    stop();
    if (!ok_) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      mhz_.clear();
      mw_.clear();
    }
    running_ = true;
    thread_ = std::thread([this] {
      while (running_) {
        unsigned mhz = 0, mw = 0;
        if (clock_(dev_, kSmClock, &mhz) == 0 && power_(dev_, &mw) == 0) {
          std::lock_guard<std::mutex> lock(mu_);
          mhz_.push_back(mhz);
          mw_.push_back(mw);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    });
  }

  // Stops sampling and returns the medians since start().
  Reading stop() {
    if (thread_.joinable()) {
      running_ = false;
      thread_.join();
    }
    std::lock_guard<std::mutex> lock(mu_);
    Reading r;
    if (mhz_.empty()) return r;
    r.valid = true;
    r.samples = static_cast<int>(mhz_.size());
    r.sm_mhz = median(mhz_);
    r.watts = median(mw_) / 1000.0;
    return r;
  }

 private:
  static constexpr int kSmClock = 1;  // NVML_CLOCK_SM
  static double median(std::vector<unsigned> v) {
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
  }

  void* lib_ = nullptr;
  void* dev_ = nullptr;
  bool initialised_ = false, ok_ = false;
  int (*init_)() = nullptr;
  int (*shutdown_)() = nullptr;
  int (*clock_)(void*, int, unsigned*) = nullptr;
  int (*power_)(void*, unsigned*) = nullptr;
  std::atomic<bool> running_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<unsigned> mhz_, mw_;
};

}  // namespace bench
