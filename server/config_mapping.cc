#include "server/config_mapping.h"

namespace qs {

DatasetSpec ToDatasetSpec(const DatasetConfig& data) {
  DatasetSpec spec;
  spec.format = data.format == DatasetConfig::Format::kIdx ? DatasetSpec::Format::kIdx
                                                           : DatasetSpec::Format::kNpy;
  spec.inputs = data.inputs;
  spec.labels = data.labels;
  spec.scale = data.scale;
  spec.offset = data.offset;
  spec.limit = data.limit;
  return spec;
}

ModelSpec ToModelSpec(const ModelConfig& model) {
  ModelSpec spec;
  spec.name = model.name;
  spec.path = model.path;
  for (const auto& v : model.variants) spec.variants.push_back(VariantSpec{v.name});
  if (model.evaluation) spec.evaluation = ToDatasetSpec(*model.evaluation);
  spec.eval_batch_size = model.eval_batch_size;
  return spec;
}

}  // namespace qs
