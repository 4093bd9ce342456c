// Readers for config values with more structure than a plain scalar: names,
// paths and listen addresses. Errors follow yaml_reader.h's format.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "config/yaml_reader.h"

namespace qs::config_internal {

// A name matching [A-Za-z0-9_.-]+. `what` ("model name") appears in errors.
absl::StatusOr<std::string> ReadName(const YamlReader& reader, const Value& v,
                                     absl::string_view what);

// A non-empty path, made absolute against `base_dir` (which must be
// absolute) and lexically normalized. Existence is not checked.
absl::StatusOr<std::string> ReadPath(const YamlReader& reader, const Value& v,
                                     const std::filesystem::path& base_dir);

// Fails unless `path` (as read from `v`) exists and is not a directory; the
// error names the resolved path.
absl::Status CheckModelFile(const YamlReader& reader, const Value& v,
                            const std::string& path);

// As CheckModelFile for a `what` file ("TLS certificate"), which must also be
// readable now: errors read `<what> file "<path>" does not exist`.
absl::Status CheckReadableFile(const YamlReader& reader, const Value& v,
                               const std::string& path,
                               absl::string_view what);

// A list of existing directories, made absolute against `base_dir` with
// symlinks resolved: roots that `what` ("model") paths must stay inside.
absl::StatusOr<std::vector<std::string>> ReadRoots(const YamlReader& reader, const Value& v,
                                                   const std::filesystem::path& base_dir,
                                                   absl::string_view what);

// OK when `roots` is empty or `path` — with symlinks resolved, so neither
// `..` nor a link can leave — lies inside one of them; otherwise an error at
// `v` naming the path and the roots (`what`: "model", "data").
absl::Status CheckUnderRoots(const YamlReader& reader, const Value& v, const std::string& path,
                             const std::vector<std::string>& roots, absl::string_view what);

// host:port with port 0..65535 (IPv6 hosts bracketed: [::]:8500); with
// `allow_unix`, also gRPC's unix:PATH and unix-abstract:NAME.
absl::StatusOr<std::string> ReadAddress(const YamlReader& reader,
                                        const Value& v, bool allow_unix);

}  // namespace qs::config_internal
