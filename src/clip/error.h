// One exception type for everything the engine reports to its callers.
#pragma once
#include <stdexcept>
#include <string>

namespace clip {

// Thrown for bad input (files, configs, images, text) and for unsupported
// requests. The message always names the file or argument at fault.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Thrown when the device itself fails (a CUDA or cuBLAS runtime error), not
// the input: an indexer with several GPUs gives that one up and lets the
// others take its work (indexer/encoder.h).
class DeviceError : public Error {
 public:
  using Error::Error;
};

}  // namespace clip
