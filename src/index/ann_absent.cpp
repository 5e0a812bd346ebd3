// The ANN index in a clipfind built without FAISS (CMake CLIPFIND_ANN=OFF, or
// libfaiss-dev missing, as on the GPU build machine): nothing can be built or
// opened, and each attempt says why; search scans exactly.
#include "index/ann.h"
#include "index/catalog.h"  // index::Error

namespace clipfind::index {

struct AnnIndex::Impl {
  AnnSearchParams params;
};

AnnIndex::AnnIndex() : impl_(std::make_unique<Impl>()) {}
AnnIndex::~AnnIndex() = default;
bool ann_available() { return false; }
std::string ann_backend() { return kAnnNotBuilt; }
const AnnSearchParams& AnnIndex::params() const { return impl_->params; }
void AnnIndex::set_params(const AnnSearchParams& p) { impl_->params = p; }
std::unique_ptr<AnnIndex> AnnIndex::build(const FrameTable&) { throw Error(kAnnNotBuilt); }
AnnIndex::Update AnnIndex::update(const FrameTable&, bool) { throw Error(kAnnNotBuilt); }
float AnnIndex::measure_recall(const FrameTable&, int) { throw Error(kAnnNotBuilt); }
void AnnIndex::write(const std::filesystem::path&, const CatalogStamp&) const { throw Error(kAnnNotBuilt); }
std::unique_ptr<AnnIndex> AnnIndex::open(const std::filesystem::path& file, CatalogStamp*, std::string* why) {
  if (why) *why = file.string() + ": " + kAnnNotBuilt;
  return nullptr;
}
std::vector<Hit> AnnIndex::top_k(const FrameTable&, const float*, size_t) const { throw Error(kAnnNotBuilt); }
AnnInfo AnnIndex::info() const { return {}; }

}  // namespace clipfind::index
