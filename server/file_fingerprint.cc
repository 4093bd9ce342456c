#include "server/file_fingerprint.h"

#include <sys/stat.h>

#include "absl/strings/str_cat.h"

namespace qs {

std::string FingerprintFiles(const std::vector<std::string>& paths) {
  std::string out;
  for (const std::string& path : paths) {
    struct stat st{};
    if (stat(path.c_str(), &st) != 0) {
      absl::StrAppend(&out, path, ":missing;");
      continue;
    }
    absl::StrAppend(&out, path, ":", st.st_size, ":", st.st_mtim.tv_sec, ".",
                    st.st_mtim.tv_nsec, ":", st.st_ino, ";");
  }
  return out;
}

std::vector<std::string> ModelFiles(const ModelConfig& model) {
  std::vector<std::string> files = {model.path};
  for (const auto* dataset : {&model.evaluation, &model.calibration}) {
    if (!dataset->has_value()) continue;
    files.push_back((*dataset)->inputs);
    if (!(*dataset)->labels.empty()) files.push_back((*dataset)->labels);
  }
  return files;
}

}  // namespace qs
