// Which precisions the CPU backend runs on this CPU, and what a request
// (EngineOptions::precision, `--precision`) means on the CPU.
#pragma once
#include <optional>

#include "clip/precision.h"

namespace clip {

// Native bf16 dot products (AVX512_BF16: vdpbf16ps), as oneDNN detects them.
bool cpu_has_native_bf16();
// Native int8 dot products (AVX512_VNNI: vpdpbusd), as oneDNN detects them.
bool cpu_has_int8_dot();

// The CPU precision for a request: unset -> fp32 (the default stays the
// independent reference); auto -> bf16 where the CPU has native bf16 dot
// products (1.7-2x fp32, cosine >= 0.9999), else fp32; with device "auto"
// a GPU-only precision (tf32, fp16) -> fp32; anything else as asked.
Precision cpu_precision_for(std::optional<Precision> asked, bool device_auto);

// Throws clip::Error saying why when the CPU backend cannot run `p` here:
// tf32/fp16 (GPU only), bf16 without native bf16 dot products (oneDNN would
// emulate them, slower than fp32), int8 without VNNI.
void check_cpu_precision(Precision p);

}  // namespace clip
