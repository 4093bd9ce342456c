#include "config/yaml_reader.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/status_macros.h"

namespace qs::config_internal {
namespace {

bool IsDecimalInteger(absl::string_view s) {
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) s.remove_prefix(1);
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isdigit(static_cast<unsigned char>(c));
  });
}

std::string Quote(absl::string_view s) {
  constexpr size_t kMaxShown = 60;
  if (s.size() > kMaxShown) {
    return absl::StrCat("\"", s.substr(0, kMaxShown), "...\"");
  }
  return absl::StrCat("\"", s, "\"");
}

size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1,
                         diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

YAML::Mark BestMark(const YAML::Node& node, const YAML::Mark& fallback) {
  const YAML::Mark mark = node.Mark();
  return node.IsNull() || mark.is_null() ? fallback : mark;
}

std::string ChildPath(absl::string_view parent, absl::string_view key) {
  return parent.empty() ? std::string(key) : absl::StrCat(parent, ".", key);
}

std::string IndexPath(absl::string_view parent, size_t index) {
  return absl::StrCat(parent, "[", index, "]");
}

absl::string_view DescribeType(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Null:
      return "null (an empty value)";
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

YAML::Mark YamlReader::OverrideMark(size_t index) {
  YAML::Mark mark;  // line and column stay 0 for code that prints a line
  mark.pos = -2 - static_cast<int>(index);
  return mark;
}

void YamlReader::SetOverrides(std::vector<OverrideValue> overrides) {
  overrides_ = std::move(overrides);
  used_.assign(overrides_.size(), false);
}

absl::Status YamlReader::CheckOverridesUsed() const {
  for (size_t i = 0; i < overrides_.size(); ++i) {
    if (used_[i]) continue;
    const OverrideValue& o = overrides_[i];
    return Error(OverrideMark(i), o.path,
                 o.unused_hint.empty()
                     ? std::string("is not used: a key above it is null or "
                                   "not a map")
                     : o.unused_hint);
  }
  return absl::OkStatus();
}

std::string YamlReader::Where(const YAML::Mark& mark) const {
  if (mark.pos <= -2) {
    const size_t index = static_cast<size_t>(-2 - static_cast<int64_t>(mark.pos));
    if (index < overrides_.size()) return overrides_[index].label;
  }
  if (mark.is_null()) return absl::StrCat(source_, ":1:1");
  return absl::StrCat(source_, ":", mark.line + 1, ":", mark.column + 1);
}

absl::Status YamlReader::Error(const YAML::Mark& mark, absl::string_view path,
                               absl::string_view problem) const {
  if (path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(Where(mark), ": ", problem));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(Where(mark), ": ", path, ": ", problem));
}

absl::StatusOr<std::string> YamlReader::ReadString(const Value& v) const {
  if (!v.node.IsScalar()) {
    return Error(v, absl::StrCat("expected a string, got ",
                                 DescribeType(v.node)));
  }
  return v.node.Scalar();
}

absl::StatusOr<int64_t> YamlReader::ReadInt(const Value& v, int64_t min,
                                            int64_t max) const {
  const std::string range = absl::StrCat(" (allowed: ", min, "..", max, ")");
  if (!v.node.IsScalar()) {
    return Error(v, absl::StrCat("expected an integer, got ",
                                 DescribeType(v.node)));
  }
  const std::string& text = v.node.Scalar();
  if (!IsDecimalInteger(text)) {
    return Error(v, absl::StrCat("expected an integer, got ", Quote(text)));
  }
  int64_t value = 0;
  if (!absl::SimpleAtoi(text, &value)) {  // digits only: it overflowed
    return Error(v, absl::StrCat("value ", Quote(text), " is out of range",
                                 range));
  }
  if (value < min || value > max) {
    return Error(v, absl::StrCat("value ", value, " is out of range", range));
  }
  return value;
}

absl::StatusOr<double> YamlReader::ReadDouble(const Value& v) const {
  if (!v.node.IsScalar()) {
    return Error(v, absl::StrCat("expected a number, got ",
                                 DescribeType(v.node)));
  }
  const std::string& text = v.node.Scalar();
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == ".inf" || lower == "+.inf" || lower == "-.inf" ||
      lower == ".nan") {
    return Error(v, absl::StrCat("value ", text, " is not a finite number"));
  }
  double value = 0;
  if (text.empty() || absl::ascii_isspace(text.front()) ||
      absl::ascii_isspace(text.back()) || !absl::SimpleAtod(text, &value)) {
    return Error(v, absl::StrCat("expected a number, got ", Quote(text)));
  }
  if (!std::isfinite(value)) {
    return Error(v, absl::StrCat("value ", text, " is not a finite number"));
  }
  return value;
}

