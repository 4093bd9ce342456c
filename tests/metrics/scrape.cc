#include "tests/metrics/scrape.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace qs {

HttpResponse HttpGet(int port, const std::string& path) {
  HttpResponse r;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    r.error = std::strerror(errno);
    return r;
  }
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    r.error = std::string("connect: ") + std::strerror(errno);
    close(fd);
    return r;
  }
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  for (size_t sent = 0; sent < request.size();) {
    const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      r.error = std::string("send: ") + std::strerror(errno);
      close(fd);
      return r;
    }
    sent += static_cast<size_t>(n);
  }
  std::string response;
  char buffer[65536];
  ssize_t n;
  while ((n = recv(fd, buffer, sizeof buffer, 0)) > 0) response.append(buffer, n);
  close(fd);
  if (n < 0) {
    r.error = std::string("recv: ") + std::strerror(errno);
    return r;
  }
  const auto header_end = response.find("\r\n\r\n");
  if (response.rfind("HTTP/1.", 0) != 0 || header_end == std::string::npos) {
    r.error = "not an HTTP response: " + response.substr(0, 200);
    return r;
  }
  r.status = std::atoi(response.c_str() + response.find(' ') + 1);
  r.body = response.substr(header_end + 4);
  return r;
}

namespace {

// `name{k="v",...} value` (the labels are optional); false if malformed.
bool ParseSample(const std::string& line, Sample* s) {
  size_t i = line.find_first_of("{ ");
  if (i == std::string::npos) return false;
  s->name = line.substr(0, i);
  if (line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      const size_t eq = line.find("=\"", i);
      if (eq == std::string::npos) return false;
      std::string key = line.substr(i, eq - i), value;
      for (i = eq + 2; i < line.size() && line[i] != '"'; ++i) {
        if (line[i] == '\\' && i + 1 < line.size()) {
          ++i;
          value += line[i] == 'n' ? '\n' : line[i];
        } else {
          value += line[i];
        }
      }
      s->labels[key] = value;
      ++i;  // closing quote
      if (i < line.size() && line[i] == ',') ++i;
    }
    ++i;  // closing brace
  }
  const char* start = line.c_str() + i;
  char* end = nullptr;
  s->value = std::strtod(start, &end);
  return end != start;
}

}  // namespace

Scrape::Scrape(const std::string& text) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    Sample s;
    if (ParseSample(line, &s)) samples_.push_back(std::move(s));
  }
}

std::vector<const Sample*> Scrape::Matching(const std::string& name, const Labels& labels) const {
  std::vector<const Sample*> out;
  for (const Sample& s : samples_) {
    if (s.name != name) continue;
    bool all = true;
    for (const auto& [key, value] : labels) {
      auto it = s.labels.find(key);
      all &= it != s.labels.end() && it->second == value;
    }
    if (all) out.push_back(&s);
  }
  return out;
}

double Scrape::Value(const std::string& name, const Labels& labels) const {
  const auto matching = Matching(name, labels);
  return matching.size() == 1 ? matching.front()->value : std::nan("");
}

int Scrape::Count(const std::string& name, const Labels& labels) const {
  return static_cast<int>(Matching(name, labels).size());
}

}  // namespace qs
