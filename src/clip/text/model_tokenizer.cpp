#include "clip/text/model_tokenizer.h"

#include "clip/error.h"
#include "clip/text/sentencepiece_tokenizer.h"
#include "clip/text/tokenizer.h"

namespace clip {

ModelTokenizer::ModelTokenizer() = default;
ModelTokenizer::ModelTokenizer(ModelTokenizer&&) noexcept = default;
ModelTokenizer& ModelTokenizer::operator=(ModelTokenizer&&) noexcept = default;
ModelTokenizer::~ModelTokenizer() = default;

ModelTokenizer ModelTokenizer::load(const std::filesystem::path& dir, const ClipConfig& config) {
  if (!config.text) throw Error(dir.string() + ": the model has no text tower, so no tokenizer");
  ModelTokenizer t;
  t.context_length_ = config.text->max_positions;
  if (config.family == ModelFamily::Siglip) {
    t.spm_ = std::make_unique<SentencePieceTokenizer>(SentencePieceTokenizer::from_folder(dir));
  } else {
    t.bpe_ = std::make_unique<Tokenizer>(Tokenizer::from_folder(dir));
  }
  return t;
}

std::vector<int32_t> ModelTokenizer::encode(std::string_view utf8) const {
  if (spm_) return spm_->encode_for_model(utf8, context_length_, /*pad=*/true);
  return bpe_->encode_for_model(utf8, context_length_);
}

int ModelTokenizer::context_length() const { return context_length_; }
bool ModelTokenizer::pads_to_context() const { return spm_ != nullptr; }
int32_t ModelTokenizer::pad_id() const { return spm_ ? spm_->pad_id() : bpe_->eos_id(); }
int32_t ModelTokenizer::vocab_size() const { return spm_ ? spm_->vocab_size() : bpe_->vocab_size(); }

std::string ModelTokenizer::kind() const {
  if (!spm_) return "clip-bpe";
  return spm_->flavour() == SentencePieceTokenizer::Flavour::Siglip ? "siglip-sentencepiece" : "gemma-sentencepiece";
}

}  // namespace clip