absl::StatusOr<float> YamlReader::ReadFloat(const Value& v) const {
  absl::StatusOr<double> value = ReadDouble(v);
  if (!value.ok()) return value.status();
  if (std::fabs(*value) > FLT_MAX) {
    return Error(v, absl::StrCat("value ", v.node.Scalar(),
                                 " is out of range for a 32-bit float"));
  }
  return static_cast<float>(*value);
}

absl::StatusOr<bool> YamlReader::ReadBool(const Value& v) const {
  if (!v.node.IsScalar()) {
    return Error(v, absl::StrCat("expected true or false, got ",
                                 DescribeType(v.node)));
  }
  const std::string& text = v.node.Scalar();
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  return Error(v, absl::StrCat("expected true or false, got ", Quote(text)));
}

absl::StatusOr<std::string> YamlReader::ReadEnum(
    const Value& v, const std::vector<absl::string_view>& allowed) const {
  const std::string list = absl::StrJoin(allowed, ", ");
  if (!v.node.IsScalar()) {
    return Error(v, absl::StrCat("expected one of ", list, ", got ",
                                 DescribeType(v.node)));
  }
  const std::string& text = v.node.Scalar();
  if (std::find(allowed.begin(), allowed.end(), text) == allowed.end()) {
    return Error(v, absl::StrCat("value ", Quote(text),
                                 " is not allowed (allowed: ", list, ")"));
  }
  return text;
}

absl::StatusOr<std::vector<Value>> YamlReader::ReadList(
    const Value& v, absl::string_view what) const {
  if (!v.node.IsSequence()) {
    return Error(v, absl::StrCat("expected a list of ", what, ", got ",
                                 DescribeType(v.node)));
  }
  std::vector<Value> items;
  items.reserve(v.node.size());
  for (const YAML::Node& item : v.node) {
    // An empty first item is best reported at the list itself; later empty
    // items only have the next token's mark.
    const YAML::Mark fallback = items.empty() ? v.mark : item.Mark();
    items.push_back(
        Value{item, IndexPath(v.path, items.size()), BestMark(item, fallback)});
  }
  return items;
}

namespace {

// The error for a key that is not in `allowed`, or OK.
absl::Status CheckKeyAllowed(const YamlReader& reader,
                             const std::vector<absl::string_view>& allowed,
                             absl::string_view name, const YAML::Mark& mark,
                             absl::string_view path) {
  if (std::find(allowed.begin(), allowed.end(), name) != allowed.end()) {
    return absl::OkStatus();
  }
  std::string problem = absl::StrCat("unknown key (allowed: ",
                                     absl::StrJoin(allowed, ", "), ")");
  for (absl::string_view candidate : allowed) {
    if (EditDistance(name, candidate) <= 2) {
      absl::StrAppend(&problem, "; did you mean \"", candidate, "\"?");
      break;
    }
  }
  return reader.Error(mark, path, problem);
}

}  // namespace

