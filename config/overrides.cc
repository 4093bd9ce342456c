#include "config/overrides.h"

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "engine/status_macros.h"

namespace qs {
namespace config_internal {
namespace {

absl::Status OverrideError(absl::string_view label, absl::string_view path,
                           absl::string_view problem) {
  if (path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(label, ": ", problem));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(label, ": ", path, ": ", problem));
}

// Map keys in the schema are [a-z_]+; anything else (e.g. "models[0]") is a
// mistake in the path syntax rather than an unknown key.
bool IsKeySyntax(absl::string_view key) {
  if (key.empty()) return false;
  for (char c : key) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' &&
        c != '-') {
      return false;
    }
  }
  return true;
}

// The value under `key` in the map `node` (the first one, as MapReader
// reports duplicates), without inserting anything: operator[] on a non-const
// node would add the key to the document.
std::optional<YAML::Node> FindKey(const YAML::Node& node,
                                  absl::string_view key) {
  if (!node.IsMap()) return std::nullopt;
  for (const auto& kv : node) {
    if (kv.first.IsScalar() && kv.first.Scalar() == key) return kv.second;
  }
  return std::nullopt;
}

bool IsIndex(absl::string_view s) {
  return !s.empty() && s.size() <= 9 &&
         std::all_of(s.begin(), s.end(), [](char c) {
           return absl::ascii_isdigit(static_cast<unsigned char>(c));
         });
}

// "models" -> "model", "models[0].variants" -> "variant"; "item" otherwise.
std::string ItemNoun(absl::string_view list_path) {
  const size_t dot = list_path.rfind('.');
  absl::string_view key =
      dot == absl::string_view::npos ? list_path : list_path.substr(dot + 1);
  if (key.size() > 1 && absl::EndsWith(key, "s")) {
    return std::string(key.substr(0, key.size() - 1));
  }
  return "item";
}

// Resolves the dotted `key` of one override against the document.
absl::StatusOr<OverrideValue> Resolve(const Value& root, std::string label,
                                      const std::string& key,
                                      YAML::Node node) {
  OverrideValue result{std::move(label), "", {}, std::move(node), ""};
  const std::vector<std::string> segments = absl::StrSplit(key, '.');
  // The document nodes on the way; the last one is at `path` unless `absent`
  // (below a key the file lacks). Nodes are appended, never assigned:
  // assigning one YAML::Node to another overwrites the first one's node in
  // the document.
  std::vector<YAML::Node> trail = {root.node};
  bool absent = false;
  std::string path;  // as the readers spell it: models[0].batching
  bool selected_by_name = false;
  size_t i = 0;
  while (i < segments.size()) {
    if (!absent && trail.back().IsSequence()) {
      // A list item: by its name, or by index in a list without names.
      const YAML::Node list = trail.back();
      std::vector<std::pair<std::string, size_t>> names;
      for (size_t index = 0; index < list.size(); ++index) {
        const std::optional<YAML::Node> name = FindKey(list[index], "name");
        if (name.has_value() && name->IsScalar()) {
          names.emplace_back(name->Scalar(), index);
        }
      }
      const std::string noun = ItemNoun(path);
      std::optional<size_t> item;
      size_t end = i;  // the last segment that the selection consumed
      if (!names.empty()) {
        // Names may contain dots: take the longest run of segments that
        // names an item.
        std::string joined;
        for (size_t j = i; j < segments.size(); ++j) {
          joined = j == i ? segments[i] : absl::StrCat(joined, ".", segments[j]);
          for (const auto& [name, index] : names) {
            if (name == joined) {
              item = index;
              end = j;
              break;
            }
          }
        }
        if (!item.has_value()) {
          std::vector<std::string> known;
          for (const auto& entry : names) known.push_back(entry.first);
          return OverrideError(
              result.label, path,
              absl::StrCat("no ", noun, " named \"", segments[i], "\" (",
                           noun, "s: ", absl::StrJoin(known, ", "), ")"));
        }
        selected_by_name = true;
      } else {
        size_t index = 0;
        if (!IsIndex(segments[i]) || !absl::SimpleAtoi(segments[i], &index) ||
            index >= list.size()) {
          return OverrideError(
              result.label, path,
              absl::StrCat("no item \"", segments[i], "\" in this list (its ",
                           list.size(),
                           " items are selected by their 0-based index)"));
        }
        item = index;
        selected_by_name = false;
      }
      path = IndexPath(path, *item);
      trail.push_back(list[*item]);
      i = end + 1;
      if (i == segments.size()) {
        return OverrideError(result.label, path,
                             "a whole list item cannot be replaced; set its "
                             "keys one by one");
      }
      continue;
    }
    const std::string& segment = segments[i];
    if (!IsKeySyntax(segment)) {
      return OverrideError(
          result.label, "",
          absl::StrCat("invalid key path \"", key, "\" (at \"", segment,
                       "\"): expected dotted keys with list items selected "
                       "by name, e.g. models.fmnist_cnn.batching.workers"));
    }
    const bool last = i + 1 == segments.size();
    const std::string child = ChildPath(path, segment);
    if (last && selected_by_name && segment == "name") {
      return OverrideError(result.label, child,
                           absl::StrCat("cannot be overridden (",
                                        ItemNoun(path.substr(0, path.rfind('['))),
                                        "s are selected by their name)"));
    }
    const YAML::Node& current = trail.back();
    if (!absent && !current.IsMap() && !current.IsNull() &&
        result.unused_hint.empty()) {
      result.unused_hint =
          absl::StrCat("cannot be set: ", path.empty() ? "the config" : path,
                       " is ", DescribeType(current), ", not a map");
    }
    result.keys.emplace_back(path, segment);
    std::optional<YAML::Node> next =
        absent ? std::nullopt : FindKey(current, segment);
    if (next.has_value()) {
      trail.push_back(*next);
    } else {
      absent = true;
    }
    path = child;
    selected_by_name = false;
    ++i;
  }
  result.path = path;
  return result;
}

}  // namespace

