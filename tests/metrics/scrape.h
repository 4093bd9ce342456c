// Test helpers: a plain-socket HTTP GET and a parser for the Prometheus text
// exposition format (enough of it for the server's own output).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace qs {

struct HttpResponse {
  int status = 0;  // 0 when the request failed (see error)
  std::string body;
  std::string error;
};

// GET http://127.0.0.1:`port``path` with HTTP/1.0 (the server closes the
// connection after the response); gives up after 10 s.
HttpResponse HttpGet(int port, const std::string& path);

using Labels = std::map<std::string, std::string>;

struct Sample {
  std::string name;
  Labels labels;
  double value = 0;
};

class Scrape {
 public:
  explicit Scrape(const std::string& text);

  // The value of the one sample named `name` whose labels include all of
  // `labels`; NaN when there is none or more than one.
  double Value(const std::string& name, const Labels& labels) const;
  // How many samples named `name` have all of `labels`.
  int Count(const std::string& name, const Labels& labels) const;
  const std::vector<Sample>& samples() const { return samples_; }

 private:
  std::vector<const Sample*> Matching(const std::string& name, const Labels& labels) const;
  std::vector<Sample> samples_;
};

}  // namespace qs