absl::StatusOr<MapReader> MapReader::Create(
    const YamlReader& reader, const Value& v,
    std::vector<absl::string_view> allowed, absl::string_view what) {
  MapReader map(&reader, v);
  // `section:` with nothing under it is an empty map.
  if (!v.node.IsNull()) {
    if (!v.node.IsMap()) {
      return reader.Error(v, absl::StrCat("expected ", what, " (a map), got ",
                                          DescribeType(v.node)));
    }
    for (const auto& kv : v.node) {
      const YAML::Node& key = kv.first;
      const YAML::Mark key_mark = BestMark(key, v.mark);
      if (!key.IsScalar()) {
        return reader.Error(key_mark, v.path,
                            absl::StrCat("keys must be strings, got ",
                                         DescribeType(key)));
      }
      const std::string& name = key.Scalar();
      const std::string path = ChildPath(v.path, name);
      RETURN_IF_ERROR(
          CheckKeyAllowed(reader, allowed, name, key_mark, path));
      for (const Entry& seen : map.entries_) {
        if (seen.key == name) {
          // yaml-cpp 0.7 keeps both entries and lookups return the first.
          return reader.Error(
              key_mark, path,
              absl::StrCat("duplicate key (first defined at line ",
                           seen.key_mark.line + 1, ")"));
        }
      }
      map.entries_.push_back(
          Entry{name, key_mark,
                Value{kv.second, path, BestMark(kv.second, key_mark)}});
    }
  }
  // Overrides of keys of this map, in order. Entries are replaced by
  // rebuilding the list: assigning a YAML::Node would write through to the
  // document (and to every alias of it).
  const std::vector<OverrideValue>& overrides = reader.overrides();
  for (size_t i = 0; i < overrides.size(); ++i) {
    const OverrideValue& o = overrides[i];
    size_t k = 0;
    while (k < o.keys.size() && o.keys[k].first != v.path) ++k;
    if (k == o.keys.size()) continue;
    const std::string& name = o.keys[k].second;
    const bool last = k + 1 == o.keys.size();
    const YAML::Mark mark = YamlReader::OverrideMark(i);
    const std::string path = ChildPath(v.path, name);
    std::vector<Entry> entries;
    entries.reserve(map.entries_.size() + 1);
    bool found = false;
    for (const Entry& entry : map.entries_) {
      if (entry.key != name) {
        entries.push_back(entry);
      } else if (last) {  // the value itself
        entries.push_back(Entry{name, entry.key_mark,
                                Value{o.node, path, mark}});
        found = true;
      } else if (entry.value.node.IsNull()) {  // `section:` -> empty map
        entries.push_back(
            Entry{name, entry.key_mark,
                  Value{YAML::Node(YAML::NodeType::Map), entry.value.path,
                        entry.value.mark}});
        found = true;
      } else {  // a map (or a wrong type, reported by whoever reads it)
        entries.push_back(entry);
        found = true;
      }
    }
    if (!found) {
      RETURN_IF_ERROR(
          CheckKeyAllowed(reader, allowed, name, mark, path));
      entries.push_back(Entry{
          name, mark,
          Value{last ? o.node : YAML::Node(YAML::NodeType::Map), path,
                mark}});
    }
    map.entries_.swap(entries);
    if (last) reader.MarkOverrideUsed(i);
  }
  return map;
}

std::optional<Value> MapReader::Find(absl::string_view key) const {
  for (const Entry& entry : entries_) {
    if (entry.key == key) return entry.value;
  }
  return std::nullopt;
}

absl::StatusOr<Value> MapReader::Require(absl::string_view key) const {
  std::optional<Value> value = Find(key);
  if (!value.has_value()) {
    return reader_->Error(map_.mark, ChildPath(map_.path, key),
                          "required key is missing");
  }
  return *std::move(value);
}

absl::Status MapReader::GetString(absl::string_view key,
                                  std::string* out) const {
  std::optional<Value> value = Find(key);
  if (!value.has_value()) return absl::OkStatus();
  absl::StatusOr<std::string> s = reader_->ReadString(*value);
  if (!s.ok()) return s.status();
  *out = *std::move(s);
  return absl::OkStatus();
}

absl::Status MapReader::GetInt(absl::string_view key, int64_t min, int64_t max,
                               int64_t* out) const {
  std::optional<Value> value = Find(key);
  if (!value.has_value()) return absl::OkStatus();
  absl::StatusOr<int64_t> i = reader_->ReadInt(*value, min, max);
  if (!i.ok()) return i.status();
  *out = *i;
  return absl::OkStatus();
}

absl::Status MapReader::GetInt(absl::string_view key, int64_t min, int64_t max,
                               int* out) const {
  min = std::max<int64_t>(min, std::numeric_limits<int>::min());
  max = std::min<int64_t>(max, std::numeric_limits<int>::max());
  int64_t wide = *out;
  absl::Status status = GetInt(key, min, max, &wide);
  if (status.ok()) *out = static_cast<int>(wide);
  return status;
}

absl::Status MapReader::GetBool(absl::string_view key, bool* out) const {
  std::optional<Value> value = Find(key);
  if (!value.has_value()) return absl::OkStatus();
  absl::StatusOr<bool> b = reader_->ReadBool(*value);
  if (!b.ok()) return b.status();
  *out = *b;
  return absl::OkStatus();
}

absl::Status MapReader::GetFloat(absl::string_view key, float* out) const {
  std::optional<Value> value = Find(key);
  if (!value.has_value()) return absl::OkStatus();
  absl::StatusOr<float> f = reader_->ReadFloat(*value);
  if (!f.ok()) return f.status();
  *out = *f;
  return absl::OkStatus();
}

}  // namespace qs::config_internal