const std::vector<EnvOverride>& EnvOverrides() {
  static const std::vector<EnvOverride> kEnv = {
      {"QUANTSERVE_GRPC_ADDRESS", "server.grpc_address"},
      {"QUANTSERVE_METRICS_ADDRESS", "server.metrics_address"},
      {"QUANTSERVE_WORKER_THREADS", "server.worker_threads"},
      {"QUANTSERVE_INTRA_OP_THREADS", "server.intra_op_threads"},
      {"QUANTSERVE_LOG_ACCESS", "server.access_log"},
  };
  return kEnv;
}

YAML::Node ParseSetValue(const std::string& text) {
  if (text.empty() || text == "~" || text == "null" || text == "Null" ||
      text == "NULL") {
    return YAML::Node(YAML::NodeType::Null);
  }
  try {
    const YAML::Node parsed = YAML::Load(text);
    // A fresh node: the parsed one carries marks of the value's own text.
    if (parsed.IsScalar()) return YAML::Node(parsed.Scalar());
  } catch (const std::exception&) {
    // Not valid YAML (e.g. an unterminated quote): taken literally.
  }
  return YAML::Node(text);
}

absl::StatusOr<std::vector<OverrideValue>> ResolveOverrides(
    const Value& root, const ConfigOverrides& overrides) {
  std::vector<OverrideValue> resolved;
  for (const EnvOverride& env : EnvOverrides()) {
    auto it = overrides.env.find(env.variable);
    if (it == overrides.env.end() || it->second.empty()) continue;
    ASSIGN_OR_RETURN(
        OverrideValue value,
        Resolve(root, absl::StrCat("env ", env.variable, "=", it->second),
                env.key, YAML::Node(it->second)));
    resolved.push_back(std::move(value));
  }
  for (const std::string& arg : overrides.set) {
    const std::string label = absl::StrCat("--set ", arg);
    const size_t eq = arg.find('=');
    if (eq == std::string::npos || eq == 0) {
      return OverrideError(label, "",
                           "expected key.path=value, e.g. "
                           "server.worker_threads=4 or "
                           "models.fmnist_cnn.default_variant=w8a8");
    }
    ASSIGN_OR_RETURN(OverrideValue value,
                     Resolve(root, label, arg.substr(0, eq),
                             ParseSetValue(arg.substr(eq + 1))));
    resolved.push_back(std::move(value));
  }
  return resolved;
}

}  // namespace config_internal

ConfigOverrides OverridesFromProcess(const std::vector<std::string>& set_args) {
  ConfigOverrides overrides;
  overrides.set = set_args;
  for (const config_internal::EnvOverride& env :
       config_internal::EnvOverrides()) {
    if (const char* value = std::getenv(env.variable)) {
      overrides.env.emplace(env.variable, value);
    }
  }
  return overrides;
}

}  // namespace qs
