// YamlReader::ParseDocument: text -> one validated YAML document.
#include <exception>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "config/yaml_reader.h"
#include "yaml-cpp/depthguard.h"
#include "yaml-cpp/eventhandler.h"
#include "yaml-cpp/parser.h"

namespace qs::config_internal {
namespace {

// Thrown from the counting pre-pass to stop yaml-cpp's parser early.
struct StopPrePass : std::exception {
  StopPrePass(YAML::Mark m, std::string p) : mark(m), problem(std::move(p)) {}
  YAML::Mark mark;
  std::string problem;
};

// Counts documents and nodes without building anything.
class CountingHandler : public YAML::EventHandler {
 public:
  int documents = 0;

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents > 1) {
      throw StopPrePass(mark,
                        "the config must be a single YAML document (found a "
                        "second one here)");
    }
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { Count(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override {
    Count(mark);
  }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    Count(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&,
                       YAML::anchor_t, YAML::EmitterStyle::value) override {
    Count(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    Count(mark);
  }
  void OnMapEnd() override {}

 private:
  void Count(const YAML::Mark& mark) {
    if (++nodes_ > kMaxConfigNodes) {
      throw StopPrePass(mark, absl::StrCat("the document has more than ",
                                           kMaxConfigNodes,
                                           " YAML nodes; refusing to load it"));
    }
  }
  int64_t nodes_ = 0;
};

}  // namespace

absl::StatusOr<Value> YamlReader::ParseDocument(const std::string& text) const {
  const YAML::Mark start;  // 0:0
  if (text.size() > kMaxConfigBytes) {
    return Error(start, "",
                 absl::StrCat("the config is ", text.size(),
                              " bytes; the limit is ", kMaxConfigBytes,
                              " (16 MiB)"));
  }
  try {
    // Pre-pass: reject multiple documents and node bombs before yaml-cpp
    // allocates a tree for them (YAML::Load silently ignores every document
    // after the first).
    CountingHandler counter;
    {
      std::istringstream in(text);
      YAML::Parser parser(in);
      while (parser.HandleNextDocument(counter)) {
      }
    }
    Value root{YAML::Load(text), "", start};
    if (counter.documents == 0 || root.node.IsNull()) {
      return Error(start, "", "the config is empty");
    }
    root.mark = BestMark(root.node, start);
    return root;
  } catch (const StopPrePass& e) {
    return Error(e.mark, "", e.problem);
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp 0.7's message for this is just "bad file".
    return Error(e.mark, "",
                 absl::StrCat("YAML syntax error: nesting deeper than ",
                              e.depth() - 1, " levels is not supported"));
  } catch (const YAML::Exception& e) {
    return Error(e.mark, "", absl::StrCat("YAML syntax error: ", e.msg));
  } catch (const std::exception& e) {
    return Error(start, "", absl::StrCat("cannot parse YAML: ", e.what()));
  }
}

}  // namespace qs::config_internal
