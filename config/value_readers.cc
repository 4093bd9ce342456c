#include "config/value_readers.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_format.h"
#include "engine/status_macros.h"

namespace qs::config_internal {
namespace {

namespace fs = std::filesystem;

std::string Printable(char c) {
  if (absl::ascii_isprint(static_cast<unsigned char>(c))) {
    return absl::StrCat("'", std::string(1, c), "'");
  }
  return absl::StrFormat("'\\x%02x'", static_cast<unsigned char>(c));
}

}  // namespace

absl::StatusOr<std::string> ReadName(const YamlReader& reader, const Value& v,
                                     absl::string_view what) {
  ASSIGN_OR_RETURN(std::string name, reader.ReadString(v));
  if (name.empty()) {
    return reader.Error(v, absl::StrCat(what, " must not be empty"));
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' &&
        c != '.' && c != '-') {
      return reader.Error(
          v, absl::StrCat("invalid ", what, " \"", name, "\": character ",
                          Printable(c),
                          " is not allowed (allowed: letters, digits, '_', "
                          "'.', '-')"));
    }
  }
  return name;
}

// Relative paths resolve against `base_dir` (absolute).
absl::StatusOr<std::string> ReadPath(const YamlReader& reader, const Value& v,
                                     const fs::path& base_dir) {
  ASSIGN_OR_RETURN(std::string text, reader.ReadString(v));
  if (text.empty()) return reader.Error(v, "path must not be empty");
  if (text.find('\0') != std::string::npos) {
    return reader.Error(v, "path must not contain NUL characters");
  }
  fs::path path(text);
  if (path.is_relative()) path = base_dir / path;
  return path.lexically_normal().string();
}

absl::StatusOr<std::vector<std::string>> ReadRoots(const YamlReader& reader, const Value& v,
                                                   const fs::path& base_dir,
                                                   absl::string_view what) {
  ASSIGN_OR_RETURN(std::vector<Value> items,
                   reader.ReadList(v, absl::StrCat(what, " roots")));
  std::vector<std::string> roots;
  for (const Value& item : items) {
    ASSIGN_OR_RETURN(std::string path, ReadPath(reader, item, base_dir));
    std::error_code ec;
    const fs::path canonical = fs::canonical(path, ec);
    if (ec || !fs::is_directory(canonical, ec)) {
      return reader.Error(item, absl::StrCat(what, " root \"", path,
                                             "\" is not an existing directory"));
    }
    roots.push_back(canonical.string());
  }
  return roots;
}

absl::Status CheckUnderRoots(const YamlReader& reader, const Value& v, const std::string& path,
                             const std::vector<std::string>& roots, absl::string_view what) {
  if (roots.empty()) return absl::OkStatus();
  std::error_code ec;
  // Resolves every symlink of the part that exists; the rest stays lexical
  // (already normalized by ReadPath, so it holds no `..`).
  const fs::path resolved = fs::weakly_canonical(path, ec);
  if (!ec) {
    for (const std::string& root : roots) {
      const fs::path r(root);
      auto [ri, pi] = std::mismatch(r.begin(), r.end(), resolved.begin(), resolved.end());
      if (ri == r.end()) return absl::OkStatus();
    }
  }
  return reader.Error(v, absl::StrCat("\"", path, "\"",
                                      resolved.string() == path
                                          ? std::string()
                                          : absl::StrCat(" (resolved: \"", resolved.string(), "\")"),
                                      " is outside the allowed ", what, " roots (",
                                      absl::StrJoin(roots, ", "), ")"));
}

namespace {

absl::Status CheckFile(const YamlReader& reader, const Value& v,
                       const std::string& path, absl::string_view what) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (status.type() == fs::file_type::not_found) {
    return reader.Error(v, absl::StrCat(what, " file \"", path,
                                        "\" does not exist"));
  }
  if (ec) {
    return reader.Error(v, absl::StrCat("cannot access ", what, " file \"",
                                        path, "\": ", ec.message()));
  }
  if (fs::is_directory(status)) {
    return reader.Error(v, absl::StrCat(what, " path \"", path,
                                        "\" is a directory, not a file"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckModelFile(const YamlReader& reader, const Value& v,
                            const std::string& path) {
  return CheckFile(reader, v, path, "model");
}

absl::Status CheckReadableFile(const YamlReader& reader, const Value& v,
                               const std::string& path,
                               absl::string_view what) {
  RETURN_IF_ERROR(CheckFile(reader, v, path, what));
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return reader.Error(v, absl::StrCat("cannot read ", what, " file \"",
                                        path, "\": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

// host:port with port 0..65535 ([::]:8500 for IPv6); gRPC also takes
// unix:PATH and unix-abstract:NAME.
absl::StatusOr<std::string> ReadAddress(const YamlReader& reader,
                                        const Value& v, bool allow_unix) {
  ASSIGN_OR_RETURN(std::string address, reader.ReadString(v));
  const std::string expected =
      allow_unix ? "expected host:port (e.g. 0.0.0.0:8500) or unix:PATH"
                 : "expected host:port (e.g. 0.0.0.0:9090)";
  if (address.empty()) {
    return reader.Error(v, absl::StrCat("address must not be empty; ",
                                        expected));
  }
  for (char c : address) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c))) {
      return reader.Error(v, absl::StrCat("address \"", address,
                                          "\" must not contain whitespace"));
    }
  }
  if (allow_unix && (absl::StartsWith(address, "unix:") ||
                     absl::StartsWith(address, "unix-abstract:"))) {
    return address;
  }
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return reader.Error(v, absl::StrCat("invalid address \"", address, "\"; ",
                                        expected));
  }
  const absl::string_view host = absl::string_view(address).substr(0, colon);
  const absl::string_view port = absl::string_view(address).substr(colon + 1);
  if (absl::StrContains(host, ':') &&
      !(absl::StartsWith(host, "[") && absl::EndsWith(host, "]"))) {
    return reader.Error(v, absl::StrCat("invalid address \"", address,
                                        "\"; IPv6 hosts must be bracketed, "
                                        "e.g. [::]:8500"));
  }
  uint32_t port_number = 0;
  const bool digits =
      !port.empty() && port.size() <= 5 &&
      std::all_of(port.begin(), port.end(), [](char c) {
        return absl::ascii_isdigit(static_cast<unsigned char>(c));
      });
  if (!digits || !absl::SimpleAtoi(port, &port_number) ||
      port_number > 65535) {
    return reader.Error(v, absl::StrCat("invalid port \"", port, "\" in \"",
                                        address, "\" (allowed: 0..65535)"));
  }
  return address;
}

}  // namespace qs::config_internal
