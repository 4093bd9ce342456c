// Error-reporting helpers for reading YAML into validated structs.
//
// Every error these produce is InvalidArgument with the message
//   <source>:<line>:<col>: <key.path>: <problem>
// where line/col are 1-based (yaml-cpp marks are 0-based).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "yaml-cpp/yaml.h"

namespace qs::config_internal {

// Refused before parsing: real configs are a few KiB.
inline constexpr size_t kMaxConfigBytes = size_t{16} << 20;
// yaml-cpp needs a few hundred bytes per node; a 16 MiB flow list of
// `0,` would cost ~4 GB and 15 s, so documents are also capped by node count
// (counted by an event-only pre-pass, which builds nothing).
inline constexpr int64_t kMaxConfigNodes = 100000;

// A YAML value with the key path it was reached by and the best position to
// report for it: its own mark, or its key's mark when the value is null
// (yaml-cpp gives an empty value the mark of the *next* token).
struct Value {
  YAML::Node node;
  std::string path;  // e.g. "models[0].evaluation.format"; "" for the root
  YAML::Mark mark;
};

// A value that replaces (or adds) one key of the document, from a --set
// argument or an environment variable; see config/overrides.h. MapReader
// applies it when it reads the map holding the key, so the value goes through
// the same checks as one written in the file. Errors about it are reported at
// `label` instead of <source>:<line>:<col>.
struct OverrideValue {
  std::string label;  // "--set server.worker_threads=4", "env QUANTSERVE_..."
  std::string path;   // the key path it sets, e.g. "models[0].batching.workers"
  // The maps on the way as (map path, key) pairs, outermost first; the last
  // one is the key being set. Missing maps on the way are created empty.
  std::vector<std::pair<std::string, std::string>> keys;
  YAML::Node node;  // the new value
  // Why the override may end up unused (e.g. "server.worker_threads is a
  // value, not a map"); "" when nothing is known.
  std::string unused_hint;
};

// Names the text in errors, and holds the overrides applied while reading it.
class YamlReader {
 public:
  explicit YamlReader(std::string source) : source_(std::move(source)) {}

  const std::string& source() const { return source_; }

  // "<source>:<line>:<col>" (1-based); a null mark is reported as 1:1. The
  // mark of an override (OverrideMark) is reported as its label.
  std::string Where(const YAML::Mark& mark) const;

  // Overrides applied by MapReader::Create, in order (a later one for the
  // same key wins).
  void SetOverrides(std::vector<OverrideValue> overrides);
  const std::vector<OverrideValue>& overrides() const { return overrides_; }
  // The mark that stands for overrides()[index] in errors.
  static YAML::Mark OverrideMark(size_t index);
  // Records that MapReader has applied overrides()[index].
  void MarkOverrideUsed(size_t index) const { used_[index] = true; }
  // An error for the first override no map has applied (e.g. a key below a
  // scalar), so that no setting is silently ignored; OK when all were used.
  absl::Status CheckOverridesUsed() const;
  absl::Status Error(const YAML::Mark& mark, absl::string_view path,
                     absl::string_view problem) const;
  absl::Status Error(const Value& value, absl::string_view problem) const {
    return Error(value.mark, value.path, problem);
  }

  // Parses exactly one YAML document. Refuses oversized text, more than one
  // document, empty documents, and turns every yaml-cpp exception (syntax
  // errors, excessive nesting) into an InvalidArgument with a position.
  absl::StatusOr<Value> ParseDocument(const std::string& text) const;

  // Scalars. Quoted numbers ("64") are accepted; numbers are decimal only.
  absl::StatusOr<std::string> ReadString(const Value& v) const;
  absl::StatusOr<int64_t> ReadInt(const Value& v, int64_t min,
                                  int64_t max) const;
  // Finite and representable as float.
  absl::StatusOr<float> ReadFloat(const Value& v) const;
  // Finite.
  absl::StatusOr<double> ReadDouble(const Value& v) const;
  // true or false (also True/TRUE/False/FALSE); not yes/no/on/off/1/0.
  absl::StatusOr<bool> ReadBool(const Value& v) const;
  // One of `allowed`; the error lists them.
  absl::StatusOr<std::string> ReadEnum(
      const Value& v, const std::vector<absl::string_view>& allowed) const;
  // A sequence; its items carry paths "<path>[i]". `what` names the items
  // in a type error ("expected a list of models").
  absl::StatusOr<std::vector<Value>> ReadList(const Value& v,
                                              absl::string_view what) const;

 private:
  std::string source_;
  std::vector<OverrideValue> overrides_;
  mutable std::vector<bool> used_;
};

// A map whose keys have been checked: all scalars, unique, and each one of
// the allowed keys (an unknown key is an error listing the allowed ones).
// The reader's overrides for keys of this map are applied first: they replace
// or add entries (and an override below a missing or null key adds an empty
// map there), so their keys are checked like the file's.
class MapReader {
 public:
  // A null value (e.g. `server:` with nothing under it) reads as an empty map
  // (plus any overrides).
  // `what` describes the map in a type error ("expected <what> (a map)").
  static absl::StatusOr<MapReader> Create(
      const YamlReader& reader, const Value& v,
      std::vector<absl::string_view> allowed, absl::string_view what);

  // The value under `key`, or nullopt when the key is absent.
  std::optional<Value> Find(absl::string_view key) const;
  // As Find, but absence is an error "<path>.<key>: required key is missing"
  // reported at the map.
  absl::StatusOr<Value> Require(absl::string_view key) const;

  // Convenience setters: leave *out unchanged when the key is absent.
  absl::Status GetString(absl::string_view key, std::string* out) const;
  absl::Status GetInt(absl::string_view key, int64_t min, int64_t max,
                      int64_t* out) const;
  absl::Status GetInt(absl::string_view key, int64_t min, int64_t max,
                      int* out) const;
  absl::Status GetFloat(absl::string_view key, float* out) const;
  absl::Status GetBool(absl::string_view key, bool* out) const;

  const Value& value() const { return map_; }

 private:
  struct Entry {
    std::string key;
    YAML::Mark key_mark;
    Value value;
  };
  MapReader(const YamlReader* reader, Value map)
      : reader_(reader), map_(std::move(map)) {}

  const YamlReader* reader_;
  Value map_;
  std::vector<Entry> entries_;
};

// "a.b" ("b" when `parent` is empty) and "a[3]".
std::string ChildPath(absl::string_view parent, absl::string_view key);
std::string IndexPath(absl::string_view parent, size_t index);

// The mark to report for `node`: its own unless it is null or unset, in which
// case `fallback` (yaml-cpp marks an empty value with the next token).
YAML::Mark BestMark(const YAML::Node& node, const YAML::Mark& fallback);

// "a map", "a list", "null (an empty value)", "a scalar".
absl::string_view DescribeType(const YAML::Node& node);

}  // namespace qs::config_internal
