#include "engine/onnx_schema_check.h"

#include "absl/strings/str_cat.h"
#include "onnx/defs/schema.h"
#include "onnx/onnx_pb.h"

namespace qs {

absl::Status CheckNodeAgainstSchema(const onnx::NodeProto& node, int64_t opset,
                                    const std::string& what) {
  const onnx::OpSchema* schema = onnx::OpSchemaRegistry::Schema(
      node.op_type(), static_cast<int>(opset), node.domain());
  if (schema == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": ONNX defines no op '", node.op_type(), "' at opset ", opset));
  }
  const int inputs = node.input_size(), outputs = node.output_size();
  if (inputs < schema->min_input() || inputs > schema->max_input()) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": has ", inputs, " inputs; ", node.op_type(), "-", schema->since_version(),
        " takes ", schema->min_input(), " to ", schema->max_input()));
  }
  if (outputs < schema->min_output() || outputs > schema->max_output()) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": has ", outputs, " outputs; ", node.op_type(), "-", schema->since_version(),
        " produces ", schema->min_output(), " to ", schema->max_output()));
  }
  if (outputs == 0 || node.output(0).empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": its first output has no name"));
  }
  const auto& declared = schema->attributes();
  for (const auto& a : node.attribute()) {
    auto it = declared.find(a.name());
    if (it == declared.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": attribute '", a.name(), "' is not defined for ", node.op_type(), "-",
          schema->since_version()));
    }
    if (a.type() != it->second.type) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": attribute '", a.name(), "' has type ",
          onnx::AttributeProto::AttributeType_Name(a.type()), ", expected ",
          onnx::AttributeProto::AttributeType_Name(it->second.type)));
    }
  }
  for (const auto& [name, attr] : declared) {
    if (!attr.required) continue;
    bool present = false;
    for (const auto& a : node.attribute()) present |= a.name() == name;
    if (!present) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": required attribute '", name, "' is missing"));
    }
  }
  return absl::OkStatus();
}

}  // namespace qs
