// Maps validated config structs onto the engine's specs.
#pragma once

#include "config/server_config.h"
#include "engine/model_builder.h"

namespace qs {

ModelSpec ToModelSpec(const ModelConfig& model);
DatasetSpec ToDatasetSpec(const DatasetConfig& data);

}  // namespace qs
