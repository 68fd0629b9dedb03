#include "base/file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace rampart {

bool read_regular_file(const std::string& path, int64_t max_bytes, std::string* out, std::string* why) {
  // Refused before it is opened: opening some devices has effects of its own.
  struct stat named {};
  if (::stat(path.c_str(), &named) == 0 && !S_ISREG(named.st_mode)) {
    *why = "not a regular file";
    return false;
  }
  // Non-blocking open: a FIFO put in its place since must not hang the reader until someone writes to it.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    *why = std::string("cannot open: ") + std::strerror(errno);
    return false;
  }
  struct stat st {};
  bool ok = false;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    *why = "not a regular file";
  } else if (st.st_size > max_bytes) {
    *why = "larger than " + std::to_string(max_bytes) + " bytes";
  } else {
    std::string text(static_cast<size_t>(st.st_size), '\0');
    size_t got = 0;
    ok = true;
    while (got < text.size()) {
      const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        *why = std::string("read error: ") + std::strerror(errno);
        ok = false;
      }
      if (n <= 0) break;  // 0: it shrank while read; what was there is the file
      got += static_cast<size_t>(n);
    }
    text.resize(got);
    if (ok) *out = std::move(text);
  }
  ::close(fd);
  return ok;
}

}  // namespace rampart
