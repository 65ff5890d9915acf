#include "test_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

extern char** environ;

namespace leakscope::testing {

namespace {

// One HTTP/1.0 exchange: `request` is sent as is.
std::optional<HttpAnswer> httpExchange(const std::string& host_port, const std::string& request) {
  const std::size_t colon = host_port.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(std::stoi(host_port.substr(colon + 1))));
  if (inet_pton(AF_INET, host_port.substr(0, colon).c_str(), &a.sin_addr) != 1) return std::nullopt;
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return std::nullopt;
  }
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    close(fd);
    return std::nullopt;
  }
  std::string resp;
  char buf[8192];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    resp.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  // "HTTP/1.x NNN reason"
  if (resp.rfind("HTTP/1.", 0) != 0 || resp.size() < 12) return std::nullopt;
  const std::size_t body = resp.find("\r\n\r\n");
  if (body == std::string::npos) return std::nullopt;
  HttpAnswer answer;
  answer.status = std::atoi(resp.c_str() + 9);
  answer.body = resp.substr(body + 4);
  return answer;
}

std::optional<std::string> bodyIf200(std::optional<HttpAnswer> a) {
  if (!a || a->status != 200) return std::nullopt;
  return std::move(a->body);
}

}  // namespace

int freePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

std::optional<std::string> httpGet(const std::string& host_port, const std::string& path) {
  return bodyIf200(httpAsk(host_port, path));
}

std::optional<HttpAnswer> httpAsk(const std::string& host_port, const std::string& path) {
  return httpExchange(host_port, "GET " + path + " HTTP/1.0\r\nHost: " + host_port + "\r\n\r\n");
}

std::optional<std::string> httpPost(const std::string& host_port, const std::string& path,
                                    const std::string& body) {
  return bodyIf200(
      httpExchange(host_port, "POST " + path + " HTTP/1.0\r\nHost: " + host_port +
                                  "\r\nContent-Type: application/json\r\nContent-Length: " +
                                  std::to_string(body.size()) + "\r\n\r\n" + body));
}

std::optional<double> metricValue(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return std::nullopt;
}

Child::Child(std::vector<std::string> argv, std::vector<std::string> env) {
  char tmpl[] = "/tmp/leakscope-child-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) std::abort();
  dir_ = tmpl;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, (dir_ + "/out").c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_addopen(&fa, 2, (dir_ + "/err").c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  std::vector<std::string> envs;
  for (char** e = environ; *e != nullptr; ++e) envs.emplace_back(*e);
  for (auto& e : env) envs.push_back(e);
  std::vector<char*> envp;
  for (auto& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);
  if (posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), envp.data()) != 0) pid_ = -1;
  posix_spawn_file_actions_destroy(&fa);
}

Child::~Child() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  std::filesystem::remove_all(dir_);
}

bool Child::alive() const {
  if (pid_ <= 0) return false;
  // WNOWAIT: look without reaping, so terminate() can still collect the status.
  siginfo_t info{};
  if (waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0) return false;
  return info.si_pid == 0;
}

static std::string readAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Child::out() const { return readAll(dir_ + "/out"); }
std::string Child::err() const { return readAll(dir_ + "/err"); }

std::optional<std::string> Child::waitForLine(const std::string& prefix, int timeout_ms) const {
  std::optional<std::string> found;
  eventually(
      [&] {
        std::istringstream in(out());
        std::string line;
        while (std::getline(in, line)) {
          if (line.rfind(prefix, 0) == 0) {
            found = line;
            return true;
          }
        }
        return false;
      },
      timeout_ms);
  return found;
}

int Child::terminate(int timeout_ms) {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  return wait(timeout_ms);
}

int Child::wait(int timeout_ms) {
  if (pid_ <= 0) return -1;
  int status = 0;
  const bool done = eventually([&] { return waitpid(pid_, &status, WNOHANG) == pid_; }, timeout_ms);
  if (!done) return -1;
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

ForkedChild::ForkedChild(bool exit_at_once) : pid_(fork()) {
  if (pid_ == 0) {
    if (exit_at_once) _exit(0);
    for (;;) pause();
  }
}

ForkedChild::~ForkedChild() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

bool ForkedChild::zombie() const {
  const std::string stat = readFile("/proc/" + std::to_string(pid_) + "/stat");
  const std::size_t rp = stat.rfind(')');
  return rp != std::string::npos && stat.size() > rp + 2 && stat[rp + 2] == 'Z';
}

LoopbackConnection::LoopbackConnection() {
  listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) return;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(listener, 4) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return;
  }
  port = ntohs(a.sin_port);
  client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (client < 0 || connect(client, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
  server = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
}

LoopbackConnection::~LoopbackConnection() {
  for (int fd : {server, client, listener}) {
    if (fd >= 0) close(fd);
  }
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/leakscope-test-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) std::abort();
  path_ = tmpl;
}
TempDir::~TempDir() { std::filesystem::remove_all(path_); }

std::vector<std::string> lsnapFiles(const std::string& dir) {
  std::vector<std::string> out;
  if (!std::filesystem::exists(dir)) return out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".lsnap") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string readFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void writeFile(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
}

}  // namespace leakscope::testing
